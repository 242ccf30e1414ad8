"""The coach's own voice in the microphone: removed with the played signal as reference, never by muting.

The mixer hands every played block to PlayedSignal.tap, in the audio callback. The listener takes the same
amount of played signal for every block of microphone signal, so the reference runs ahead of its echo by
the output and input latencies, which the canceller's delay estimator finds.

The canceller is speexdsp's. WebRTC's AEC3 (pywebrtc-audio) removed more
echo where only the coach spoke, but with a command spoken over the narration it took most of her voice
too: measured on the Korean model, commands over narration were recognised 41 % of the time with AEC3,
99 % with speexdsp (see the README). What the canceller leaves is handed to the voice gate as a level to
beat: the reference-aware part.
"""

from __future__ import annotations

import math
import queue
from collections import deque

import numpy as np

from voicecoach.listen.resample import RATE, Resampler
from voicecoach.listen.speexdsp import SpeexEcho
from voicecoach.listen.vad import FRAME_S, level_db

# Residual echo is judged from the played signal over this long a window, to cover the delay between
# playing and hearing (latencies plus the room's reverberation).
ECHO_WINDOW_S = 0.5
# Played frames quieter than this are silence: nothing to cancel, and the canceller is not run.
SILENT_DB = -70.0
# The canceller keeps running this long after the played signal falls silent, while the room still rings.
RING_S = 0.5
# The echo path the canceller models: output and input latency, then the room's reverberation.
FILTER_S = 0.256
# How much recent history the residual-echo estimate is a median of.
COUPLING_WINDOW_S = 5.0
# After this long of adding more than it removes, the canceller's echo path is wrong and it is started afresh.
DIVERGED_S = 0.5


class PlayedSignal:
    """The played signal, handed over from the output callback and read back at 16 kHz."""

    def __init__(self, rate: int) -> None:
        self.rate = rate
        self._inbox: queue.SimpleQueue[np.ndarray] = queue.SimpleQueue()
        self._resampler = Resampler(rate, RATE)
        self._buffer = np.zeros(0, dtype=np.float32)

    def tap(self, _position: int, block: np.ndarray) -> None:
        """Give this to Mixer.add_tap. Runs in the audio callback: it copies the block and returns."""
        self._inbox.put(block.copy())

    def clear(self) -> None:
        """Drop what was played while nobody listened (the microphone was away), so the reference lines up."""
        while True:
            try:
                self._inbox.get_nowait()
            except queue.Empty:
                break
        self._buffer = np.zeros(0, dtype=np.float32)

    def take(self, n: int) -> np.ndarray:
        """The next n samples of played signal at 16 kHz; silence where nothing was played."""
        parts = [self._buffer]
        while True:
            try:
                parts.append(self._resampler.process(self._inbox.get_nowait()))
            except queue.Empty:
                break
        buffered = np.concatenate(parts) if len(parts) > 1 else self._buffer
        out = np.zeros(n, dtype=np.float32)
        take = min(n, buffered.size)
        out[:take] = buffered[:take]
        self._buffer = buffered[take:]
        return out


class EchoCanceller:
    """speexdsp's echo canceller on 10 ms frames, plus an estimate of how loud the echo it leaves may be.

    The estimate is the played level (the loudest frame in the last ECHO_WINDOW_S) plus the coupling: the
    median, over recent frames with sound playing, of how much quieter the cleaned signal was than that.
    A median, so that her speech over the narration does not raise it. Until it has been learnt the
    coupling is taken as 0 dB, so that while the canceller converges the gate wants speech louder than
    the narration itself: a command may be missed then, but the narration is never taken for one.
    """

    def __init__(self, filter_s: float = FILTER_S) -> None:
        self._speex = SpeexEcho(round(filter_s * RATE))
        self._played_db: deque[float] = deque([-math.inf], maxlen=round(ECHO_WINDOW_S / FRAME_S))
        self._ratios: deque[float] = deque(maxlen=round(COUPLING_WINDOW_S / FRAME_S))
        self._ringing = 0
        self._diverged = 0
        self.coupling_db = 0.0

    def process(self, mic: np.ndarray, played: np.ndarray) -> tuple[np.ndarray, float]:
        """One 10 ms frame of microphone and played signal in; the cleaned frame and its expected echo level out."""
        played_db = level_db(played)
        self._played_db.append(played_db)
        self._ringing = round(RING_S / FRAME_S) if played_db > SILENT_DB else max(0, self._ringing - 1)
        if not self._ringing:
            # Nothing played lately: nothing to cancel, and idle listening costs no cancelling.
            return mic, -math.inf
        cleaned = self._speex.process(mic, played)
        if _energy(cleaned) > _energy(mic):
            # Taking the echo out can only lower the level; what rose was added by an echo path learnt wrong.
            # This happens where the microphone hears no echo (headphones) after she spoke over the narration:
            # the filter adapts to her voice and then plays the narration into the cleaned signal, seconds of
            # it, at 20 dB above the room. The microphone as it is cannot be mistaken for the coach.
            cleaned = mic
            self._diverged += 1
            if self._diverged >= round(DIVERGED_S / FRAME_S):
                self._speex.reset()
                self._diverged = 0
        else:
            self._diverged = max(0, self._diverged - 1)
        reference_db = max(self._played_db)
        if reference_db > SILENT_DB:
            self._ratios.append(level_db(cleaned) - reference_db)
            if len(self._ratios) == self._ratios.maxlen:
                self.coupling_db = float(np.median(self._ratios))
        return cleaned, reference_db + self.coupling_db


def _energy(frame: np.ndarray) -> float:
    return float(np.dot(frame, frame))
