"""The voice gate: decides, 10 ms at a time, when someone may be speaking, so the decoder runs only then.

vosk is not free on silence (a real-time factor of 0.06-0.13 on a 2-core x86, several times that on a Pi),
and a coach that waits for "starta" listens to silence for hours. The gate is energy against a noise floor,
with a hangover that bridges the gaps between words. The floor is a low percentile of the last few seconds'
levels, not their minimum: behind the noise suppressor the noise comes in bursts, whose peaks stand well
above its quietest frames. It may also be told how loud the coach's own
voice still is in the signal (what echo cancellation left), and then speech must rise above that as well:
the reference-aware part of echo handling.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass

import numpy as np

FRAME = 160  # 10 ms at 16 kHz
FRAME_S = 0.01


@dataclass(frozen=True)
class GateSettings:
    # A frame is speech when it is this much louder than the noise floor,
    threshold_db: float = 9.0
    # and this much louder than the echo the canceller is expected to have left.
    echo_margin_db: float = 1.5
    # Quieter than this is never speech, however quiet the room: below it is a silent microphone's hiss.
    min_level_db: float = -55.0
    # Speech frames in a row that open the gate: a click or a knock is shorter.
    onset_frames: int = 3
    # Non-speech after which the gate closes: long enough to bridge "hur många | kvar".
    hangover_s: float = 0.4
    # The floor is this percentile of the levels over the last floor_window_s: long enough that a command
    # does not raise it, short enough that a fan switched on is soon part of it.
    floor_percentile: float = 20.0
    floor_window_s: float = 3.0
    # Levels are averaged over this many frames before they are compared, to even out bursts of noise.
    smoothing_frames: int = 3
    # The gate stays shut until it has heard the room this long: a floor needs some noise to be measured.
    warmup_s: float = 0.5


def level_db(frame: np.ndarray) -> float:
    """The frame's power in dB relative to full scale (float samples in [-1, 1])."""
    power = float(np.dot(frame, frame)) / max(frame.size, 1)
    return 10.0 * math.log10(power + 1e-12)


class VoiceGate:
    """Energy gate with an adaptive noise floor, onset confirmation and hangover."""

    def __init__(self, settings: GateSettings | None = None) -> None:
        self.settings = settings or GateSettings()
        self.floor_db = -math.inf
        self.is_open = False
        self.opened = False
        self.closed = False
        self.since_speech = 0  # frames since the last speech frame
        self._run = 0  # speech frames in a row
        self._powers: deque[float] = deque(maxlen=self.settings.smoothing_frames)
        self._history: deque[float] = deque(maxlen=round(self.settings.floor_window_s / FRAME_S))
        self._frames_seen = 0

    def push(self, frame: np.ndarray, echo_db: float = -math.inf) -> bool:
        """Take the next 10 ms; echo_db is the level of residual echo expected in it. True if the gate is open.

        Afterwards, opened and closed say whether this frame opened or closed the gate.
        """
        s = self.settings
        self._powers.append(float(np.dot(frame, frame)) / max(frame.size, 1))
        level = 10.0 * math.log10(sum(self._powers) / len(self._powers) + 1e-12)
        self._history.append(level)
        self._frames_seen += 1
        # Every 100 ms is often enough for a floor that moves over seconds.
        if len(self._history) < 10 or self._frames_seen % 10 == 0:
            self.floor_db = float(np.percentile(self._history, s.floor_percentile))
        warm = self._frames_seen * FRAME_S >= s.warmup_s
        speech = warm and (
            level > s.min_level_db and level > self.floor_db + s.threshold_db and level > echo_db + s.echo_margin_db
        )
        self._run = self._run + 1 if speech else 0
        self.since_speech = 0 if speech else self.since_speech + 1
        was_open = self.is_open
        if not self.is_open and self._run >= s.onset_frames:
            self.is_open = True
        elif self.is_open and self.since_speech * FRAME_S >= s.hangover_s:
            self.is_open = False
        self.opened = self.is_open and not was_open
        self.closed = was_open and not self.is_open
        return self.is_open
