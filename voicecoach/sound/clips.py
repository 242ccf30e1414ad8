"""The clip cache: pyttsx3 (espeak-ng) renders each distinct phrase once to PCM; the mixer plays the PCM.

pyttsx3 is used only to render, never to play: on Linux its playback blocks on an `aplay` subprocess
that can be neither scheduled nor interrupted.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import hashlib
import io
import logging
import os
import threading
import wave
from collections import OrderedDict
from collections.abc import Iterable
from pathlib import Path
from typing import BinaryIO, Protocol

import numpy as np

from voicecoach.engine.timeline import TICK
from voicecoach.errors import UserError

log = logging.getLogger(__name__)

SILENCE = 0.003
# A clip's onset is its first sample this far under its peak (-40 dB) and above SILENCE. espeak-ng's silence is
# digital zero (measured on the programme's phrases: nothing but the first samples of a word lies between 0 and
# SILENCE), so SILENCE alone found its onsets; a neural voice's silence is noise, and Piper scales each clip to full
# scale, so its floor rises with the scaling and may lie above SILENCE, which would start a count early by the whole
# leading silence (0.1-0.3 s). Measured on the programme's espeak-ng clips, this moved no onset by more
# than 1.4 ms (median 0) and no end by more than 1.5 ms.
ONSET_BELOW_PEAK = 0.01
TAIL_S = 0.02
# The tick (tick()): how long, how fast it dies away, and how loud at most (espeak-ng's cue words peak at 0.4-1.0).
TICK_S = 0.04
TICK_DECAY_S = 0.008
TICK_PEAK = 0.15
# Phrases said once in a while (a `ctl say`, an answer about progress) are kept up to these sizes, the least
# recently used going first; the programme's own phrases (ClipCache.keep) always stay. In memory that is about
# 80 s of speech at 48 kHz, on disk (22,050 Hz, 16 bits) about 6 minutes. Unbounded, 50 different 500-character
# `ctl say` texts took the daemon from 91 to 386 MB and added 59 MB of clips on disk.
MEMORY_BUDGET = 16 * 2**20
DISK_BUDGET = 16 * 2**20


class SpeechError(UserError):
    """Speech synthesis is unavailable or failed; the message says how to fix it."""


class Synth(Protocol):
    """What the cache renders with: espeak-ng (Synthesizer) or a Piper voice (piper.PiperSynthesizer)."""

    # Part of every clip's cache key: another engine, voice or version renders anew.
    version: str

    def render(self, text: str) -> bytes:
        """text as the bytes of a 16-bit WAV file."""
        ...


class Espeak:
    """espeak-ng, through the binding to it that pyttsx3 ships (pyttsx3.drivers._espeak), in espeak-ng's synchronous
    mode: a render runs on the caller's thread and returns with all of its audio. One per process (espeak-ng can be
    initialised once), shared by every Synthesizer, each of which sets its voice and rate before each render.

    Not through pyttsx3's engine: that runs espeak-ng on a thread of espeak-ng's own, hands the audio over in a
    callback there, and shares one engine, voice and rate between everything in the process. Measured with pyttsx3
    2.99: a second engine at another rate was the first one, whose next render came out empty (a 44-byte WAV); one
    engine whose rate was set before each render (120 and 260 words a minute in turn, 12 renders) rendered one 260
    at 120. The same 12 renders in synchronous mode: every one at its own rate, none empty."""

    def __init__(self) -> None:
        from pyttsx3.drivers import _espeak

        self._espeak = _espeak
        self.sample_rate = _espeak.Initialize(_espeak.AUDIO_OUTPUT_SYNCHRONOUS, 1000)
        if self.sample_rate == -1:
            raise RuntimeError("espeak-ng could not be initialised")
        self._chunks: list[bytes] = []
        # The binding keeps the callback referenced for as long as it is espeak-ng's.
        _espeak.SetSynthCallback(self._collect)
        self.voices = frozenset(v.identifier.decode("utf-8").lower() for v in _espeak.ListVoices(None))
        info = _espeak.Info()
        espeak_version = info.decode() if isinstance(info, bytes) else str(info)
        # pyttsx3's version stays in the cache key: clips rendered through its engine, before, are the same audio.
        self.version = f"pyttsx3-{pyttsx3_version()}/espeak-ng-{espeak_version}"
        self._lock = threading.Lock()

    def _collect(self, wav: ctypes._Pointer[ctypes.c_short], samples: int, events: object) -> int:
        if samples > 0:
            self._chunks.append(ctypes.string_at(wav, samples * 2))
        return 0  # go on

    def render(self, text: str, voice: str, rate_wpm: int) -> bytes:
        """text in voice at rate_wpm, as 16-bit mono PCM at sample_rate."""
        with self._lock:
            if self._espeak.SetVoiceByName(voice.encode()) != 0:
                raise SpeechError(f"espeak-ng cannot use its voice {voice!r}: check 'espeak-ng --voices'")
            self._espeak.SetParameter(self._espeak.RATE, rate_wpm, 0)
            self._chunks = []
            status = self._espeak.Synth(text.encode(), flags=self._espeak.ENDPAUSE | self._espeak.CHARS_UTF8)
            pcm = b"".join(self._chunks)
        if status != 0:
            raise SpeechError(f"espeak-ng could not render {text!r} (error {status})")
        return pcm


def pyttsx3_version() -> str:
    """pyttsx3's installed version, read from the name of its dist-info folder beside the package where there is
    one. importlib.metadata says the same, but importing it (email, zipfile) and searching the path took 60-70 ms of
    espeak-ng's set-up here, under load (5 starts each); from command to first sound the gain was lost in the noise
    of 5 starts (benchmarks/README.md)."""
    import pyttsx3

    site = Path(pyttsx3.__file__).resolve().parent.parent
    found = list(site.glob("pyttsx3-*.dist-info"))
    if len(found) == 1:
        return found[0].name.removeprefix("pyttsx3-").removesuffix(".dist-info")
    import importlib.metadata

    return importlib.metadata.version("pyttsx3")


@functools.cache
def espeak() -> Espeak:
    """The process's espeak-ng, started on first use."""
    try:
        return Espeak()
    except SpeechError:
        raise
    except Exception as exc:
        raise SpeechError(
            f"cannot start speech synthesis ({exc}): install espeak-ng with 'sudo apt-get install espeak-ng'"
        ) from exc


class Synthesizer:
    """espeak-ng (Espeak) set to one voice and speaking rate."""

    def __init__(self, voice: str, rate_wpm: int) -> None:
        self._espeak = espeak()
        if voice not in self._espeak.voices:
            raise SpeechError(f"espeak-ng has no voice {voice!r}: list voices with 'espeak-ng --voices'")
        self._voice = voice
        self._rate_wpm = rate_wpm
        self.version = self._espeak.version

    def render(self, text: str) -> bytes:
        """text as the bytes of a WAV file (22,050 Hz mono, as espeak-ng produces it)."""
        pcm = self._espeak.render(text, self._voice, self._rate_wpm)
        if not pcm:
            raise SpeechError(f"espeak-ng produced no audio for {text!r}")
        wav = io.BytesIO()
        with wave.open(wav, "wb") as w:
            w.setnchannels(1)
            w.setsampwidth(2)
            w.setframerate(self._espeak.sample_rate)
            w.writeframes(pcm)
        return wav.getvalue()


def read_wav(path: Path | io.BytesIO) -> tuple[np.ndarray, int]:
    """Read a 16-bit PCM WAV (a file, or its bytes) as float32 mono (channels averaged) and its sample rate."""
    with wave.open(str(path) if isinstance(path, Path) else path, "rb") as w:
        if w.getsampwidth() != 2:
            raise ValueError(f"{path if isinstance(path, Path) else 'the audio'} is not 16-bit PCM")
        if w.getframerate() <= 0:
            # Resampling divides by the rate: a damaged or hostile header must not reach it.
            raise ValueError(f"its header gives a sample rate of {w.getframerate()} Hz")
        frames = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").astype(np.float32) / 32768.0
        channels = w.getnchannels()
        rate = w.getframerate()
    if channels > 1:
        frames = frames.reshape(-1, channels).mean(axis=1)
    return frames, rate


def write_wav(path: Path | BinaryIO, samples: np.ndarray, rate: int) -> None:
    """Write float32 mono samples as a 16-bit PCM WAV (a file, or into a buffer)."""
    pcm = (np.clip(samples, -1.0, 1.0) * 32767.0).astype("<i2")
    with wave.open(str(path) if isinstance(path, Path) else path, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(pcm.tobytes())


def trim(samples: np.ndarray, rate: int) -> np.ndarray:
    """Drop leading silence (so a clip's first sample is its onset) and trailing silence, noise included."""
    level = np.abs(samples)
    peak = float(level.max()) if level.size else 0.0
    loud = np.flatnonzero(level > max(SILENCE, ONSET_BELOW_PEAK * peak))
    if loud.size == 0:
        return samples[:0]
    return samples[loud[0] : min(samples.size, loud[-1] + int(TAIL_S * rate))]


def tick(rate: int) -> np.ndarray:
    """The counts' tick (engine.timeline.TICK): TICK_S of a 1 kHz tone with a little 2.5 kHz, struck at once (its
    onset is its first sample, as a clip's is) and dying away in a few ms, TICK_PEAK at most: a soft knock, not a
    beep, well under the voice."""
    t = np.arange(round(TICK_S * rate)) / rate
    tone = np.sin(2 * np.pi * 1000 * t) + 0.5 * np.sin(2 * np.pi * 2500 * t)
    envelope = np.exp(-t / TICK_DECAY_S) * np.minimum(t * rate / 8, 1.0)
    sound = tone * envelope
    return (sound * (TICK_PEAK / np.abs(sound).max())).astype(np.float32)


def resample(samples: np.ndarray, src_rate: int, dst_rate: int) -> np.ndarray:
    """Linear resampling; clips are resampled once when loaded, never on the audio path."""
    if src_rate == dst_rate or samples.size == 0:
        return samples.astype(np.float32)
    n = round(samples.size * dst_rate / src_rate)
    positions = np.arange(n) * (src_rate / dst_rate)
    return np.interp(positions, np.arange(samples.size), samples).astype(np.float32)


class ClipCache:
    """Phrases rendered once to disk (keyed by text, voice, rate and engine version) and held in memory.

    Phrases asked for with keep() stay, in memory and on disk; the others are bounded by memory_budget and, where
    disk_budget is given, on disk by disk_budget (only the daemon, which keeps every phrase of the programme, gives
    one: a short-lived command would delete the daemon's clips). A cache that cannot be written (a full or
    read-only disk) keeps new phrases in memory only, and says so once."""

    def __init__(
        self,
        directory: Path,
        voice: str,
        rate_wpm: int,
        sample_rate: int,
        memory_budget: int = MEMORY_BUDGET,
        disk_budget: int | None = None,
        synth: Synth | None = None,
        fallback: str | None = None,
    ) -> None:
        self.directory = directory
        # Why the configured voice is not the one speaking, for `ctl status`; else None.
        self.fallback: str | None = None
        self.sample_rate = sample_rate
        self._voice = voice
        self._rate_wpm = rate_wpm
        self._memory_budget = memory_budget
        self._disk_budget = disk_budget
        # Without one given, espeak-ng in voice at rate_wpm, started on first use.
        self._synth = synth
        # Least recently used first.
        self._clips: OrderedDict[str, np.ndarray] = OrderedDict()
        self._kept: set[str] = set()
        # Kept on the disk, not in memory (spare).
        self._spared: set[str] = set()
        # Made, not rendered: never on the disk.
        self._clips[TICK] = tick(sample_rate)
        self._kept.add(TICK)
        self._unwritable = False
        try:
            directory.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            self._cannot_write(exc)
        if fallback is not None:
            self._fall_back(fallback)

    def _synthesizer(self) -> Synth:
        if self._synth is None:
            self._synth = Synthesizer(self._voice, self._rate_wpm)
        return self._synth

    def path_for(self, text: str) -> Path:
        synth = self._synthesizer()
        key = "\n".join((text, self._voice, str(self._rate_wpm), synth.version))
        return self.directory / f"{hashlib.sha256(key.encode()).hexdigest()[:32]}.wav"

    def keep(self, text: str) -> np.ndarray:
        """clip(text), kept for the cache's life: the programme's own phrases, and notices that must not fail."""
        self._kept.add(text)
        return self.clip(text)

    def spare(self, texts: Iterable[str]) -> None:
        """Never delete these from the disk, though they are not held in memory: what is said between sets, which
        `voice fetch` and `voice render` render ahead, and which the disk budget would otherwise drop for the
        `ctl say` texts that pass through (rendered again when said, seconds later with a Piper voice on a Pi)."""
        self._spared.update(texts)

    def missing(self, texts: Iterable[str]) -> list[str]:
        """Those of texts that have no clip on the disk yet."""
        return [text for text in texts if text != TICK and not self.path_for(text).is_file()]

    def store(self, text: str) -> bool:
        """Render text onto the disk unless it is there, without holding it in memory: what is said between sets,
        rendered ahead. False when the disk cannot be written, so that there is no point in going on."""
        if text == TICK:
            return True
        path = self.path_for(text)
        if path.is_file():
            return True
        self._render(text, path)
        return not self._unwritable

    def clip(self, text: str) -> np.ndarray:
        """The phrase as float32 mono at the cache's sample rate, rendered on first use."""
        cached = self._clips.get(text)
        if cached is not None:
            self._clips.move_to_end(text)
            return cached
        path = self.path_for(text)
        try:
            samples, rate = read_wav(path)
            # The file's time is its last use: what the disk budget keeps.
            with contextlib.suppress(OSError):
                os.utime(path)
        except (OSError, EOFError, ValueError, wave.Error):
            samples, rate = self._render(text, path)
        voiced = trim(samples, rate)
        if voiced.size == 0:
            # A render that is all silence would be silence where a cue belongs (pyttsx3's engine, rendered
            # through before Espeak, handed back an empty buffer now and then), so it is rendered again, and refused
            # if it is still empty.
            samples, rate = self._render(text, path)
            voiced = trim(samples, rate)
            if voiced.size == 0:
                raise SpeechError(
                    f"espeak-ng rendered {text!r} as silence: check 'espeak-ng -v {self._voice} {text!r}'"
                )
        clip = resample(voiced, rate, self.sample_rate)
        self._clips[text] = clip
        self._fit_memory()
        return clip

    def duration(self, text: str) -> float:
        return self.clip(text).size / self.sample_rate

    def _fit_memory(self) -> None:
        loose = [(text, clip.nbytes) for text, clip in self._clips.items() if text not in self._kept]
        excess = sum(size for _text, size in loose) - self._memory_budget
        # The newest stays even when it alone is over the budget: it is about to be played.
        for text, size in loose[:-1]:
            if excess <= 0:
                break
            del self._clips[text]
            excess -= size

    def prune(self) -> None:
        """Delete the least recently used clip files that are neither kept nor spared, down to the disk budget (if
        there is one)."""
        if self._disk_budget is None:
            return
        kept = {self.path_for(text).name for text in self._kept | self._spared}
        files: list[tuple[float, int, Path]] = []
        with contextlib.suppress(OSError), os.scandir(self.directory) as entries:
            for entry in entries:
                if entry.name.endswith(".wav") and entry.name not in kept and entry.is_file(follow_symlinks=False):
                    st = entry.stat(follow_symlinks=False)
                    files.append((st.st_mtime, st.st_size, Path(entry.path)))
        excess = sum(size for _mtime, size, _path in files) - self._disk_budget
        for _mtime, size, path in sorted(files):
            if excess <= 0:
                break
            with contextlib.suppress(OSError):
                path.unlink()
            excess -= size

    def _render(self, text: str, path: Path) -> tuple[np.ndarray, int]:
        synth = self._synthesizer()
        try:
            data = synth.render(text)
        except SpeechError as exc:
            if isinstance(synth, Synthesizer):
                raise
            # A voice that loaded can still fail on a phrase (its phonemes timed out, say): rather than a set
            # failing, espeak-ng speaks from here on, this phrase under espeak-ng's own key.
            self._fall_back(str(exc))
            path = self.path_for(text)
            data = self._synthesizer().render(text)
        try:
            samples, rate = read_wav(io.BytesIO(data))
        except (EOFError, ValueError, wave.Error) as exc:
            raise SpeechError(f"espeak-ng produced unreadable audio for {text!r}: {exc}") from exc
        # A temporary name and a rename, so a crash never leaves a truncated clip behind.
        tmp_path = path.with_name(f"{path.stem}.{os.getpid()}.tmp.wav")
        try:
            tmp_path.write_bytes(data)
            os.replace(tmp_path, path)
        except OSError as exc:
            with contextlib.suppress(OSError):
                tmp_path.unlink(missing_ok=True)
            self._cannot_write(exc)
        else:
            self._unwritable = False
            # Kept and spared clips are never pruned, so adding one leaves nothing to prune.
            if text not in self._kept and text not in self._spared:
                self.prune()
        return samples, rate

    def _fall_back(self, reason: str) -> None:
        self.fallback = reason
        self._synth = None
        log.warning("%s; speaking with espeak-ng instead", reason)

    def _cannot_write(self, exc: OSError) -> None:
        if not self._unwritable:
            self._unwritable = True
            log.warning(
                "the clip cache %s cannot be written (%s): new phrases are kept in memory only",
                self.directory,
                exc.strerror or exc,
            )
