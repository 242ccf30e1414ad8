"""Reminders on a fake calendar: when one is due, quiet hours, snoozing, daylight saving in Europe/Stockholm."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from voicecoach.training.reminders import (
    Delivery,
    ReminderSettings,
    delivery,
    format_quiet_hours,
    in_quiet_hours,
    next_reminder,
    parse_clock,
    parse_quiet_hours,
    quiet_at,
    snooze,
)

STOCKHOLM = ZoneInfo("Europe/Stockholm")
# 2024 in Sweden: the clocks go forward at 02:00 on 31 March and back at 03:00 on 27 October.
SPRING = date(2024, 3, 31)
AUTUMN = date(2024, 10, 27)
NIGHT = (time(21, 30), time(7, 30))
ON = ReminderSettings(enabled=True, times=(time(8, 0), time(18, 30)), quiet=NIGHT)


def local(day: date, hour: int, minute: int = 0, fold: int = 0) -> datetime:
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=STOCKHOLM, fold=fold)


def reminders_between(settings: ReminderSettings, start: datetime, end: datetime) -> list[datetime]:
    """Every reminder from start to end, found the way the daemon will: ask for the next one after the last."""
    found: list[datetime] = []
    now = start
    while (due := next_reminder(settings, now)) is not None and due < end:
        found.append(due)
        now = due
    return found


# -- parsing ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("text", "clock"), [("00:00", time(0, 0)), ("07:05", time(7, 5)), ("23:59", time(23, 59))])
def test_clock_times_are_24_hour_hh_mm(text: str, clock: time) -> None:
    assert parse_clock(text) == clock


@pytest.mark.parametrize("text", ["24:00", "7:30", "07:60", "0730", "07:30:00", " 07:30", "", "sju"])
def test_anything_else_is_not_a_clock_time(text: str) -> None:
    with pytest.raises(ValueError, match="HH:MM"):
        parse_clock(text)


def test_quiet_hours_parse_and_format_back() -> None:
    assert parse_quiet_hours("21:30-07:30") == NIGHT
    assert format_quiet_hours(parse_quiet_hours("13:00-14:15")) == "13:00-14:15"
    assert parse_quiet_hours("") is None
    assert format_quiet_hours(None) == ""


@pytest.mark.parametrize("text", ["21:30", "21:30-", "21:30-07:30-08:00", "21-07", "22:00-22:00"])
def test_bad_quiet_hours_are_refused(text: str) -> None:
    with pytest.raises(ValueError):
        parse_quiet_hours(text)


# -- quiet hours --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("clock", "quiet"),
    [
        (time(21, 30), True),  # the start is quiet
        (time(23, 59), True),
        (time(0, 0), True),
        (time(7, 29), True),
        (time(7, 30), False),  # the end is not
        (time(12, 0), False),
        (time(21, 29), False),
    ],
)
def test_quiet_hours_wrap_midnight(clock: time, quiet: bool) -> None:
    assert quiet_at(NIGHT, clock) is quiet


@pytest.mark.parametrize(("clock", "quiet"), [(time(12, 59), False), (time(13, 0), True), (time(14, 0), False)])
def test_quiet_hours_within_a_day(clock: time, quiet: bool) -> None:
    assert quiet_at((time(13, 0), time(14, 0)), clock) is quiet


def test_no_quiet_hours_is_never_quiet() -> None:
    settings = ReminderSettings(enabled=True, times=(time(3, 0),), quiet=None)
    assert not any(in_quiet_hours(settings, local(SPRING, hour)) for hour in range(24))


def test_quiet_hours_are_local_wall_time() -> None:
    # 20:00 UTC is 22:00 in Stockholm in summer: quiet there, although 20:00 is not inside 21:30-07:30.
    when = datetime(2024, 7, 1, 20, 0, tzinfo=UTC)
    assert not in_quiet_hours(ON, when)
    assert in_quiet_hours(ON, when.astimezone(STOCKHOLM))


# -- the next reminder --------------------------------------------------------------------------------------------


def test_reminders_are_off_by_default() -> None:
    assert ReminderSettings().enabled is False
    assert next_reminder(ReminderSettings(times=(time(8, 0),)), local(SPRING, 6)) is None


def test_with_reminders_off_a_snooze_she_asked_for_is_still_due() -> None:
    off = ReminderSettings(times=(time(8, 0),))
    assert next_reminder(off, local(SPRING, 6), local(SPRING, 7)) == local(SPRING, 7)
    assert next_reminder(off, local(SPRING, 7, 1), local(SPRING, 7)) is None


def test_enabled_without_times_has_nothing_to_say() -> None:
    assert next_reminder(ReminderSettings(enabled=True), local(date(2024, 6, 3), 6)) is None


@pytest.mark.parametrize(
    ("now", "due"),
    [
        (local(date(2024, 6, 3), 6), local(date(2024, 6, 3), 8)),
        (local(date(2024, 6, 3), 8), local(date(2024, 6, 3), 18, 30)),  # strictly after now
        (local(date(2024, 6, 3), 12), local(date(2024, 6, 3), 18, 30)),
        (local(date(2024, 6, 3), 18, 31), local(date(2024, 6, 4), 8)),
        (local(date(2024, 6, 30), 23), local(date(2024, 7, 1), 8)),  # over a month's end
    ],
)
def test_the_next_configured_time_today_or_tomorrow(now: datetime, due: datetime) -> None:
    assert next_reminder(ON, now) == due


def test_times_need_not_be_in_order() -> None:
    settings = ReminderSettings(enabled=True, times=(time(18, 30), time(8, 0)), quiet=NIGHT)
    assert next_reminder(settings, local(date(2024, 6, 3), 6)) == local(date(2024, 6, 3), 8)


def test_a_time_in_the_quiet_hours_is_never_due() -> None:
    # The configuration refuses this; settings built in code are held to it too.
    settings = ReminderSettings(enabled=True, times=(time(22, 0), time(12, 0)), quiet=NIGHT)
    assert next_reminder(settings, local(date(2024, 6, 3), 13)) == local(date(2024, 6, 4), 12)
    assert next_reminder(ReminderSettings(enabled=True, times=(time(22, 0),), quiet=NIGHT), local(SPRING, 13)) is None


def test_the_snooze_end_comes_first_when_it_is_earlier() -> None:
    now = local(date(2024, 6, 3), 8, 1)
    assert next_reminder(ON, now, local(date(2024, 6, 3), 8, 31)) == local(date(2024, 6, 3), 8, 31)
    # A configured time before the snooze end is due at its own time.
    assert next_reminder(ON, local(date(2024, 6, 3), 18), local(date(2024, 6, 3), 18, 45)) == local(
        date(2024, 6, 3), 18, 30
    )


def test_a_snooze_end_already_past_is_not_due_again() -> None:
    now = local(date(2024, 6, 3), 9)
    assert next_reminder(ON, now, local(date(2024, 6, 3), 8, 30)) == local(date(2024, 6, 3), 18, 30)
    assert next_reminder(ON, now, now) == local(date(2024, 6, 3), 18, 30)


def test_a_fake_week_has_each_time_once_a_day() -> None:
    start = local(date(2024, 6, 3), 0)
    found = reminders_between(ON, start, start + timedelta(days=7))
    assert len(found) == 14
    assert [d.date() for d in found[::2]] == [date(2024, 6, 3) + timedelta(days=n) for n in range(7)]
    assert {(d.hour, d.minute) for d in found} == {(8, 0), (18, 30)}


# -- daylight saving in Europe/Stockholm --------------------------------------------------------------------------


def test_the_wall_time_is_kept_over_a_change_of_the_clocks() -> None:
    for day in (SPRING, AUTUMN):
        start = local(day - timedelta(days=2), 0)
        found = reminders_between(ON, start, start + timedelta(days=5))
        assert [(d.date(), d.hour, d.minute) for d in found[::2]] == [
            (day + timedelta(days=n), 8, 0) for n in range(-2, 3)
        ]
        assert all((d.hour, d.minute) == (18, 30) for d in found[1::2])
    # The night the clocks go forward is an hour shorter: 18:30 to 08:00 is 12.5 hours of real time, not 13.5.
    evening = next_reminder(ON, local(SPRING - timedelta(days=1), 12))
    assert evening is not None
    morning = next_reminder(ON, evening)
    assert morning is not None
    assert morning.astimezone(UTC) - evening.astimezone(UTC) == timedelta(hours=12, minutes=30)
    assert morning.utcoffset() == timedelta(hours=2)


def test_a_time_in_the_spring_gap_moves_forward_by_the_gap() -> None:
    # 02:30 does not exist on 31 March 2024; it becomes 03:30 summer time, one real hour after 01:30.
    settings = ReminderSettings(enabled=True, times=(time(2, 30),), quiet=None)
    due = next_reminder(settings, local(SPRING, 1, 0))
    assert due is not None
    assert (due.hour, due.minute, due.utcoffset()) == (3, 30, timedelta(hours=2))
    assert due.astimezone(UTC) == datetime(2024, 3, 31, 1, 30, tzinfo=UTC)
    # Asked again just after 03:00 summer time, the moved reminder is still to come.
    assert next_reminder(settings, local(SPRING, 3, 10)) == due
    # And once it is said, the next is the next day's 02:30.
    assert next_reminder(settings, due) == local(SPRING + timedelta(days=1), 2, 30)


def test_a_time_in_the_repeated_autumn_hour_is_said_once() -> None:
    settings = ReminderSettings(enabled=True, times=(time(2, 30),), quiet=None)
    first = next_reminder(settings, local(AUTUMN, 2, 0))
    assert first is not None
    assert first.astimezone(UTC) == datetime(2024, 10, 27, 0, 30, tzinfo=UTC)
    # 02:10 the second time round is after the first 02:30; that 02:30 is not due again.
    again = local(AUTUMN, 2, 10, fold=1)
    assert again.astimezone(UTC) > first.astimezone(UTC)
    assert next_reminder(settings, again) == local(AUTUMN + timedelta(days=1), 2, 30)


# -- snoozing -----------------------------------------------------------------------------------------------------


def test_snooze_is_that_many_minutes_later_and_is_then_due() -> None:
    now = local(date(2024, 6, 3), 18, 30)
    end = snooze(ON, now, 30)
    assert end == local(date(2024, 6, 3), 19, 0)
    assert next_reminder(ON, now, end) == end


@pytest.mark.parametrize(
    ("now", "minutes"),
    [
        (local(date(2024, 6, 3), 21, 10), 30),  # 21:40
        (local(date(2024, 6, 3), 18, 30), 180),  # exactly 21:30, the start
        (local(date(2024, 6, 3), 23, 0), 60),  # past midnight, 00:00
    ],
)
def test_a_snooze_into_the_quiet_hours_drops_the_reminder(now: datetime, minutes: int) -> None:
    assert snooze(ON, now, minutes) is None


def test_a_snooze_that_ends_as_the_quiet_hours_end_is_kept() -> None:
    settings = ReminderSettings(enabled=True, times=(time(12, 0),), quiet=(time(13, 0), time(14, 0)))
    assert snooze(settings, local(date(2024, 6, 3), 13, 30), 30) == local(date(2024, 6, 3), 14, 0)


def test_snooze_counts_real_minutes_over_the_spring_gap() -> None:
    settings = ReminderSettings(enabled=True, times=(time(12, 0),), quiet=None)
    now = local(SPRING, 1, 50)
    end = snooze(settings, now, 30)
    assert end is not None
    assert end.astimezone(UTC) - now.astimezone(UTC) == timedelta(minutes=30)
    assert (end.hour, end.minute) == (3, 20)
    # With the usual night-time quiet hours it would be dropped.
    assert snooze(ON, now, 30) is None


@pytest.mark.parametrize("minutes", [0, -5])
def test_a_snooze_must_be_at_least_a_minute(minutes: int) -> None:
    with pytest.raises(ValueError, match="at least one minute"):
        snooze(ON, local(SPRING, 12), minutes)


# -- a running session --------------------------------------------------------------------------------------------


def test_a_reminder_due_during_a_set_waits_for_it_to_end() -> None:
    due = local(date(2024, 6, 3), 18, 30)
    assert delivery(ON, due, session_running=True) is Delivery.WAIT
    # Asked again when the set ends: said then, not dropped.
    assert delivery(ON, due + timedelta(minutes=10), session_running=False) is Delivery.SPEAK


def test_a_reminder_whose_wait_reaches_the_quiet_hours_is_dropped() -> None:
    assert delivery(ON, local(date(2024, 6, 3), 21, 35), session_running=False) is Delivery.DROP
    assert delivery(ON, local(date(2024, 6, 3), 21, 35), session_running=True) is Delivery.DROP
