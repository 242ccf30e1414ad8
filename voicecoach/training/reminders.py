"""Spoken reminders: when one is due, snoozing, quiet hours. Pure functions; the caller passes "now".

Times are local wall-clock times: a reminder at 08:00 is at 08:00 on both sides of a daylight-saving change.
`now` is an aware datetime in local time with the zone's daylight-saving rules, as clock.local_now gives it.
A reminder never starts a session; these functions only say when to speak.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum

MAX_TIMES = 8
_CLOCK = re.compile(r"([01][0-9]|2[0-3]):([0-5][0-9])")
DEFAULT_QUIET = (time(21, 30), time(7, 30))


@dataclass(frozen=True)
class ReminderSettings:
    """Reminders are off by default. quiet is (start, end), start inclusive, end exclusive; it may wrap midnight."""

    enabled: bool = False
    times: tuple[time, ...] = ()
    quiet: tuple[time, time] | None = DEFAULT_QUIET


class Delivery(StrEnum):
    SPEAK = "speak"
    WAIT = "wait"  # a session is running: ask again when it ends
    DROP = "drop"


# -- the "HH:MM" and "HH:MM-HH:MM" forms of the configuration -----------------------------------------------------


def parse_clock(text: str) -> time:
    """A 24-hour "HH:MM"; ValueError otherwise."""
    match = _CLOCK.fullmatch(text)
    if match is None:
        raise ValueError(f"{text!r} is not a 24-hour time HH:MM")
    return time(int(match[1]), int(match[2]))


def parse_quiet_hours(text: str) -> tuple[time, time] | None:
    """Quiet hours "HH:MM-HH:MM" (may wrap midnight), or "" for none; ValueError otherwise, also for an empty range."""
    if text == "":
        return None
    start, sep, end = text.partition("-")
    if not sep:
        raise ValueError(f"{text!r} is not a range HH:MM-HH:MM")
    quiet = parse_clock(start), parse_clock(end)
    if quiet[0] == quiet[1]:
        # Empty or the whole day: either way not what anyone means.
        raise ValueError(f"{text!r} starts and ends at the same time")
    return quiet


def format_clock(clock: time) -> str:
    return f"{clock:%H:%M}"


def format_quiet_hours(quiet: tuple[time, time] | None) -> str:
    return "" if quiet is None else f"{format_clock(quiet[0])}-{format_clock(quiet[1])}"


# -- when ---------------------------------------------------------------------------------------------------------


def quiet_at(quiet: tuple[time, time] | None, clock: time) -> bool:
    """Whether a wall-clock time is inside the quiet hours."""
    if quiet is None:
        return False
    start, end = quiet
    if start < end:
        return start <= clock < end
    return clock >= start or clock < end


def in_quiet_hours(settings: ReminderSettings, when: datetime) -> bool:
    return quiet_at(settings.quiet, when.time())


def _wall(day: date, clock: time, now: datetime) -> datetime:
    """The moment a local wall time falls on, as a real local time.

    In a daylight-saving gap (02:30 on the day the clocks go forward in Europe/Stockholm) the wall time does not
    exist; it is moved forward by the length of the gap (to 03:30). In the repeated hour when the clocks go back,
    it is the first of the two moments (fold=0), so a reminder is not said twice.
    """
    naive = datetime.combine(day, clock, tzinfo=now.tzinfo)
    # Going through UTC turns a nonexistent wall time into the real one; a real one comes back unchanged.
    return naive.astimezone(UTC).astimezone(now.tzinfo)


def _after(a: datetime, b: datetime) -> bool:
    # Aware datetimes with the same tzinfo compare by wall time, ignoring fold; timestamps compare real moments.
    return a.timestamp() > b.timestamp()


def next_reminder(settings: ReminderSettings, now: datetime, snoozed_until: datetime | None = None) -> datetime | None:
    """The next moment a reminder is due, strictly after now: the earliest of the next configured time (today or
    tomorrow, outside the quiet hours) and the snooze end. With reminders off only a snooze she asked for is due
    ("påminn mig om trettio minuter" means what it says); None when there is nothing to say."""
    today = now.date()
    candidates = [
        _wall(day, clock, now)
        for day in (today, today + timedelta(days=1))
        for clock in (settings.times if settings.enabled else ())
        if not quiet_at(settings.quiet, clock)
    ]
    if snoozed_until is not None:
        candidates.append(snoozed_until)
    due = [c for c in candidates if _after(c, now)]
    return min(due, key=lambda c: c.timestamp(), default=None)


def snooze(settings: ReminderSettings, now: datetime, minutes: int) -> datetime | None:
    """When a reminder snoozed for this many minutes is said again; None if that falls in the quiet hours (the
    reminder is dropped). Real minutes, also across a daylight-saving change."""
    if minutes < 1:
        raise ValueError(f"a snooze of {minutes} minutes: it must be at least one minute")
    end = (now.astimezone(UTC) + timedelta(minutes=minutes)).astimezone(now.tzinfo)
    return None if in_quiet_hours(settings, end) else end


def delivery(settings: ReminderSettings, now: datetime, session_running: bool) -> Delivery:
    """What to do with a reminder that is due now: drop it if it is now quiet, wait for a running session to end
    (then ask again), else say it."""
    if in_quiet_hours(settings, now):
        return Delivery.DROP
    return Delivery.WAIT if session_running else Delivery.SPEAK
