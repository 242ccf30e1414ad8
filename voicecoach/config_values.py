"""The configuration's value checks, and values written back as TOML. voicecoach.config uses them; import from there.

Each check takes the raw TOML value and the directory of the file it came from, and returns the typed value or
raises Invalid with what is allowed; config adds the file and the key.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from voicecoach.engine.language import LANGUAGES
from voicecoach.training.reminders import MAX_TIMES, parse_clock, parse_quiet_hours
from voicecoach.voices import ENGINES

Check = Callable[[object, Path], object]


class Invalid(ValueError):
    """A value of the wrong type or out of range; the message says what is allowed."""


def number(low: float, high: float) -> Callable[[object, Path], float]:
    def check(value: object, _base: Path) -> float:
        # bool is an int in Python, but `volume = true` is a mistake, not 1.0.
        if isinstance(value, bool) or not isinstance(value, int | float) or not low <= value <= high:
            raise Invalid(f"a number from {low} to {high}")
        return float(value)

    return check


def whole(low: int, high: int, unit: str, zero: str = "") -> Callable[[object, Path], int]:
    """A whole number from low to high; with zero, 0 is allowed too and means that."""

    def check(value: object, _base: Path) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or not (low <= value <= high or (zero and value == 0)):
            raise Invalid(f"a whole number of {unit} from {low} to {high}" + (f", or 0 for {zero}" if zero else ""))
        return value

    return check


def language(value: object, _base: Path) -> str:
    if value not in LANGUAGES:
        raise Invalid(f"one of {', '.join(json.dumps(code) for code in LANGUAGES)}")
    return str(value)


def device(value: object, _base: Path) -> str | int | None:
    if isinstance(value, str):
        return value.strip() or None
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    raise Invalid("a device name, an index (0 or more) from 'voicecoach devices', or \"\" for the system default")


def voice(value: object, _base: Path) -> str:
    # An espeak-ng voice id is a file name below espeak-ng-data/voices with an optional +variant; a Piper voice's
    # name (sv_SE-nst-medium) is made of the same characters. Which of the two it must be, speech.engine decides.
    allowed = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_+/")
    if not isinstance(value, str) or not set(value) <= allowed or value.startswith(("/", "+")):
        raise Invalid(
            'an espeak-ng voice id such as "sv" or "en-gb+f3" (see \'espeak-ng --voices\'), a Piper voice such as'
            ' "sv_SE-nst-medium" (see \'voicecoach voice list\'), or "" for the default'
        )
    return value


def one_of(names: tuple[str, ...]) -> Callable[[object, Path], str]:
    def check(value: object, _base: Path) -> str:
        if value not in names:
            raise Invalid(f"one of {', '.join(json.dumps(name) for name in names)}")
        return str(value)

    return check


engine = one_of(ENGINES)


def path(optional: bool) -> Callable[[object, Path], Path | None]:
    def check(value: object, base: Path) -> Path | None:
        if not isinstance(value, str) or (not optional and not value.strip()):
            raise Invalid('a path (relative to the file it is in), or "" for the default' if optional else "a path")
        if not value.strip():
            return None
        # A relative path in a file means relative to that file, not to wherever the daemon happens to start.
        return base / Path(value).expanduser()

    return check


def flag(value: object, _base: Path) -> bool:
    if not isinstance(value, bool):
        raise Invalid("true or false")
    return value


def clock_times(value: object, _base: Path) -> list[str]:
    """Kept as the "HH:MM" strings, so `config show` prints them as they can be written."""
    allowed = f'a list of at most {MAX_TIMES} different 24-hour times "HH:MM", e.g. ["08:00", "18:30"]'
    if not isinstance(value, list) or len(value) > MAX_TIMES or len(set(map(str, value))) < len(value):
        raise Invalid(allowed)
    try:
        for item in value:
            if not isinstance(item, str):
                raise ValueError(item)
            parse_clock(item)
    except ValueError:
        raise Invalid(allowed) from None
    return list(value)


def quiet_hours(value: object, _base: Path) -> str:
    allowed = 'a range "HH:MM-HH:MM" of 24-hour times, e.g. "21:30-07:30" (it may span midnight), or "" for none'
    if not isinstance(value, str):
        raise Invalid(allowed)
    try:
        parse_quiet_hours(value)
    except ValueError:
        raise Invalid(allowed) from None
    return value


def shown(value: object) -> str:
    """A bad value as it is quoted in a message."""
    if isinstance(value, str | int | float | bool):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, list) and all(isinstance(item, str | int | float | bool) for item in value):
        return toml_value(value)
    return f"a {_kind(value)}"


def _kind(value: object) -> str:
    kinds: dict[type, str] = {dict: "table", list: "list"}
    return kinds.get(type(value), type(value).__name__)


def toml_value(value: object) -> str:
    """A value as TOML source: `config show` prints TOML that can be pasted back into a file."""
    if value is None:
        return '""'
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(toml_value(item) for item in value) + "]"
    # JSON's escapes (\" \\ \n \uXXXX) are TOML's too.
    return json.dumps(str(value), ensure_ascii=False)
