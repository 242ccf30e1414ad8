"""What issue 10's two measured faults cost the daemon now: memory and disk after many different `ctl say` texts,
and the log, the watchdog and `ctl` while 120 connections are held against a limit of 100 file descriptors.
Prints a table and writes benchmarks/results/hostile.json.

The daemon runs as the tests run it (tests/daemon_harness.py): its own PulseAudio server with a virtual speaker,
a fake NOTIFY_SOCKET with systemd's WatchdogSec=30, no speech model (the model's 580 MB would only add noise
to the memory figures). Needs prlimit (util-linux). From the project root:
    .venv/bin/python -m benchmarks.hostile     # about 2 minutes
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.results_file import write_results

ROOT = Path(__file__).resolve().parents[1]
# The test harnesses import each other by their bare names, as the tests do.
sys.path.insert(0, str(ROOT / "tests"))

from daemon_harness import Daemon, DaemonError, hold_connections, rss_kib  # noqa: E402
from pulse import PulseServer  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results" / "hostile.json"
WATCHDOG_S = 30.0
# Issue 10's figures: 50 texts of 500 characters; 120 connections against 100 descriptors, for 35 s.
TEXTS = 50
FILES = 100
HELD = 120
HOLD_S = 35.0


def text(n: int) -> str:
    """A different text of 500 characters for each n (about 35 s of speech)."""
    return (f"Mening nummer {n}. " + "Det här är en lång mening som bara ska sägas en enda gång. " * 9)[:500]


def directory_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def many_texts(d: Daemon, count: int) -> dict[str, float]:
    clips = d.state_dir / "clips"
    rss_before, clips_before = rss_kib(d.pid), directory_bytes(clips)
    refused = 0
    most_waiting = 0.0
    for n in range(count):
        try:
            d.ctl("say", text(n))
        except DaemonError:
            # More than a minute of speech waits: what a user would do next.
            refused += 1
            d.ctl("stop")
            d.ctl("say", text(n))
        most_waiting = max(most_waiting, float(d.status()["speaking_s"]))
    d.ctl("stop")
    return {
        "texts": count,
        "rss_before_mb": rss_before / 1024,
        "rss_after_mb": rss_kib(d.pid) / 1024,
        "clips_added_mb": (directory_bytes(clips) - clips_before) / 2**20,
        "says_refused_until_stop": refused,
        "most_speech_waiting_s": most_waiting,
    }


def held_connections(d: Daemon, files: int, held: int, hold_s: float) -> dict[str, float]:
    subprocess.run(["prlimit", f"--pid={d.pid}", f"--nofile={files}:{files}"], check=True)
    log_before, start = d.log_path.stat().st_size, len(d.messages())
    sockets = hold_connections(d.socket, held)
    began = time.monotonic()
    answered = 0
    while time.monotonic() - began < hold_s:
        try:
            d.status()
            answered += 1
        except DaemonError:
            pass
        time.sleep(1.0)
    pings = sum(1 for m in d.messages()[start:] if m.fields.get("WATCHDOG") == "1")
    fds = len(os.listdir(f"/proc/{d.pid}/fd"))
    for sock in sockets:
        sock.close()
    return {
        "file_limit": files,
        "connections_opened": len(sockets),
        "held_s": hold_s,
        "ctl_status_answered": answered,
        "ctl_status_asked": int(hold_s),
        "watchdog_pings": pings,
        "open_files_at_end": fds,
        "log_bytes_added": d.log_path.stat().st_size - log_before,
        "daemon_running": d.running,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--texts", type=int, default=TEXTS)
    parser.add_argument("--hold", type=float, default=HOLD_S, help="seconds to hold the connections")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, PulseServer(Path(tmp) / "pulse") as pulse:
        root = Path(tmp) / "daemon"
        with Daemon(root, ["--model", str(root / "no-model")], pulse.environ(), WATCHDOG_S) as d:
            d.wait_ready()
            texts = many_texts(d, args.texts)
            fds = held_connections(d, FILES, HELD, args.hold)
    rows = [
        (f"{args.texts} different {len(text(0))}-character ctl say texts", ""),
        ("  RSS before -> after (MB)", f"{texts['rss_before_mb']:.0f} -> {texts['rss_after_mb']:.0f}"),
        ("  clips added on disk (MB)", f"{texts['clips_added_mb']:.1f}"),
        ("  says refused (then ctl stop, said again)", f"{texts['says_refused_until_stop']}"),
        ("  most speech waiting (s)", f"{texts['most_speech_waiting_s']:.0f}"),
        (f"{fds['connections_opened']} connections held {fds['held_s']:.0f} s, limit {FILES} files", ""),
        ("  ctl status answered", f"{fds['ctl_status_answered']} of {fds['ctl_status_asked']}"),
        ("  WATCHDOG=1 received", f"{fds['watchdog_pings']}"),
        ("  open files at the end", f"{fds['open_files_at_end']}"),
        ("  log bytes written", f"{fds['log_bytes_added']}"),
        ("  still running", f"{fds['daemon_running']}"),
    ]
    width = max(len(name) for name, _value in rows)
    print(f"{'measure':<{width}}  value")
    print("-" * (width + 16))
    for name, value in rows:
        print(f"{name:<{width}}  {value}")
    write_results(RESULTS, texts=texts, held_connections=fds)


if __name__ == "__main__":
    main()
