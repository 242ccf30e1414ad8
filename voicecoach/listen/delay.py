"""How late the coach's voice reaches the microphone: GCC-PHAT of the microphone against the played signal, and a
pairing of the two streams that follows it as it drifts.

The audio clocks line the played signal up with the microphone to within a few milliseconds where the speaker and
the microphone are one device. What they cannot see is the rest of the path: the air, a second device's buffers, a
sound server's loopback (80-150 ms in the tests' two-device room), and the drift between two devices' clocks (40 to
80 ppm through PulseAudio's loopback here: up to 1.3 samples a second at 16 kHz). That delay is found by listening:
the cross-correlation of the microphone with the played signal, each frequency weighted alike (PHAT), peaks at the
delay of the echo whatever the spectrum of the speech, and her voice, which the played signal does not contain,
only lowers the peak.

Drift is followed by reading the played signal at a slowly changing fractional offset, not in steps: measured on
the narration through a simulated room drifting 80 ppm, speexdsp's canceller removed 5-7 dB of echo with the
pairing fixed, 17-21 dB when it was moved a sample at a time, and 25-30 dB (as much as with no drift) with the
drift followed smoothly. Pure: the caller feeds it and says when.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import numpy as np

from voicecoach.listen.resample import RATE

# The window each estimate looks at: long enough to hold a few words of narration.
WINDOW_S = 2.0
# The delays looked for, relative to where the echo was paired: earlier (a clock's estimate may be late, and lost
# microphone blocks bring the echo earlier), up to half a second later (a second sound card's buffers, a speaker's
# underrun).
EARLIEST_S = -0.3
LATEST_S = 0.5
# Until the echo has been found since the streams were last paired, earlier still: at the start of a stream the
# one-clock test room's stamps put the echo 0.3-0.4 s later than it came in 2 of 11 starts (within 0.11 s in the
# others), and with the echo out of reach it was lined up 11 s into the set, after a jump to a wrong peak, or not
# in 21 s, while the floor on the echo was lifted as if a system canceller were in front. Twice that, for margin;
# not a second: the counts are a second apart, and one may stand in for the next.
UNMEASURED_EARLIEST_S = -0.8
WINDOW = round(WINDOW_S * RATE)
EARLIEST = round(EARLIEST_S * RATE)
UNMEASURED_EARLIEST = round(UNMEASURED_EARLIEST_S * RATE)
LATEST = round(LATEST_S * RATE)
# A peak must stand this far above the correlation's spread to count. Measured: the narration's echo through the
# test rooms peaked 40-110 times above it; through a simulated reverberant room 10-17 times; windows whose echo was
# out of reach, or her voice alone, 4-8 times (and once 31, on a count a second away from another).
MIN_PEAK_RATIO = 9.0
# A change within this many samples of the pairing (and the most the clocks can have drifted meanwhile) is followed
# at once; a larger one must be seen in a row, and stand out this much more than the correlation where the echo
# was: a room's reflections make peaks of their own (on the simulated room a reflection 3 ms after the direct sound
# won one window in eight).
FOLLOW_SAMPLES = 4.0
AGREE_SAMPLES = 2.0
SWITCH_RATIO = 1.5
# Estimates in a row that must agree on a jump: two for the first pairing, three once the echo has been found (a
# jump of 100 ms, on the Korean narration through a simulated room, won two windows in a row and was wrong).
CONFIRM_FIRST = 2
CONFIRM_FOUND = 3
# Drift is fitted over this much of the recent past, once it spans at least DRIFT_MIN_S; and it is never taken for
# more than MAX_DRIFT (two sound cards differ by tens of ppm; more is a fit gone wrong).
DRIFT_HISTORY_S = 60.0
DRIFT_MIN_S = 5.0
MAX_DRIFT = 300e-6
# How long the pairing takes to meet the line through the points when it is off it.
CATCH_UP_S = 10.0


@dataclass(frozen=True)
class Estimate:
    """Where the echo was found: samples after the played signal as the caller lined it up (to a fraction of a
    sample); how clearly (the peak over the correlation's spread); and how clearly it was where the caller had it
    (the same, at delay 0)."""

    delay: float
    peak_ratio: float
    current_ratio: float


def gcc_phat(mic: np.ndarray, played: np.ndarray, earliest: int, latest: int) -> Estimate:
    """The delay d in [earliest, latest] at which mic[i] best matches played[i - d + latest], and how clearly.

    played must be mic.size + latest - earliest long: it starts latest samples before mic and ends -earliest after.
    """
    span = latest - earliest
    if played.size != mic.size + span:
        raise ValueError(f"played must be {mic.size + span} samples long, not {played.size}")
    size = 1 << (played.size + mic.size).bit_length()
    cross = np.fft.rfft(mic.astype(np.float64), size) * np.conj(np.fft.rfft(played.astype(np.float64), size))
    magnitude = np.abs(cross)
    # Bins where neither signal has energy (above espeak-ng's band, say) must not be amplified into noise.
    cross /= magnitude + 1e-6 * float(magnitude.max(initial=0.0)) + 1e-20
    correlation = np.fft.irfft(cross, size)
    # correlation[k] = sum mic[i + k] played[i] (circularly); the echo at delay d lies at k = d - latest, so
    # values[i] is the correlation at delay earliest + i.
    values = correlation[np.arange(earliest - latest, 1) % size]
    best = int(np.argmax(values))
    spread = float(np.std(values)) or 1e-20
    # Where the caller had the echo: a fractional pairing puts the peak up to half a sample off 0, and PHAT peaks
    # are a sample or two wide.
    current = float(values[max(-earliest - 2, 0) : -earliest + 3].max()) if earliest <= 0 <= latest else 0.0
    return Estimate(earliest + best + _vertex(values, best), float(values[best]) / spread, current / spread)


def _vertex(values: np.ndarray, i: int) -> float:
    """Where between samples a peak at i really is: the vertex of the parabola through it and its neighbours."""
    if i == 0 or i == values.size - 1:
        return 0.0
    left, mid, right = float(values[i - 1]), float(values[i]), float(values[i + 1])
    curve = left - 2 * mid + right
    return 0.0 if curve >= 0 else max(-0.5, min(0.5, 0.5 * (left - right) / curve))


class Pairing:
    """Which played sample each microphone sample n hears: played index = n + lag(n), a straight line through the
    recent measurements of where the echo was (its slope is the drift between the two clocks)."""

    def __init__(self) -> None:
        self._offset: float | None = None  # lag at microphone sample _at
        self._at = 0
        self.drift = 0.0
        self._points: deque[tuple[int, float]] = deque()
        self._candidates: list[float] = []
        # The drift the points' line has, once fitted (the pairing's own drift also steers towards the line).
        self._fitted: float | None = None
        # Estimates in a row that found no echo at all (no peak); pair() keeps it: the room did not change.
        self.unheard = 0

    @property
    def known(self) -> bool:
        return self._offset is not None

    @property
    def measured(self) -> bool:
        """Whether the echo has been found where the pairing has it (not only set from the clocks or a count)."""
        return bool(self._points)

    @property
    def measured_drift(self) -> float | None:
        """The drift between the clocks, once fitted over enough of the past to be told: the slope of the line
        through where the echo was found (played samples per microphone sample, less one)."""
        return self._fitted

    def lag(self, n: int | np.ndarray) -> float | np.ndarray:
        """The lag at microphone sample(s) n."""
        assert self._offset is not None, "pair first"
        return self._offset + self.drift * (n - self._at)

    def pair(self, lag: float, n: int) -> None:
        """Pair anew (from the clocks, or by count): what was measured before no longer applies."""
        self._offset, self._at = lag, n
        self._points.clear()
        self._candidates.clear()

    def found(self, n: int, base: int, estimate: Estimate) -> bool:
        """The echo around microphone sample n was found estimate.delay samples later than the lag base (lag(n),
        rounded) the played signal was looked at with; follow it. True when the pairing jumped (what was learnt of
        the echo path is stale), False when it held or moved on smoothly."""
        if estimate.peak_ratio < MIN_PEAK_RATIO:
            self.unheard += 1
            return False
        self.unheard = 0
        at = base - estimate.delay
        # The clocks may have drifted this far since the echo was last found where it was expected.
        since = n - self._points[-1][0] if self._points else 0
        if abs(at - float(self.lag(n))) <= FOLLOW_SAMPLES + MAX_DRIFT * since:
            self._candidates.clear()
            self._points.append((n, at))
            while n - self._points[0][0] > DRIFT_HISTORY_S * RATE:
                self._points.popleft()
            self._fit(n)
            return False
        if estimate.peak_ratio < SWITCH_RATIO * estimate.current_ratio:
            # Where the echo already is still correlates nearly as well: a reflection, or noise.
            return False
        if self._candidates and abs(self._candidates[-1] - at) > AGREE_SAMPLES:
            self._candidates.clear()
        self._candidates.append(at)
        # Found before: its estimates overlap by half, so a phrase that matches another can win twice in a row.
        if len(self._candidates) < (CONFIRM_FOUND if self._points else CONFIRM_FIRST):
            return False
        drift = self.drift
        self.pair(at, n)
        self.drift = drift
        self._points.append((n, at))
        return True

    def _fit(self, n: int) -> None:
        """Steer the pairing towards the line through the points, without a jump: a canceller forgives an echo a
        few samples from where it was learnt, not one that moves (measured: a third of a sample back and forth
        every second cost 6 dB of the echo removed). The steering is a change of slope, so the played signal is
        read a little faster or slower until the two lines meet, over CATCH_UP_S."""
        ns = np.array([p[0] for p in self._points], dtype=np.float64)
        lags = np.array([p[1] for p in self._points])
        slope = self._fitted or 0.0
        if ns[-1] - ns[0] >= DRIFT_MIN_S * RATE:
            slope = float(np.clip(_robust_slope(ns, lags), -MAX_DRIFT, MAX_DRIFT))
            self._fitted = slope
        target = float(np.median(lags - slope * (ns - n)))
        current = float(self.lag(n))
        self._offset, self._at = current, n
        self.drift = float(np.clip(slope + (target - current) / (CATCH_UP_S * RATE), -MAX_DRIFT, MAX_DRIFT))


def _robust_slope(ns: np.ndarray, lags: np.ndarray) -> float:
    """The median of the slopes between points at least DRIFT_MIN_S / 2 apart (Theil-Sen): a reflection that won
    a window now and then does not tilt it."""
    i, j = np.triu_indices(ns.size, k=1)
    apart = ns[j] - ns[i] >= DRIFT_MIN_S / 2 * RATE
    if not apart.any():
        return 0.0
    return float(np.median((lags[j] - lags[i])[apart] / (ns[j] - ns[i])[apart]))
