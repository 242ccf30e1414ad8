"""How exactly cues land where the timeline puts them, rendered and in real time; a naive pyttsx3 loop beside it;
and how long from the command to the first sound. Prints a table and writes benchmarks/results/timing.json.

Run from the project root (it starts its own PulseAudio server, with the code the audio tests use):
    .venv/bin/python -m benchmarks.timing            # everything, about 15 minutes
    .venv/bin/python -m benchmarks.timing --quick    # without the 10-minute real-time endurance set
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from tests import piper_model
from tests.coach_command import planned_cues, voicecoach_command
from tests.cues import SILENT, Onset, cue_onsets, fixed_latency, loud_spans
from tests.pulse import RATE, PulseServer
from voicecoach import config, paths
from voicecoach.cli.main import RENDER_RATE
from voicecoach.config import DEFAULT_RATE_WPM, Config
from voicecoach.engine.language import Pack, load_pack
from voicecoach.sound.clips import SILENCE, ClipCache, read_wav
from voicecoach.sound.speech import configured_cache

RESULTS = Path(__file__).resolve().parent / "results" / "timing.json"
SETS = {
    "strength": ["strength"],
    "endurance": ["endurance", "--hold", "120", "--reps", "4", "--rest", "30"],
}
# The strength set in the tests' Piper voice, and counted in ticks ([speech] counts = "ticks").
PIPER = "strength (piper)"
TICKS = "strength (ticks)"
# The strength set again in real time, her volume changed three times in it by typed commands (as spoken ones are
# carried out), each as the cue ending its key is printed: in the holds of three repetitions. The level said back
# in a pause is not planned, and not counted; the planned cues must keep their time.
VOLUME = "strength (volume)"
VOLUME_CHANGES = {"hold 2: två": "lägre", "hold 5: två": "lägre", "hold 8: två": "högre"}
GOALS = {
    "rendered_median_ms": 1.0,
    "rendered_max_ms": 5.0,
    "live_median_ms": 10.0,
    "live_p99_ms": 25.0,
    "drift_ms": 10.0,
    "first_sound_ms": 1000.0,
}
# A cue whose clip correlates worse than this where it should be was not heard whole.
WHOLE = 0.9
# Consecutive cues whose errors differ by more than this have a gap (an underrun) or a lost block between them.
JUMP_MS = 1.0
NAIVE_COUNTS = 10
# Silence inside one spoken word is shorter than this; between counts (a sleep(1) apart) it is longer.
NAIVE_GAP_S = 0.5
FIRST_SOUND_RUNS = 5
# The loop everyone writes first: say a count, wait for it to be spoken, sleep a second.
NAIVE_LOOP = """
import sys, time, pyttsx3
engine = pyttsx3.init("espeak")
engine.setProperty("voice", sys.argv[1])
engine.setProperty("rate", int(sys.argv[2]))
start = time.monotonic()
for word in sys.argv[3:]:
    engine.say(word)
    engine.runAndWait()
    time.sleep(1)
print(time.monotonic() - start)
"""
FIRST_SOUND_METHOD = (
    "t0 = time.monotonic() just before launching 'voicecoach session strength' (clip cache warm). "
    "The speaker's monitor is recorded with parec; its sample 0 is placed on the same clock at the smallest "
    "(chunk arrival - samples received so far / rate) over all chunks: a sample cannot arrive before the sink "
    "plays it, so this bounds the recording's start from above, tightly when any chunk came promptly. "
    "First sound = that + (index of the first sample above -60 dBFS) / rate. 'upper bound' is when the chunk "
    "holding that sample reached us."
)


@dataclass(frozen=True)
class Timing:
    """One set played one way: cue errors in ms after the fixed offset is taken off."""

    name: str
    mode: str
    args: list[str]
    last_cue_s: float
    cues: int
    fixed_offset_ms: float
    median_ms: float
    p99_ms: float
    max_ms: float
    drift_ms: float
    jumps: int
    not_whole: list[str]
    # 1-minute load average before and after: other work on the machine starves the audio callback.
    load: list[float]
    # Every cue's signed error, in timeline order, to see where the timing moved.
    errors_ms: list[float]
    # What was typed in the set, and the cues printed that were not planned (the volume said back).
    typed: list[str] = field(default_factory=list)
    unplanned: list[str] = field(default_factory=list)

    def meets_goals(self) -> bool:
        if self.not_whole:
            return False
        if self.mode == "rendered":
            return self.median_ms <= GOALS["rendered_median_ms"] and self.max_ms <= GOALS["rendered_max_ms"]
        return (
            self.median_ms <= GOALS["live_median_ms"]
            and self.p99_ms <= GOALS["live_p99_ms"]
            and abs(self.drift_ms) <= GOALS["drift_ms"]
        )


def timing(
    name: str, mode: str, args: list[str], cues: list[dict], onsets: list[Onset], offset: float, load: list[float]
) -> Timing:
    residuals = np.array([(o.error - offset) * 1000 for o in onsets])
    size = np.abs(residuals)
    return Timing(
        name=name,
        mode=mode,
        args=args,
        last_cue_s=round(float(cues[-1]["t"]), 1),
        cues=len(onsets),
        fixed_offset_ms=round(offset * 1000, 2),
        median_ms=round(float(np.median(size)), 3),
        p99_ms=round(float(np.percentile(size, 99)), 3),
        max_ms=round(float(size.max()), 3),
        drift_ms=round(float(residuals[-1]), 3),
        jumps=int(np.count_nonzero(np.abs(np.diff(residuals)) > JUMP_MS)),
        not_whole=[f"{o.planned:.2f} {o.text}" for o in onsets if o.score < WHOLE],
        load=[round(x, 2) for x in load],
        errors_ms=[round(float(x), 3) for x in residuals],
    )


def as_pairs(cues: list[dict]) -> list[tuple[float, str]]:
    return [(float(c["t"]), str(c["text"])) for c in cues]


def rendered(name: str, args: list[str], env: dict[str, str], clips: ClipCache, work: Path) -> Timing:
    """Render the set to a WAV (the mixer run offline) and compare its onsets with the timeline directly."""
    load = os.getloadavg()[0]
    cues = planned_cues(args, env)
    wav = work / f"{name}.wav"
    subprocess.run([*voicecoach_command(), "session", *args, "--render", str(wav)], env=env, check=True)
    samples, rate = read_wav(wav)
    onsets = cue_onsets(samples, rate, as_pairs(cues), clips.clip, offset=0.0)
    return timing(name, "rendered", args, cues, onsets, 0.0, [load, os.getloadavg()[0]])


def live(
    name: str,
    args: list[str],
    server: PulseServer,
    env: dict[str, str],
    clips: ClipCache,
    typed: dict[str, str] | None = None,
) -> Timing:
    """Play the set through the null sink, record its monitor, and take the median error off as fixed latency.
    typed: a command to type as the cue that ends with its key is printed."""
    cues = planned_cues(args, env)
    load = os.getloadavg()[0]
    recording = server.record()
    recording.wait_for(RATE // 10)
    print(f"  playing {name} in real time ({float(cues[-1]['t']):.0f} s)...", file=sys.stderr, flush=True)
    process = subprocess.Popen(
        [*voicecoach_command(), "session", *args],
        env=env,
        stdin=subprocess.PIPE if typed else subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    printed: list[str] = []
    reader = threading.Thread(target=_type_as_printed, args=(process, typed or {}, printed))
    reader.start()
    assert process.stderr is not None
    stderr = process.stderr.read()
    process.wait(timeout=float(cues[-1]["t"]) + 120)
    reader.join()
    recording.wait_for(recording.frames + RATE // 2)
    samples = recording.stop()
    if process.returncode != 0:
        raise SystemExit(f"voicecoach session {' '.join(args)} failed: {stderr.strip()}")
    onsets = cue_onsets(samples, RATE, as_pairs(cues), clips.clip)
    offset = fixed_latency(onsets)
    result = timing(name, "real time", args, cues, onsets, offset, [load, os.getloadavg()[0]])
    planned = {str(c["text"]) for c in cues}
    unplanned = [line.strip() for line in printed if line.split(": ", 1)[-1] not in planned]
    return replace(result, typed=list((typed or {}).values()), unplanned=unplanned)


def _type_as_printed(process: subprocess.Popen[str], typed: dict[str, str], printed: list[str]) -> None:
    assert process.stdout is not None
    for line in process.stdout:
        printed.append(line.rstrip("\n"))
        command = next((c for ending, c in typed.items() if line.rstrip().endswith(ending)), None)
        if command is not None and process.stdin is not None:
            process.stdin.write(command + "\n")
            process.stdin.flush()
    if process.stdin is not None:
        process.stdin.close()


def naive_loop(server: PulseServer, env: dict[str, str], pack: Pack) -> dict[str, object]:
    """The say/runAndWait/sleep(1) counting loop, recorded; each count's onset against an ideal 1-second grid."""
    words = [pack.number(k) for k in range(1, NAIVE_COUNTS + 1)]
    recording = server.record()
    recording.wait_for(RATE // 10)
    print(f"  naive pyttsx3 loop, {NAIVE_COUNTS} counts...", file=sys.stderr, flush=True)
    result = subprocess.run(
        [sys.executable, "-c", NAIVE_LOOP, pack.voice, str(DEFAULT_RATE_WPM), *words],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=NAIVE_COUNTS * 10,
    )
    recording.wait_for(recording.frames + RATE // 2)
    samples = recording.stop()
    # espeak-ng does not synthesise a word to the same samples twice, so a rendered clip cannot be matched
    # here; a count's onset is where it first rises above the level the clip cache trims at.
    spans = loud_spans(samples, RATE, level=SILENCE, gap_s=NAIVE_GAP_S)
    if len(spans) != NAIVE_COUNTS:
        raise SystemExit(f"the naive loop was heard as {len(spans)} words, not {NAIVE_COUNTS}")
    heard = np.array([start for start, _ in spans]) / RATE
    errors_ms = (heard - (heard[0] + np.arange(NAIVE_COUNTS))) * 1000
    size = np.abs(errors_ms)
    return {
        "counts": NAIVE_COUNTS,
        "total_s": round(float(result.stdout.strip().splitlines()[-1]), 2),
        "ideal_s": float(NAIVE_COUNTS),
        "median_ms": round(float(np.median(size)), 1),
        "p99_ms": round(float(np.percentile(size, 99)), 1),
        "max_ms": round(float(size.max()), 1),
        "last_count_ms": round(float(errors_ms[-1]), 1),
    }


def first_sound(server: PulseServer, env: dict[str, str], runs: int) -> dict[str, object]:
    """Wall time from launching a session to its first sample on the speaker, with the clip cache warm."""
    print(f"  command to first sound, 1 warm-up + {runs} runs...", file=sys.stderr, flush=True)
    latencies, bounds = [], []
    for run in range(runs + 1):
        recording = server.record()
        recording.wait_for(RATE // 10)
        launched = time.monotonic()
        process = subprocess.Popen(
            [*voicecoach_command(), "session", "strength"],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        deadline = launched + 60
        while (first := recording.first_above(SILENT)) is None:
            if process.poll() is not None or time.monotonic() > deadline:
                recording.stop()
                raise SystemExit(f"voicecoach made no sound: {process.communicate()[1].decode().strip()}")
            time.sleep(0.005)
        # SIGTERM is the coach's stop: it says "Avslutat." and exits.
        process.send_signal(signal.SIGTERM)
        try:
            process.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.communicate()
        recording.stop()
        index, arrived = first
        if run > 0:
            latencies.append((recording.anchor() + index / RATE - launched) * 1000)
            bounds.append((arrived - launched) * 1000)
    return {
        "runs": runs,
        "median_ms": round(float(np.median(latencies)), 1),
        "max_ms": round(float(np.max(latencies)), 1),
        "upper_bound_median_ms": round(float(np.median(bounds)), 1),
        "all_ms": [round(x, 1) for x in latencies],
        "method": FIRST_SOUND_METHOD,
    }


def table(timings: list[Timing], naive: dict[str, object], first: dict[str, object]) -> str:
    head = (
        f"{'set':17} {'mode':9} {'last at s':>10} {'cues':>4} {'fixed ms':>9} {'median ms':>9} {'p99 ms':>7} "
        f"{'max ms':>7} {'drift ms':>8} {'jumps':>5} {'whole':>5} {'load':>9}  goals"
    )
    rows = [head, "-" * len(head)]
    for t in timings:
        rows.append(
            f"{t.name:17} {t.mode:9} {t.last_cue_s:10.1f} {t.cues:4d} {t.fixed_offset_ms:9.2f} {t.median_ms:9.3f} "
            f"{t.p99_ms:7.3f} {t.max_ms:7.3f} {t.drift_ms:8.3f} {t.jumps:5d} {t.cues - len(t.not_whole):5d} "
            f"{f'{t.load[0]:.1f} -> {t.load[1]:.1f}':>9}  "
            f"{'met' if t.meets_goals() else 'MISSED'}"
        )
    typed = [t for t in timings if t.typed]
    rows += [f"{t.name}: typed {', '.join(t.typed)}; said besides: {' / '.join(t.unplanned)}" for t in typed]
    g = GOALS
    rows += [
        "",
        f"goals: rendered median <= {g['rendered_median_ms']:g} ms, max <= {g['rendered_max_ms']:g} ms; real time "
        f"median <= {g['live_median_ms']:g} ms, p99 <= {g['live_p99_ms']:g} ms, drift of the last cue "
        f"<= {g['drift_ms']:g} ms",
        "errors are |heard - planned|; 'fixed' (real time: output latency plus where the recording began, the "
        "median error) is taken off first; drift is the last cue's signed error after that; jumps counts "
        f"steps > {JUMP_MS:g} ms between consecutive cues' errors (an underrun or a lost block); whole counts "
        "cues heard complete; load is the 1-minute load average before -> after",
        "",
        f"naive pyttsx3 loop (say; runAndWait; sleep(1)) x {naive['counts']}: {naive['total_s']} s for "
        f"{naive['ideal_s']:g} s of counting; onset error vs a 1-second grid: median {naive['median_ms']} ms, "
        f"p99 {naive['p99_ms']} ms, max {naive['max_ms']} ms, last count {naive['last_count_ms']} ms late",
        f"command to first sound, warm clip cache, {first['runs']} runs: median {first['median_ms']} ms, "
        f"max {first['max_ms']} ms (goal <= {g['first_sound_ms']:g} ms: "
        f"{'met' if float(first['max_ms']) <= g['first_sound_ms'] else 'MISSED'}); "
        f"arrival upper bound median {first['upper_bound_median_ms']} ms",
    ]
    return "\n".join(rows)


def piper_voice(work: Path) -> tuple[list[str], Config]:
    """The strength set's arguments with a configuration that speaks in the tests' Piper voice, installed in the
    benchmark's state directory (VOICECOACH_STATE_DIR), and that configuration."""
    voice = piper_model.build_voice(paths.voices_dir(Path(os.environ["VOICECOACH_STATE_DIR"])))
    config_file = work / "piper.toml"
    config_file.write_text(f'[speech]\nengine = "piper"\nvoice = "{voice.stem}"\n')
    cfg = config.load(config_file)
    return [*SETS["strength"], "--config", str(config_file)], cfg


def ticks_args(work: Path) -> list[str]:
    config_file = work / "ticks.toml"
    config_file.write_text('[speech]\ncounts = "ticks"\n')
    return [*SETS["strength"], "--config", str(config_file)]


def run_all(work: Path, quick: bool) -> tuple[list[Timing], dict[str, object], dict[str, object]]:
    # A state directory of our own, so the clip cache starts cold and its warming is part of the run.
    state = work / "state"
    os.environ["VOICECOACH_STATE_DIR"] = str(state)
    pack = load_pack("sv")
    render_clips = ClipCache(paths.clip_dir(state), pack.voice, DEFAULT_RATE_WPM, RENDER_RATE)
    live_clips = ClipCache(paths.clip_dir(state), pack.voice, DEFAULT_RATE_WPM, RATE)
    timings: list[Timing] = []
    # The strength set again in a Piper voice (the tests' ONNX voice: Piper's format, its leading and trailing
    # silence and noise), which must keep the same time once its clips are trimmed.
    piper_args, piper_cfg = piper_voice(work)
    piper_render = configured_cache(piper_cfg, pack.voice, RENDER_RATE)
    piper_live = configured_cache(piper_cfg, pack.voice, RATE)
    espeak_sets = {**SETS, TICKS: ticks_args(work)}
    with PulseServer(work / "pulse") as server:
        env = server.environ()
        for name, set_args, clips in [
            *((n, a, render_clips) for n, a in espeak_sets.items()),
            (PIPER, piper_args, piper_render),
        ]:
            print(f"  rendering {name}...", file=sys.stderr, flush=True)
            timings.append(rendered(name, set_args, env, clips, work))
        for name, set_args in espeak_sets.items():
            if not (quick and name == "endurance"):
                timings.append(live(name, set_args, server, env, live_clips))
        timings.append(live(PIPER, piper_args, server, env, piper_live))
        # Last: her level is kept in the state directory, and the sets above play at the loudest.
        timings.append(live(VOLUME, SETS["strength"], server, env, live_clips, VOLUME_CHANGES))
        naive = naive_loop(server, env, pack)
        first = first_sound(server, env, FIRST_SOUND_RUNS)
    return timings, naive, first


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.timing", description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="skip the 10-minute real-time endurance set")
    parser.add_argument("--output", type=Path, default=RESULTS, help=f"JSON results (default {RESULTS})")
    args = parser.parse_args(argv)

    started = datetime.now(UTC)
    with tempfile.TemporaryDirectory(prefix="voicecoach-timing-") as tmp:
        timings, naive, first = run_all(Path(tmp), quick=args.quick)
    text = table(timings, naive, first)
    print(text)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    results = {
        "command": " ".join(["python -m benchmarks.timing", *(argv if argv is not None else sys.argv[1:])]),
        "started": started.isoformat(timespec="seconds"),
        "machine": {
            "platform": platform.platform(),
            "processor": platform.machine(),
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
        },
        "goals": GOALS,
        "sets": [asdict(t) | {"meets_goals": t.meets_goals()} for t in timings],
        "naive_pyttsx3": naive,
        "first_sound": first,
        "table": text,
    }
    args.output.write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n")
    print(f"wrote {args.output}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
