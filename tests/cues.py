"""Finding what was played in a recording: a clip by cross-correlation, each planned cue near where it should be,
and where a recording is loud. numpy only, for the audio tests and the benchmarks."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import numpy as np

# Digital silence from a null sink is exactly zero; this allows for a resampler's ringing (about -60 dBFS).
SILENT = 1e-3


@dataclass(frozen=True)
class Match:
    """Where a clip starts in a recording, and how well it matches there (1.0: an exact copy, at any gain)."""

    sample: int
    score: float


def correlate(signal: np.ndarray, template: np.ndarray) -> np.ndarray:
    """c[k] = sum_j template[j] * signal[k + j] for every k at which template lies wholly inside signal (by FFT)."""
    size = 1 << (signal.size + template.size - 2).bit_length()
    spectrum = np.fft.rfft(signal, size) * np.conj(np.fft.rfft(template, size))
    return np.fft.irfft(spectrum, size)[: signal.size - template.size + 1]


def find_clip(recording: np.ndarray, clip: np.ndarray, around: int, reach: int) -> Match:
    """The start of clip in recording, searched within reach samples either side of around."""
    low = max(0, around - reach)
    segment = recording[low : min(recording.size, around + reach + clip.size)]
    if segment.size < clip.size or clip.size == 0:
        return Match(around, 0.0)
    corr = correlate(segment.astype(np.float64), clip.astype(np.float64))
    k = int(np.argmax(corr))
    energy = float(np.linalg.norm(clip) * np.linalg.norm(segment[k : k + clip.size]))
    return Match(low + k, float(corr[k]) / energy if energy > 0 else 0.0)


@dataclass(frozen=True)
class Onset:
    """A planned cue and where it was heard; times in seconds (planned: on the timeline, heard: in the recording)."""

    text: str
    planned: float
    heard: float
    score: float

    @property
    def error(self) -> float:
        return self.heard - self.planned


def cue_onsets(
    recording: np.ndarray,
    rate: int,
    cues: Sequence[tuple[float, str]],
    clip_for: Callable[[str], np.ndarray],
    offset: float | None = None,
    reach_s: float = 0.25,
) -> list[Onset]:
    """Find every planned (t, text) cue in recording, each within reach_s of where it should be.

    offset is the recording time of the timeline's zero; None finds it from the first cue, searched everywhere.
    reach_s must stay below the gap between two cues with the same text, so a cue cannot match its neighbour.
    """
    if offset is None:
        first_t, first_text = cues[0]
        first = find_clip(recording, clip_for(first_text), 0, recording.size)
        offset = first.sample / rate - first_t
    reach = round(reach_s * rate)
    onsets = []
    for t, text in cues:
        match = find_clip(recording, clip_for(text), round((t + offset) * rate), reach)
        onsets.append(Onset(text, t, match.sample / rate, match.score))
    return onsets


def fixed_latency(onsets: Iterable[Onset]) -> float:
    """The constant part of the errors (output latency plus where the recording began): their median."""
    return float(np.median([o.error for o in onsets]))


def loud_spans(samples: np.ndarray, rate: int, level: float = SILENT, gap_s: float = 0.05) -> list[tuple[int, int]]:
    """The [start, end) sample ranges where samples exceed level, joining spans less than gap_s apart."""
    loud = np.flatnonzero(np.abs(samples) > level)
    if loud.size == 0:
        return []
    breaks = np.flatnonzero(np.diff(loud) > gap_s * rate)
    starts = np.concatenate(([loud[0]], loud[breaks + 1]))
    ends = np.concatenate((loud[breaks], [loud[-1]])) + 1
    return list(zip(starts.tolist(), ends.tolist(), strict=True))
