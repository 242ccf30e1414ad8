"""Her volume: a level in dB under the configured `[audio] volume` (0 dB, the loudest), changed a step at a time by
`ctl volume` and kept in the state directory, so that it outlives a restart and config.toml stays hers to edit.

Two levels are kept: the day's, and the night's, which is in effect during the quiet hours ([reminders]
quiet_hours) and starts at `[audio] night_volume_db`. A change changes the level in effect, so turning the coach
down at night does not make it quiet the next morning, and turning it up in the morning does not wake anyone at
night.
"""

from __future__ import annotations

import json
import logging
import math
import re
from dataclasses import dataclass, replace
from pathlib import Path

from voicecoach.config import VOLUME_MAX_DB as MAX_DB
from voicecoach.config import VOLUME_MIN_DB as MIN_DB
from voicecoach.engine.language import Pack
from voicecoach.paths import write_private

log = logging.getLogger(__name__)

FILE_NAME = "volume.json"
# A step of "högre" or "lägre": ten of them from the quietest to the loudest.
STEP_DB = 3.0
# "+3", "-6": a change; "-12dB", "0 dB", "0": a level. A signed number without "dB" is a change, as on a remote.
_CHANGE = re.compile(r"^([+-]\d+(?:\.\d+)?)$")
_LEVEL = re.compile(r"^([+-]?\d+(?:\.\d+)?)\s*(?:db)?$", re.IGNORECASE)


class VolumeError(ValueError):
    """A volume request that cannot be carried out; the message says what is allowed."""


@dataclass(frozen=True)
class Levels:
    """The day's and the night's level, in dB under the configured volume. The night's is None until she changes
    it: until then `[audio] night_volume_db` decides, so that a change there takes effect."""

    day_db: float = MAX_DB
    night_db: float | None = None

    def at(self, night: bool, night_default_db: float) -> float:
        if not night:
            return self.day_db
        return night_default_db if self.night_db is None else self.night_db

    def with_level(self, night: bool, level_db: float) -> Levels:
        return replace(self, night_db=level_db) if night else replace(self, day_db=level_db)


@dataclass(frozen=True)
class Request:
    """What `ctl volume` asked: a change by change_db, a level, or (both None) only to be told the level."""

    change_db: float | None = None
    level_db: float | None = None

    def apply(self, current_db: float) -> float:
        """The new level: the one asked for, or the current one changed, within MIN_DB..MAX_DB."""
        if self.level_db is not None:
            return self.level_db
        if self.change_db is not None:
            return min(max(current_db + self.change_db, MIN_DB), MAX_DB)
        return current_db


def parse_request(text: str | None) -> Request:
    """`ctl volume`'s argument: none, "+N"/"-N" (a change in dB) or "N dB"/"-NdB"/"0" (a level)."""
    if text is None:
        return Request()
    text = text.strip()
    if match := _CHANGE.match(text):
        return Request(change_db=float(match.group(1)))
    if match := _LEVEL.match(text):
        level = float(match.group(1))
        if not MIN_DB <= level <= MAX_DB:
            raise VolumeError(f"a volume of {level:g} dB is out of range; use {MIN_DB:g} to {MAX_DB:g} dB")
        return Request(level_db=level)
    raise VolumeError(
        f"volume {text!r} is neither a change nor a level; use +3 or -3 (dB louder or quieter), "
        f"or a level such as -12dB ({MIN_DB:g} to {MAX_DB:g} dB)"
    )


def gain(volume: float, level_db: float) -> float:
    """The mixer's gain: the configured volume, brought down by the level."""
    return volume * 10 ** (level_db / 20)


def step(louder: bool) -> Request:
    """What "högre" (louder) or "lägre" asks."""
    return Request(change_db=STEP_DB if louder else -STEP_DB)


def said(pack: Pack, level_db: float) -> str:
    """The level said back: "Volym sju." (the steps from the quietest, 1, to the loudest, 11), or at either end
    the end itself ("Högsta volym.", "Lägsta volym."), so she knows a step further does nothing."""
    if level_db >= MAX_DB:
        return pack.cues["volume_max"]
    if level_db <= MIN_DB:
        return pack.cues["volume_min"]
    number = min(max(round((level_db - MIN_DB) / STEP_DB) + 1, 2), steps() - 1)
    return pack.cues["volume"].format(number=pack.number(number))


def steps() -> int:
    return round((MAX_DB - MIN_DB) / STEP_DB) + 1


def all_said(pack: Pack) -> list[str]:
    """Every level said back, to be rendered ahead: in a set nothing waits for speech synthesis."""
    return [said(pack, MIN_DB + STEP_DB * (n - 1)) for n in range(1, steps() + 1)]


def describe(level_db: float) -> str:
    return f"{level_db:+.0f} dB" if level_db else "0 dB (the loudest: [audio] volume)"


def load(state_dir: Path) -> Levels:
    """The levels kept in the state directory; where there are none yet, or they cannot be read, the defaults (a
    file that cannot be read is logged, and written anew at the next change)."""
    path = state_dir / FILE_NAME
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        night = data["night_db"]
        levels = Levels(float(data["day_db"]), None if night is None else float(night))
    except FileNotFoundError:
        return Levels()
    except (OSError, ValueError, KeyError, TypeError) as exc:
        log.warning("cannot read the volume kept in %s (%s): using the default levels", path, exc)
        return Levels()
    kept = [x for x in (levels.day_db, levels.night_db) if x is not None]
    if not all(math.isfinite(x) and MIN_DB <= x <= MAX_DB for x in kept):
        log.warning("the volume kept in %s is out of range: using the default levels", path)
        return Levels()
    return levels


def save(state_dir: Path, levels: Levels) -> None:
    """Keep the levels: written whole under a temporary name and renamed, readable by her only. OSError when the
    state directory cannot be written."""
    write_private(state_dir / FILE_NAME, json.dumps({"day_db": levels.day_db, "night_db": levels.night_db}) + "\n")
