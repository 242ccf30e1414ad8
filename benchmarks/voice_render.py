"""How long speech takes to render: the real-time factor of synthesis (time to render / length of the speech) and
the time to render everything the Swedish coach renders ahead into an empty clip cache, and how soon a text no cache
holds is first heard, for espeak-ng and for the tests' Piper-format voice (tests/piper_model.py). Prints a table and
writes benchmarks/results/voice_render.json.

The test voice's inference is a few ONNX operators, so its figures are what the Piper path costs around a voice:
espeak-ng's phonemes (a process a clause), onnxruntime's call, the scaling, trimming and the cache. A real medium
voice adds its inference on top (benchmarks/README.md gives the Pi 4 figure and its source). Needs the [piper]
extra and onnx (scripts/install --test). From the project root:
    .venv/bin/python -m benchmarks.voice_render      # about a minute
"""

from __future__ import annotations

import argparse
import io
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from benchmarks.results_file import write_results
from tests import piper_model
from voicecoach import paths
from voicecoach.coach import phrases_to_render, sentences
from voicecoach.config import DEFAULT_RATE_WPM
from voicecoach.engine.language import load_pack
from voicecoach.engine.programme import ENDURANCE, EXERCISES
from voicecoach.sound.clips import ClipCache, Synth, Synthesizer, read_wav
from voicecoach.sound.piper import PiperSynthesizer, phonemize
from voicecoach.training.progress_texts import load_phrases, summary_pieces, to_render
from voicecoach.training.progression import Summary, TrainingPhase

RESULTS = Path(__file__).resolve().parent / "results" / "voice_render.json"
# What the daemon plays at; the cache resamples to it once.
PLAY_RATE = 48000


def per_phrase(synth: Synth, texts: list[str], rounds: int) -> dict[str, float]:
    """The median over rounds of each phrase's render time, against the length of the speech rendered."""
    render_s: list[float] = []
    audio_s: list[float] = []
    empty = 0
    for text in texts:
        times = []
        length = 0.0
        while len(times) < rounds:
            began = time.perf_counter()
            samples, rate = read_wav(io.BytesIO(synth.render(text)))
            if samples.size == 0:
                # Nothing rendered (pyttsx3's engine did that now and then): the clip cache renders again, as here.
                empty += 1
                continue
            times.append(time.perf_counter() - began)
            length = samples.size / rate
        render_s.append(statistics.median(times))
        audio_s.append(length)
    factors = [r / a for r, a in zip(render_s, audio_s, strict=True)]
    return {
        "phrases": len(texts),
        "empty_renders": empty,
        "speech_s": sum(audio_s),
        "render_s": sum(render_s),
        "rtf": sum(render_s) / sum(audio_s),
        "rtf_median_phrase": statistics.median(factors),
        "rtf_max_phrase": max(factors),
    }


def whole_programme(make_cache: Callable[[Path], ClipCache], texts: list[str]) -> float:
    """Seconds to render, trim, resample and store every phrase into an empty cache (the voice loaded first)."""
    with tempfile.TemporaryDirectory() as tmp:
        cache = make_cache(Path(tmp))
        cache.path_for(texts[0])
        began = time.perf_counter()
        for text in texts:
            cache.keep(text)
        return time.perf_counter() - began


def an_answer() -> str:
    """A text of five sentences no cache holds, as a `ctl say` may be: a "hur går det" answer written out whole (the
    daemon says those in pieces rendered ahead)."""
    summary = Summary(4, 12, TrainingPhase.LEARNING, ENDURANCE.key, 4, 4, 20, 26)
    return " ".join(summary_pieces(summary, load_phrases("sv")))


def first_sound(synth: Synth, text: str, rounds: int) -> dict[str, float]:
    """Seconds from asking to the first sound (the median over rounds): rendered whole, as the daemon did, and a
    sentence at a time (Coach.say), where the first sentence plays while the next renders."""
    first = sentences(text)[0]
    whole_s, first_s = [], []
    for _ in range(rounds):
        began = time.perf_counter()
        whole = synth.render(text)
        whole_s.append(time.perf_counter() - began)
        began = time.perf_counter()
        data = synth.render(first)
        first_s.append(time.perf_counter() - began)
    samples, rate = read_wav(io.BytesIO(data))
    answer, answer_rate = read_wav(io.BytesIO(whole))
    return {
        "answer_sentences": len(sentences(text)),
        "answer_speech_s": answer.size / answer_rate,
        "answer_whole_s": statistics.median(whole_s),
        "answer_first_sentence_s": statistics.median(first_s),
        "first_sentence_speech_s": samples.size / rate,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3, help="renders of each phrase; the median counts")
    args = parser.parse_args()
    pack = load_pack("sv")
    # Everything rendered ahead: the sets, the notices, the questions and the progress answers' pieces.
    between = to_render(load_phrases("sv"))
    texts = phrases_to_render(EXERCISES, pack, between, lambda _text: 1.0)
    answer = an_answer()
    with tempfile.TemporaryDirectory() as tmp:
        model = piper_model.build_voice(paths.voices_dir(Path(tmp)))
        began = time.perf_counter()
        piper = PiperSynthesizer(model, DEFAULT_RATE_WPM)
        piper_load_s = time.perf_counter() - began
        began = time.perf_counter()
        for text in texts:
            phonemize(text, piper.config.espeak_voice)
        phonemize_s = time.perf_counter() - began
        espeak = Synthesizer(pack.voice, DEFAULT_RATE_WPM)
        results = {
            "espeak-ng": {
                **per_phrase(espeak, texts, args.rounds),
                **first_sound(espeak, answer, args.rounds),
                "programme_s": whole_programme(
                    lambda d: ClipCache(d, pack.voice, DEFAULT_RATE_WPM, PLAY_RATE, synth=espeak), texts
                ),
            },
            "piper test voice": {
                **per_phrase(piper, texts, args.rounds),
                **first_sound(piper, answer, args.rounds),
                "programme_s": whole_programme(
                    lambda d: ClipCache(d, pack.voice, DEFAULT_RATE_WPM, PLAY_RATE, synth=piper), texts
                ),
                "load_s": piper_load_s,
                "phonemize_s": phonemize_s,
            },
        }
    print(f"{len(texts)} phrases rendered ahead in Swedish, median of {args.rounds} renders each")
    print(f"{'voice':<18}{'speech s':>9}{'render s':>9}{'RTF':>7}{'phrase RTF med/max':>20}{'programme s':>13}")
    print("-" * 76)
    for name, r in results.items():
        print(
            f"{name:<18}{r['speech_s']:>9.1f}{r['render_s']:>9.2f}{r['rtf']:>7.3f}"
            f"{r['rtf_median_phrase']:>11.3f} / {r['rtf_max_phrase']:<6.3f}{r['programme_s']:>13.2f}"
        )
    print(f"first sound of an answer of {results['espeak-ng']['answer_sentences']} sentences no cache holds:")
    for name, r in results.items():
        print(
            f"  {name:<16} whole ({r['answer_speech_s']:.1f} s of speech) {r['answer_whole_s']:.3f} s, "
            f"its first sentence ({r['first_sentence_speech_s']:.1f} s of speech) {r['answer_first_sentence_s']:.3f} s"
        )
    print(
        f"piper test voice: loading (onnxruntime session, a trial inference, espeak-ng's version) "
        f"{piper_load_s:.3f} s; espeak-ng's phonemes for all {len(texts)} phrases {phonemize_s:.2f} s"
    )
    write_results(RESULTS, rounds=args.rounds, play_rate=PLAY_RATE, answer=answer, voices=results)


if __name__ == "__main__":
    main()
