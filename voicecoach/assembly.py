"""The coach's live parts wired once, for the daemon (`voicecoach run`) and the terminal (`voicecoach session`): the
mixer on the audio clock, the coach that plays sets on it, the voice that listens with the mixer's played signal as
its echo reference, and the way a heard command reaches whoever decides what it means.

Threads: PortAudio's callbacks only hand over. Mixer events and microphone blocks reach the event loop's thread
through call_soon_threadsafe, and the coach, the voice and the routing all run there.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import numpy as np

from voicecoach.coach import Coach
from voicecoach.intents import Intent
from voicecoach.listen import Detection
from voicecoach.listen.voice import Voice, as_intent
from voicecoach.sound.mixer import Mixer, MixerEvent

# A microphone block as PortAudio's input callback gives it: the samples and the ADC time of the first.
BlockCallback = Callable[[np.ndarray, float | None], object]


class Assembly:
    """One coach with its mixer and, where a speech model is loaded, its voice.

    make_coach builds the coach on the mixer; open_voice loads the voice for it (None: no voice control). The model
    is loaded here, before any stream runs, as every clip is rendered before: loading holds the GIL for seconds.
    on_mixer_event, if given, takes the mixer's events instead of the coach (the daemon guards and counts them)."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        rate: int,
        gain: float,
        make_coach: Callable[[Mixer], Coach],
        open_voice: Callable[[Mixer], Voice | None],
        on_mixer_event: Callable[[MixerEvent], None] | None = None,
    ) -> None:
        self.loop = loop
        self.mixer = Mixer(rate, gain, lambda event: loop.call_soon_threadsafe(self._on_mixer_event, event))
        self.coach = make_coach(self.mixer)
        self._on_mixer_event = on_mixer_event or self.coach.on_mixer_event
        self.voice = open_voice(self.mixer)

    def on_block(self, hear: Callable[[np.ndarray, float | None], None]) -> BlockCallback:
        """What the microphone's callback calls: it hands each block to the loop's thread, where hear(block, adc_time)
        runs."""
        return lambda block, adc_time: self.loop.call_soon_threadsafe(hear, block, adc_time)

    def hear(
        self,
        block: np.ndarray,
        adc_time: float | None,
        state: str,
        route: Callable[[Intent], bool],
        on_heard: Callable[[Detection, bool], None] = lambda _detection, _accepted: None,
    ) -> None:
        """Listen to one microphone block in state (what the listener listens for); each command it ends goes to
        route, which carries it out and says whether it meant anything, then to on_heard with that answer."""
        if self.voice is None:
            return
        for detection in self.voice.hear(block, state, adc_time):
            on_heard(detection, route(as_intent(detection)))
