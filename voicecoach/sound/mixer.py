"""The cue mixer: clips scheduled at exact sample positions, mixed block by block.

render() runs inside the audio callback (or in a loop, for an offline render). It is the master clock:
`position` counts the samples it has produced. Other threads talk to it only through its inbox, which
render() drains at the start of every block, so a cut takes effect within one block.
"""

from __future__ import annotations

import queue
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Scheduled:
    """A clip to start at an absolute sample position; tag comes back in the Started event."""

    start: int
    clip: np.ndarray
    tag: object = None


@dataclass(frozen=True)
class Started:
    tag: object
    sample: int


@dataclass(frozen=True)
class Drained:
    """Nothing is playing or scheduled any more."""

    sample: int


@dataclass(frozen=True)
class Played:
    """A block as it was played: its first sample's position, the samples (valid only during the tap's call), when
    PortAudio says the first sample reaches the speaker (its stream time; None where unknown), and the tags of the
    clips sounding in it."""

    position: int
    samples: np.ndarray
    dac_time: float | None
    tags: tuple[object, ...]


MixerEvent = Started | Drained
Tap = Callable[[Played], None]


@dataclass(frozen=True)
class _Command:
    cut: bool
    items: tuple[Scheduled, ...]
    gain: float | None = None


class Mixer:
    def __init__(self, rate: int, gain: float = 1.0, on_event: Callable[[MixerEvent], object] | None = None) -> None:
        self.rate = rate
        # Read by the audio side only; set_gain asks for a change.
        self.gain = gain
        self._target_gain = gain
        self.position = 0
        self._inbox: queue.SimpleQueue[_Command] = queue.SimpleQueue()
        self._voices: list[Scheduled] = []
        self._on_event = on_event or (lambda _event: None)
        self._taps: list[Tap] = []

    # -- control side: any thread -----------------------------------------------------------

    def schedule(self, items: Sequence[Scheduled], cut: bool = False) -> None:
        """Queue clips for playing; with cut, first silence and drop everything scheduled."""
        self._inbox.put(_Command(cut=cut, items=tuple(items)))

    def set_gain(self, gain: float) -> None:
        """Change the volume: from the next block on, reached over that block, so that the step makes no click and
        nothing scheduled moves."""
        self._inbox.put(_Command(cut=False, items=(), gain=gain))

    def add_tap(self, tap: Tap) -> None:
        """Be given every played block (the echo reference).

        A tap runs in the audio callback and must not block.
        """
        self._taps.append(tap)

    def seconds_to_sample(self, t: float) -> int:
        return round(t * self.rate)

    # -- audio side -------------------------------------------------------------------------

    def render(self, out: np.ndarray, dac_time: float | None = None) -> None:
        """Fill out (1-D float32) with the next block of the mix and advance the clock; dac_time is when its first
        sample will be heard, for the taps."""
        start = self.position
        end = start + out.shape[0]
        self._apply_inbox(start)
        out.fill(0.0)
        had_voices = bool(self._voices)
        remaining: list[Scheduled] = []
        sounding: list[object] = []
        for i, voice in enumerate(self._voices):
            if voice.start >= end:
                # Voices are sorted by start: none of the rest is due in this block.
                remaining.extend(self._voices[i:])
                break
            offset = start - voice.start
            if offset <= 0:
                self._on_event(Started(voice.tag, voice.start))
            src_from = max(offset, 0)
            dst_from = max(-offset, 0)
            n = min(voice.clip.shape[0] - src_from, out.shape[0] - dst_from)
            if n > 0:
                out[dst_from : dst_from + n] += voice.clip[src_from : src_from + n]
                sounding.append(voice.tag)
            if voice.start + voice.clip.shape[0] > end:
                remaining.append(voice)
        self._voices = remaining
        if self._target_gain != self.gain:
            # A linear ramp over the block, ending on the new gain.
            n = out.shape[0]
            out *= (self.gain + (self._target_gain - self.gain) * np.arange(1, n + 1) / n).astype(out.dtype)
            self.gain = self._target_gain
        elif self.gain != 1.0:
            out *= self.gain
        np.clip(out, -1.0, 1.0, out=out)
        self.position = end
        if had_voices and not remaining:
            self._on_event(Drained(end))
        if self._taps:
            played = Played(start, out, dac_time, tuple(sounding))
            for tap in self._taps:
                tap(played)

    def _apply_inbox(self, block_start: int) -> None:
        while True:
            try:
                command = self._inbox.get_nowait()
            except queue.Empty:
                return
            if command.gain is not None:
                self._target_gain = command.gain
            if command.cut:
                self._voices = []
            for item in command.items:
                # A clip scheduled in the past (a late command) starts now rather than being lost.
                if item.start < block_start:
                    item = Scheduled(block_start, item.clip, item.tag)
                self._voices.append(item)
            self._voices.sort(key=lambda v: v.start)
