"""Her volume in the running daemon: the day's or the night's level (sound/volume.py), whichever the clock says,
applied to the mixer, changed by `ctl volume` and kept in the state directory.

The clock is the wall clock, which on a Pi without a real-time clock may be wrong until it is synchronised after
boot; then the level follows the wrong time until it is, as the reminders would (which wait for it).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from voicecoach.config import AudioSettings
from voicecoach.sound import volume
from voicecoach.training.clock import local_now
from voicecoach.training.reminders import ReminderSettings, in_quiet_hours

log = logging.getLogger(__name__)


class Loudness:
    def __init__(
        self,
        state_dir: Path,
        audio: AudioSettings,
        reminders: ReminderSettings,
        set_gain: Callable[[float], None] = lambda _gain: None,
        clock: Callable[[], datetime] = local_now,
    ) -> None:
        self._state_dir = state_dir
        self._audio = audio
        self._reminders = reminders
        self._set_gain = set_gain
        self._clock = clock
        self.levels = volume.load(state_dir)
        self.night = in_quiet_hours(reminders, clock())

    def attach(self, set_gain: Callable[[float], None]) -> None:
        """Apply the level to this mixer from now on (the coach's, once it has one)."""
        self._set_gain = set_gain

    @property
    def level_db(self) -> float:
        """The level in effect, in dB under [audio] volume."""
        return self.levels.at(self.night, self._audio.night_volume_db)

    @property
    def gain(self) -> float:
        return volume.gain(self._audio.volume, self.level_db)

    def configure(self, audio: AudioSettings, reminders: ReminderSettings) -> None:
        """After a reload: a new [audio] volume or night level takes effect at once, new quiet hours at the next
        follow_the_clock."""
        self._audio, self._reminders = audio, reminders
        self._set_gain(self.gain)

    def follow_the_clock(self, quiet: bool) -> None:
        """The night's level from the start of the quiet hours, the day's from their end. quiet: no set runs and the
        coach says nothing, so that the loudness never jumps in the middle of what she hears."""
        night = in_quiet_hours(self._reminders, self._clock())
        if night != self.night and quiet:
            self.night = night
            log.info("the %s volume from now on: %s", "night's" if night else "day's", volume.describe(self.level_db))
            self._set_gain(self.gain)

    def change(self, request: volume.Request) -> str:
        """Change the level in effect (the day's or the night's) and keep it, or only tell it: what to answer."""
        level = request.apply(self.level_db)
        kept = ""
        if level != self.level_db:
            self.levels = self.levels.with_level(self.night, level)
            self._set_gain(self.gain)
            try:
                volume.save(self._state_dir, self.levels)
            except OSError as exc:
                log.warning("the volume cannot be kept in %s (%s): it lasts until a restart", self._state_dir, exc)
                kept = f"; it cannot be kept in {self._state_dir} ({exc.strerror or exc}), so it lasts until a restart"
        return f"{'night ' if self.night else ''}volume {volume.describe(level)}{kept}"
