"""The leak diary: leaks and pad changes she records (as Tät II's and Squeezy's bladder diaries have them), kept as
journal events, so that they share its guarantees (one transaction each, 0600, never leaving the device) and its
writes that never wait for another process's lock. Pure: events in, entries and counts out.

An undo is an event too, not a deletion: it takes back the latest entry not yet taken back, and nothing recorded is
ever lost from the file. It is only recorded within UNDO_WINDOW of that entry (undoable()).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, tzinfo
from enum import StrEnum

from voicecoach.training.journal import Event

UNDO_WINDOW = timedelta(minutes=2)


class DiaryKind(StrEnum):
    """The journal event kinds of the diary; the value is always RECORDED."""

    LEAK = "leak"
    PAD = "pad_change"
    UNDO = "diary_undo"


RECORDED = "recorded"


@dataclass(frozen=True)
class Entry:
    kind: DiaryKind
    at: datetime


def entries(events: Iterable[Event]) -> list[Entry]:
    """The diary's entries in the order they were recorded, without those taken back."""
    kept: list[Entry] = []
    for event in events:
        if event.kind in (DiaryKind.LEAK, DiaryKind.PAD):
            kept.append(Entry(DiaryKind(event.kind), event.at))
        elif event.kind == DiaryKind.UNDO and kept:
            kept.pop()
    return kept


def entry_event(kind: DiaryKind, at: datetime) -> Event:
    return Event(kind=str(kind), value=RECORDED, at=at)


def undoable(events: Iterable[Event], now: datetime) -> Entry | None:
    """The entry an undo now would take back: the latest, if it was recorded less than UNDO_WINDOW ago."""
    kept = entries(events)
    if kept and timedelta(0) <= now - kept[-1].at <= UNDO_WINDOW:
        return kept[-1]
    return None


def per_day(kept: Iterable[Entry], zone: tzinfo) -> dict[date, Counter[DiaryKind]]:
    """Leaks and pad changes on each local day that has any, oldest first."""
    days: dict[date, Counter[DiaryKind]] = {}
    for entry in kept:
        days.setdefault(entry.at.astimezone(zone).date(), Counter())[entry.kind] += 1
    return dict(sorted(days.items()))


def leaks_between(kept: Iterable[Entry], start: datetime, end: datetime) -> int:
    return sum(1 for e in kept if e.kind is DiaryKind.LEAK and start <= e.at < end)


def this_week_and_last(kept: list[Entry], now: datetime) -> tuple[int, int] | None:
    """The leaks since Monday (local, as now is) and in the week before; None when the diary has nothing in those
    two weeks (she does not keep it, or not lately)."""
    monday = datetime.combine(now.date() - timedelta(days=now.weekday()), time(), now.tzinfo)
    week_before = monday - timedelta(weeks=1)
    if not any(e.at >= week_before for e in kept):
        return None
    return leaks_between(kept, monday, now + timedelta(seconds=1)), leaks_between(kept, week_before, monday)


def leaks_fallen(events: Iterable[Event], now: datetime, weeks: int, percent: int) -> bool | None:
    """Whether her leaks have fallen by at least percent from the diary's first weeks to the last weeks; None where
    the diary cannot tell: it is younger than twice weeks, has no entry in the last weeks (it is no longer kept, and
    no entries would look like no leaks), or had no leak to fall from in its first weeks."""
    kept = entries(events)
    window = timedelta(weeks=weeks)
    if not kept or now - kept[0].at < 2 * window or kept[-1].at < now - window:
        return None
    first = leaks_between(kept, kept[0].at, kept[0].at + window)
    if first == 0:
        return None
    return leaks_between(kept, now - window, now + timedelta(seconds=1)) <= first * (1 - percent / 100)
