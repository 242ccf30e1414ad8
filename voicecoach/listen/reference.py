"""The played signal, lined up in time with its echo in the microphone: the echo canceller's reference.

Pairing the two by sample count, as this once did, put the reference 0.2-0.3 s ahead of its echo (the output
buffer, then the input's), nearly all of the canceller's 256 ms reach, and further still behind a second device.
Now each played block carries the time PortAudio says it reaches the speaker, and each microphone block the time
it was recorded, on one clock. Through PulseAudio those stamps are right in the median and wrong block by block
(a microphone block in sixteen came 47 ms off; the speaker's first stamps came 1.8 s off; behind a loopback or an
echo canceller the medians wander by 20-50 ms), so the clocks only make the first pairing, from a second of
stamps, and a later sudden jump of more than CLOCK_JUMP_S (a stream restarted). The rest, the path through the air and
any device behind the clocks, and the drift between two devices' clocks, is found by listening (delay.py).

Threads: tap() runs in the output callback and only queues a copy; everything else runs where the microphone's
blocks are handled."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import numpy as np

from voicecoach.listen.delay import EARLIEST, LATEST, UNMEASURED_EARLIEST, WINDOW, Pairing, gcc_phat
from voicecoach.listen.echo import SILENT_DB
from voicecoach.listen.resample import RATE, Resampler, read_at
from voicecoach.listen.vad import FRAME, level_db
from voicecoach.sound.mixer import Played

# Played signal kept: the tracker's window and the longest delay it looks for, with room to spare.
KEEP_S = 4.0
# Played blocks held for the microphone side at most (as long as the smallest blocks a mixer renders would take).
INBOX_S = 4.0
SMALLEST_BLOCK = 64
# The reference is handed over this much ahead of where its echo was found, so that the echo stays inside the
# canceller's filter (which models only later echoes) even where the estimate is a little late.
LEAD_S = 0.01
# Each clock is the median over this long of its blocks' stamps.
CLOCK_WINDOW_S = 1.0
# The clocks are followed only when they move by more than this from one microphone block to the next: no jitter
# does, and no drift of the stamps (see _follow_clocks), a restarted stream does. The rest is left to the tracker.
CLOCK_JUMP_S = 0.25
# How often the delay is estimated while the coach speaks.
TRACK_EVERY_S = 1.0
# An estimate needs this share of its window's played frames to carry sound.
MIN_SOUNDING = 0.25
# Estimates in a row, while the coach speaks, that find no echo at all before the microphone is taken not to hear it.
NOTHING_TO_FIND = 5


@dataclass(frozen=True)
class Reference:
    """What was played while a microphone block was recorded: its samples, lined up with their echo, the texts of
    the clips sounding in them, whether the line-up jumped (the canceller's echo path is then stale), and whether
    the echo has been found where it is lined up (until then it may come anywhere up to delay.LATEST_S later)."""

    samples: np.ndarray
    texts: tuple[str, ...]
    moved: bool
    found: bool = True


class StreamClock:
    """A stream's samples against PortAudio's stream time: time(n) = offset + n / rate, the offset the median of
    the last CLOCK_WINDOW_S of its blocks' stamps."""

    def __init__(self, rate: float) -> None:
        self.rate = rate
        self._offsets: deque[float] | None = None

    def add(self, n: int, stamp: float | None, block: int) -> None:
        """Sample n, the first of a block of this many, was played or recorded at stamp (None: unknown)."""
        if stamp is None:
            return
        if self._offsets is None:
            self._offsets = deque(maxlen=max(1, round(CLOCK_WINDOW_S * self.rate / max(block, 1))))
        self._offsets.append(stamp - n / self.rate)

    @property
    def offset(self) -> float | None:
        return float(np.median(self._offsets)) if self._offsets else None

    @property
    def full(self) -> bool:
        """Whether a whole window of stamps has come: the first ones, taken while a stream starts, are wrong (the
        speaker's first stamp came 1.8 s off here), and a median needs many to outvote them."""
        return self._offsets is not None and len(self._offsets) == self._offsets.maxlen


class PlayedSignal:
    """The played signal at 16 kHz, kept for KEEP_S, with the mixer's stamps, and the microphone paired with it."""

    def __init__(self, rate: int) -> None:
        self.rate = rate
        # Bounded: while nobody takes from it (the microphone is away) the oldest blocks go, not the memory.
        # deque's append and popleft are atomic, so the callback and the taker need no lock.
        self._inbox: deque[tuple[int, np.ndarray, float | None, tuple[str, ...]]] = deque(
            maxlen=round(INBOX_S * rate / SMALLEST_BLOCK)
        )
        self._next_position: int | None = None
        self._resampler = Resampler(rate, RATE)
        self._keep = round(KEEP_S * RATE)
        self._ring = np.zeros(0, dtype=np.float32)
        self._ring_start = 0  # the index (16 kHz samples since the first played block) of _ring[0]
        self._produced = 0
        self._texts: deque[tuple[int, int, tuple[str, ...]]] = deque()
        self._out_clock = StreamClock(RATE)
        self.restart()

    # -- the output side: the audio callback ----------------------------------------------------------

    def tap(self, played: Played) -> None:
        """Give this to Mixer.add_tap. Runs in the audio callback: it copies the block and returns."""
        texts = tuple(t for t in (getattr(tag, "text", None) for tag in played.tags) if isinstance(t, str))
        self._inbox.append((played.position, played.samples.copy(), played.dac_time, texts))

    # -- the microphone side ----------------------------------------------------------------------------

    def restart(self) -> None:
        """The microphone (re)started: its samples count from 0 again, and its pairing is found afresh."""
        self._drain()
        self._restarted_at = self._produced
        self._in_clock = StreamClock(RATE)
        self._mic_n = 0
        self._pairing = Pairing()
        self._clock_lag: float | None = None  # what the clocks said when they last paired the streams
        self._base_lag: float | None = None  # where the clocks (or the count) put the echo, for echo_delay_s
        self._mic_history = np.zeros(0, dtype=np.float32)
        self._since_track = 0

    @property
    def drift(self) -> float | None:
        """How much faster the speaker's clock runs than the microphone's (a fraction), once measured."""
        return self._pairing.measured_drift

    @property
    def echo_delay_s(self) -> float | None:
        """How much later the echo arrives than the clocks say it is played (than counted, without clocks)."""
        if not self._pairing.measured or self._base_lag is None:
            return None
        return (self._base_lag - float(self._pairing.lag(self._mic_n))) / RATE

    def take(self, mic: np.ndarray, adc_time: float | None = None) -> Reference:
        """The played signal whose echo is in this microphone block (float32 at 16 kHz, recorded from adc_time)."""
        self._drain()
        n = self._mic_n
        self._in_clock.add(n, adc_time, mic.size)
        moved = self._follow_clocks(n)
        self._mic_n += mic.size
        self._mic_history = np.concatenate((self._mic_history, mic))[-WINDOW:]
        self._since_track += mic.size
        moved = self._track() or moved
        lead = round(LEAD_S * RATE)
        positions = self._pairing.lag(np.arange(n, n + mic.size)) + np.arange(n, n + mic.size) + lead
        samples = read_at(self._ring, self._ring_start, positions)
        first = round(float(positions[0])) - 2 * lead
        texts = self._texts_between(first, first + mic.size + lead)
        return Reference(samples, texts, moved, self.found)

    # -- inside ---------------------------------------------------------------------------------------------------

    def _drain(self) -> None:
        parts = [self._ring]
        while True:
            try:
                position, samples, dac_time, texts = self._inbox.popleft()
            except IndexError:
                break
            if self._next_position is not None and position != self._next_position:
                # Blocks were dropped while nobody listened: start the played signal afresh where this one is.
                parts = [np.zeros(0, dtype=np.float32)]
                self._ring_start = self._produced = round(position * RATE / self.rate)
                self._resampler = Resampler(self.rate, RATE)
                self._texts.clear()
            self._next_position = position + samples.size
            resampled = self._resampler.process(samples)
            # The resampler keeps its output in step with its input, so the block starts at this index.
            first = self._produced
            self._out_clock.add(first, dac_time, resampled.size)
            self._produced += resampled.size
            parts.append(resampled)
            if texts:
                if self._texts and self._texts[-1][2] == texts and self._texts[-1][1] >= first:
                    self._texts[-1] = (self._texts[-1][0], self._produced, texts)
                else:
                    self._texts.append((first, self._produced, texts))
        if len(parts) > 1 or parts[0] is not self._ring:
            ring = np.concatenate(parts)
            drop = max(0, ring.size - self._keep)
            self._ring = ring[drop:]
            self._ring_start += drop
            while self._texts and self._texts[0][1] < self._ring_start:
                self._texts.popleft()

    def _clock_pairing(self) -> float | None:
        """Reference index minus microphone index at which both were at the same moment, by the clocks."""
        if not (self._out_clock.full and self._in_clock.full):
            return None
        out_offset, in_offset = self._out_clock.offset, self._in_clock.offset
        if out_offset is None or in_offset is None:
            return None
        return (in_offset - out_offset) * RATE

    def _follow_clocks(self, n: int) -> bool:
        """Pair the microphone with the speaker by the clocks once both have a window of stamps; until then (and
        where there are none: a host API without them, or a file) the microphone's first sample is paired with
        what was being played when it started, as counted, and the tracker finds the rest. Later the clocks are
        followed only when they move by more than CLOCK_JUMP_S, which no jitter does: a stream restarted.
        True when the pairing was moved."""
        clock_lag = self._clock_pairing()
        if clock_lag is None:
            if not self._pairing.known:
                self._pairing.pair(self._restarted_at, n)
                self._base_lag = self._restarted_at
                return True
            return False
        if self._clock_lag is None:
            self._pairing.pair(clock_lag, n)
        elif abs(clock_lag - self._clock_lag) >= CLOCK_JUMP_S * RATE:
            drift = self._pairing.drift
            self._pairing.pair(float(self._pairing.lag(n)) + clock_lag - self._clock_lag, n)
            self._pairing.drift = drift
        else:
            # A slow change is no restart, and is not followed: the stamps themselves drift. Behind PulseAudio's
            # echo canceller the two streams' stamps drew apart 200 samples a second (1.25 %) while the echo stayed
            # where it was; compared with where they stood at the last pairing, that was a jump every 20 s, and the
            # canceller started afresh each time.
            self._clock_lag = clock_lag
            return False
        self._clock_lag = self._base_lag = clock_lag
        return True

    def _track(self) -> bool:
        """Estimate where the echo is, now and then, and let the pairing follow it."""
        if self._since_track < TRACK_EVERY_S * RATE or self._mic_history.size < WINDOW:
            return False
        self._since_track = 0
        mic_start = self._mic_n - WINDOW
        base = round(float(self._pairing.lag(mic_start + WINDOW // 2)))
        earliest = EARLIEST if self._pairing.measured else UNMEASURED_EARLIEST
        # The played signal from LATEST before the window to -earliest after it.
        first = mic_start + base - LATEST
        played = self._slice(first, first + WINDOW + LATEST - earliest)
        frames = played[: played.size // FRAME * FRAME].reshape(-1, FRAME)
        sounding = np.mean([level_db(f) > SILENT_DB for f in frames])
        if sounding < MIN_SOUNDING:
            return False
        estimate = gcc_phat(self._mic_history, played, earliest, LATEST)
        return self._pairing.found(mic_start + WINDOW // 2, base, estimate)

    @property
    def found(self) -> bool:
        """Whether the echo has been found where the reference lines it up, or looked for long enough to tell that
        the microphone hardly hears the coach (headphones; a system echo canceller in front, which took it out):
        then there is nothing to find, and nothing to be cautious of."""
        return self._pairing.measured or self._pairing.unheard >= NOTHING_TO_FIND

    def _slice(self, start: int, end: int) -> np.ndarray:
        """Played samples [start, end) by index; silence where nothing is kept (too old, or not played yet)."""
        out = np.zeros(end - start, dtype=np.float32)
        lo, hi = max(start, self._ring_start), min(end, self._ring_start + self._ring.size)
        if hi > lo:
            out[lo - start : hi - start] = self._ring[lo - self._ring_start : hi - self._ring_start]
        return out

    def _texts_between(self, start: int, end: int) -> tuple[str, ...]:
        found = [texts for first, last, texts in self._texts if first < end and last > start]
        return tuple(dict.fromkeys(t for texts in found for t in texts))
