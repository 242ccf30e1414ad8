"""Streaming conversion to the recogniser's 16 kHz, block by block, with the same result as converting at once.

The played signal comes at the output device's rate (22.05 or 48 kHz) and files come at any rate. Going down,
a low-pass filter first removes what 16 kHz cannot hold: folded back, it would be noise to the decoder and a
mismatch between the echo reference and the microphone, whose own converter filters it.
"""

from __future__ import annotations

import numpy as np

RATE = 16000
_TAPS_PER_SIDE = 16


def _lowpass(cutoff: float) -> np.ndarray:
    """A windowed-sinc low-pass filter; cutoff is a fraction of the input's sample rate."""
    n = np.arange(-_TAPS_PER_SIDE, _TAPS_PER_SIDE + 1)
    taps = 2 * cutoff * np.sinc(2 * cutoff * n) * np.hamming(n.size)
    return (taps / taps.sum()).astype(np.float32)


class Resampler:
    """Converts consecutive blocks from one sample rate to another, carrying filter and phase across blocks."""

    def __init__(self, src_rate: int, dst_rate: int = RATE) -> None:
        self.src_rate = src_rate
        self.dst_rate = dst_rate
        self._step = src_rate / dst_rate
        # 0.45 of the output rate: a little below its Nyquist frequency, for the filter's roll-off.
        self._taps = _lowpass(0.45 * dst_rate / src_rate) if dst_rate < src_rate else None
        self._history = np.zeros(2 * _TAPS_PER_SIDE, dtype=np.float32)
        self._tail = np.zeros(0, dtype=np.float32)
        # Where the next output sample lies, in input samples from the start of _tail. The filter delays its
        # output by half its length, so a filtered stream starts that much later.
        self._phase = float(_TAPS_PER_SIDE) if self._taps is not None else 0.0

    def process(self, block: np.ndarray) -> np.ndarray:
        """The next output block for the next input block (float32 mono)."""
        block = np.asarray(block, dtype=np.float32)
        if self.src_rate == self.dst_rate:
            return block
        if self._taps is not None:
            padded = np.concatenate((self._history, block))
            self._history = padded[-self._history.size :]
            block = np.convolve(padded, self._taps, mode="valid")[: block.size]
        data = np.concatenate((self._tail, block))
        # Interpolation needs the sample after each position, so the last one waits for the next block.
        count = max(0, int(np.ceil((data.size - 1 - self._phase) / self._step)))
        positions = self._phase + np.arange(count) * self._step
        out = np.interp(positions, np.arange(data.size), data).astype(np.float32)
        following = self._phase + count * self._step
        consumed = min(int(following), data.size)
        self._tail = data[consumed:]
        self._phase = following - consumed
        return out


def to_rate(samples: np.ndarray, src_rate: int, dst_rate: int = RATE) -> np.ndarray:
    """A whole signal converted at once."""
    return Resampler(src_rate, dst_rate).process(samples)


# Taps either side of a fractional read: 4 keep its error below -60 dB up to 3 kHz, where speech's energy is.
_READ_TAPS = 8


def read_at(signal: np.ndarray, first: int, positions: np.ndarray) -> np.ndarray:
    """signal (whose sample 0 has index first) at fractional indices, band-limited (windowed sinc); 0 outside it."""
    lo = max(int(np.floor(positions.min(initial=0.0))) - _READ_TAPS - first, 0)
    hi = min(int(np.ceil(positions.max(initial=0.0))) + _READ_TAPS + 1 - first, signal.size)
    if hi <= lo or not signal[lo:hi].any():
        # Silence in, silence out, at no cost: the coach is quiet most of the day.
        return np.zeros(positions.size, dtype=np.float32)
    base = np.floor(positions).astype(np.int64)
    frac = positions - base
    offsets = np.arange(-_READ_TAPS + 1, _READ_TAPS + 1)
    # Each output sample from the 2 * _READ_TAPS input samples around it, weighted by a Hann-windowed sinc.
    distance = frac[:, None] - offsets[None, :]
    weights = np.sinc(distance) * (0.5 + 0.5 * np.cos(np.pi * distance / _READ_TAPS))
    index = base[:, None] + offsets[None, :] - first
    inside = (index >= 0) & (index < signal.size)
    taken = np.where(inside, signal[np.clip(index, 0, signal.size - 1)], 0.0)
    return np.sum(taken * weights, axis=1).astype(np.float32)
