"""The clip cache: pyttsx3 (espeak-ng) renders each distinct phrase once to PCM; the mixer plays the PCM.

pyttsx3 is used only to render, never to play: on Linux its playback blocks on an `aplay` subprocess
that can be neither scheduled nor interrupted.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.metadata
import io
import os
import wave
from pathlib import Path

import numpy as np

from voicecoach.errors import UserError

SILENCE = 0.003
TAIL_S = 0.02


class SpeechError(UserError):
    """Speech synthesis is unavailable or failed; the message says how to fix it."""


class Synthesizer:
    """A pyttsx3 engine on the espeak-ng driver, set to one voice and speaking rate."""

    def __init__(self, voice: str, rate_wpm: int) -> None:
        try:
            import pyttsx3
            from pyttsx3.drivers import _espeak

            engine = pyttsx3.init("espeak")
        except Exception as exc:
            raise SpeechError(
                f"cannot start speech synthesis ({exc}): install espeak-ng with 'sudo apt-get install espeak-ng'"
            ) from exc
        known = {v.id for v in engine.getProperty("voices")}
        if voice not in known:
            raise SpeechError(f"espeak-ng has no voice {voice!r}: list voices with 'espeak-ng --voices'")
        engine.setProperty("voice", voice)
        engine.setProperty("rate", rate_wpm)
        self._engine = engine
        self._espeak = _espeak
        info = _espeak.Info()
        espeak_version = info.decode() if isinstance(info, bytes) else str(info)
        self.version = f"pyttsx3-{importlib.metadata.version('pyttsx3')}/espeak-ng-{espeak_version}"

    def render(self, text: str, path: Path) -> None:
        """Write text as a WAV file at path (22,050 Hz mono, as espeak-ng produces it)."""
        # pyttsx3 prints "Audio saved to ..." on stdout, which would corrupt JSON output.
        with contextlib.redirect_stdout(io.StringIO()):
            self._engine.save_to_file(text, str(path))
            self._engine.runAndWait()
            # espeak-ng synthesises on its own thread (AUDIO_OUTPUT_RETRIEVAL) and runAndWait can return
            # before it is done: the file would be missing, or worse, the next phrase's name would get this
            # phrase's audio. Synchronize waits for the synthesis to finish.
            self._espeak.Synchronize()
        if not path.exists():
            raise SpeechError(f"espeak-ng produced no audio for {text!r}")


def read_wav(path: Path) -> tuple[np.ndarray, int]:
    """Read a 16-bit PCM WAV as float32 mono (channels averaged) and its sample rate."""
    with wave.open(str(path), "rb") as w:
        if w.getsampwidth() != 2:
            raise ValueError(f"{path} is not 16-bit PCM")
        if w.getframerate() <= 0:
            # Resampling divides by the rate: a damaged or hostile header must not reach it.
            raise ValueError(f"its header gives a sample rate of {w.getframerate()} Hz")
        frames = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").astype(np.float32) / 32768.0
        channels = w.getnchannels()
        rate = w.getframerate()
    if channels > 1:
        frames = frames.reshape(-1, channels).mean(axis=1)
    return frames, rate


def write_wav(path: Path, samples: np.ndarray, rate: int) -> None:
    """Write float32 mono samples as a 16-bit PCM WAV."""
    pcm = (np.clip(samples, -1.0, 1.0) * 32767.0).astype("<i2")
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(pcm.tobytes())


def trim(samples: np.ndarray, rate: int) -> np.ndarray:
    """Drop leading silence (so a clip's first sample is its onset) and trailing silence."""
    loud = np.flatnonzero(np.abs(samples) > SILENCE)
    if loud.size == 0:
        return samples[:0]
    return samples[loud[0] : min(samples.size, loud[-1] + int(TAIL_S * rate))]


def resample(samples: np.ndarray, src_rate: int, dst_rate: int) -> np.ndarray:
    """Linear resampling; clips are resampled once when loaded, never on the audio path."""
    if src_rate == dst_rate or samples.size == 0:
        return samples.astype(np.float32)
    n = round(samples.size * dst_rate / src_rate)
    positions = np.arange(n) * (src_rate / dst_rate)
    return np.interp(positions, np.arange(samples.size), samples).astype(np.float32)


class ClipCache:
    """Phrases rendered once to disk (keyed by text, voice, rate and engine version) and held in memory."""

    def __init__(self, directory: Path, voice: str, rate_wpm: int, sample_rate: int) -> None:
        self.directory = directory
        self.sample_rate = sample_rate
        self._voice = voice
        self._rate_wpm = rate_wpm
        self._synth: Synthesizer | None = None
        self._clips: dict[str, np.ndarray] = {}
        try:
            directory.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise SpeechError(f"cannot create the clip cache {directory}: {exc.strerror}") from exc

    def _synthesizer(self) -> Synthesizer:
        if self._synth is None:
            self._synth = Synthesizer(self._voice, self._rate_wpm)
        return self._synth

    def path_for(self, text: str) -> Path:
        synth = self._synthesizer()
        key = "\n".join((text, self._voice, str(self._rate_wpm), synth.version))
        return self.directory / f"{hashlib.sha256(key.encode()).hexdigest()[:32]}.wav"

    def clip(self, text: str) -> np.ndarray:
        """The phrase as float32 mono at the cache's sample rate, rendered on first use."""
        cached = self._clips.get(text)
        if cached is not None:
            return cached
        path = self.path_for(text)
        try:
            samples, rate = read_wav(path)
        except (OSError, EOFError, ValueError, wave.Error):
            samples, rate = self._render(text, path)
        voiced = trim(samples, rate)
        if voiced.size == 0:
            # pyttsx3's espeak driver now and then hands back an empty buffer; such a clip would be silence
            # where a cue belongs, so it is rendered again, and refused if it is still empty.
            samples, rate = self._render(text, path)
            voiced = trim(samples, rate)
            if voiced.size == 0:
                raise SpeechError(
                    f"espeak-ng rendered {text!r} as silence: check 'espeak-ng -v {self._voice} {text!r}'"
                )
        clip = resample(voiced, rate, self.sample_rate)
        self._clips[text] = clip
        return clip

    def duration(self, text: str) -> float:
        return self.clip(text).size / self.sample_rate

    def _render(self, text: str, path: Path) -> tuple[np.ndarray, int]:
        # Render to a temporary name and rename, so a crash never leaves a truncated clip behind.
        tmp_path = path.with_name(f"{path.stem}.{os.getpid()}.tmp.wav")
        try:
            self._synthesizer().render(text, tmp_path)
            samples, rate = read_wav(tmp_path)
            os.replace(tmp_path, path)
        except (EOFError, ValueError, wave.Error) as exc:
            raise SpeechError(f"espeak-ng produced unreadable audio for {text!r}: {exc}") from exc
        except OSError as exc:
            raise SpeechError(f"cannot write to the clip cache {self.directory}: {exc.strerror}") from exc
        finally:
            tmp_path.unlink(missing_ok=True)
        return samples, rate
