"""The leak diary: its entries replayed from journal events (training/diary.py), recorded and taken back between
sets (the conversation, with a real journal and the test's clock), and `voicecoach diary` / `history` reading it."""

from __future__ import annotations

import csv
import json
import stat
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from test_conversation import MONDAY, PHRASES, Coach, at, regular_strength, train

from voicecoach.cli.main import main
from voicecoach.engine.programme import DOSAGE, STRENGTH
from voicecoach.engine.session import Outcome
from voicecoach.training import diary
from voicecoach.training.diary import UNDO_WINDOW, DiaryKind, Entry
from voicecoach.training.journal import Event, Journal
from voicecoach.training.progress_texts import diary_pieces, load_phrases, to_render
from voicecoach.training.progression import EventKind, SymptomAnswer

ZONE = ZoneInfo("Europe/Stockholm")


@pytest.fixture
def journal(tmp_path: Path):
    with Journal.open(tmp_path / "journal.sqlite3") as j:
        yield j


def event(kind: DiaryKind, when: datetime) -> Event:
    return diary.entry_event(kind, when)


def test_an_undo_takes_back_the_latest_entry_not_yet_taken_back() -> None:
    t = at(MONDAY)
    events = [
        event(DiaryKind.LEAK, t),
        Event("advanced", "strength", t),  # the journal's other events are not the diary's
        event(DiaryKind.PAD, t + timedelta(minutes=1)),
        event(DiaryKind.UNDO, t + timedelta(minutes=2)),
        event(DiaryKind.LEAK, t + timedelta(hours=1)),
        event(DiaryKind.UNDO, t + timedelta(hours=1, minutes=1)),
        event(DiaryKind.UNDO, t + timedelta(hours=1, minutes=1, seconds=30)),
        event(DiaryKind.UNDO, t + timedelta(hours=1, minutes=1, seconds=40)),
    ]
    assert diary.entries(events[:4]) == [Entry(DiaryKind.LEAK, t)]
    # Three undos in a row take back the later leak, then the first; the third finds nothing.
    assert diary.entries(events) == []


def test_only_an_entry_younger_than_the_window_can_be_undone() -> None:
    t = at(MONDAY)
    events = [event(DiaryKind.LEAK, t)]
    assert diary.undoable(events, t + UNDO_WINDOW) == Entry(DiaryKind.LEAK, t)
    assert diary.undoable(events, t + UNDO_WINDOW + timedelta(seconds=1)) is None
    assert diary.undoable([], t) is None


def test_entries_are_counted_by_local_day_and_leaks_between_two_times() -> None:
    late = datetime(2024, 6, 3, 21, 30, tzinfo=UTC)  # 23:30 in Stockholm
    kept = [Entry(DiaryKind.LEAK, late), Entry(DiaryKind.LEAK, late + timedelta(hours=1)), Entry(DiaryKind.PAD, late)]
    days = diary.per_day(kept, ZONE)
    assert list(days) == [date(2024, 6, 3), date(2024, 6, 4)]
    assert days[date(2024, 6, 3)] == {DiaryKind.LEAK: 1, DiaryKind.PAD: 1}
    assert diary.leaks_between(kept, late, late + timedelta(hours=1)) == 1


# -- between sets ------------------------------------------------------------------------------------


def test_a_leak_and_a_pad_change_are_recorded_and_the_last_taken_back_within_two_minutes(journal: Journal) -> None:
    coach = Coach(journal, at(MONDAY, 7))
    assert coach.intent("leak", "idle")
    coach.clock.now += timedelta(minutes=30)
    assert coach.intent("pad", "idle")
    assert coach.said == [PHRASES.text["diary_noted"]] * 2
    coach.clock.now += timedelta(minutes=1)
    assert coach.intent("undo", "idle")
    assert coach.said[-1] == PHRASES.text["diary_undone"]
    assert diary.entries(journal.events()) == [Entry(DiaryKind.LEAK, at(MONDAY, 7))]
    # The leak is half an hour old: too late to take back, and said so.
    assert coach.intent("undo", "idle")
    assert coach.said[-1] == PHRASES.text["diary_nothing_to_undo"]
    assert diary.entries(journal.events()) == [Entry(DiaryKind.LEAK, at(MONDAY, 7))]


def test_the_diary_is_not_written_in_a_set_and_without_a_journal_says_so(journal: Journal) -> None:
    coach = Coach(journal, at(MONDAY))
    assert not coach.intent("leak", "session")
    assert not coach.intent("undo", "question")
    assert coach.said == [] and journal.events() == []
    off = Coach(None, at(MONDAY))
    assert off.intent("leak", "idle")
    assert off.said == [PHRASES.text["diary_off"]]


# -- voicecoach diary, history -----------------------------------------------------------------------


@pytest.fixture
def state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("VOICECOACH_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("TZ", "Europe/Stockholm")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    with Journal.open(tmp_path / "state" / "journal.sqlite3") as j:
        train(j, STRENGTH, at(MONDAY, 8))
        for kind, when in [
            (DiaryKind.LEAK, at(MONDAY, 7, 15)),
            (DiaryKind.PAD, at(MONDAY, 7, 20)),
            (DiaryKind.LEAK, at(MONDAY + timedelta(days=1), 22)),
            (DiaryKind.PAD, at(MONDAY + timedelta(days=1), 22, 1)),
            (DiaryKind.UNDO, at(MONDAY + timedelta(days=1), 22, 2)),
        ]:
            j.record_event(kind, diary.RECORDED, when.astimezone(UTC))
    return tmp_path / "state"


def test_diary_lists_the_entries_kept(state: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["diary"]) == 0
    assert capsys.readouterr().out.splitlines() == [
        "2024-06-03 07:15  leak",
        "2024-06-03 07:20  pad change",
        "2024-06-04 22:00  leak",
        "2 leaks, 1 pad change",
    ]
    assert main(["diary", "--since", "2024-06-04", "--json"]) == 0
    assert [json.loads(line) for line in capsys.readouterr().out.splitlines()] == [
        {"at": "2024-06-04T22:00:00+02:00", "entry": "leak"}
    ]
    assert main(["diary", "--since", "2024-07-01"]) == 0
    assert capsys.readouterr().out == "no diary entries since 2024-07-01\n"


def test_diary_exports_csv_for_her_only(state: Path, tmp_path: Path) -> None:
    out = tmp_path / "diary.csv"
    assert main(["diary", "--export", "csv", str(out)]) == 0
    with out.open(newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert [(r["at"][:16], r["entry"]) for r in rows] == [
        ("2024-06-03T07:15", "leak"),
        ("2024-06-03T07:20", "pad change"),
        ("2024-06-04T22:00", "leak"),
    ]
    assert stat.S_IMODE(out.stat().st_mode) == 0o600


def test_history_shows_each_days_leaks_and_pads_beside_the_sets(state: Path, capsys) -> None:
    assert main(["history"]) == 0
    header, first, second = capsys.readouterr().out.splitlines()
    assert header.split() == ["date", "exercise", "reps", "hold", "outcome", "leaks", "pads"]
    assert first.startswith("2024-06-03 08:00  strength (styrka)") and first.split()[-2:] == ["1", "1"]
    assert first.split()[4:8] == ["10/10", "5", "s", "completed"]
    assert second.startswith("2024-06-04 ") and second.split()[1:] == ["-", "1", "0"]


def test_how_it_is_going_adds_the_weeks_leaks_against_the_week_before(journal: Journal) -> None:
    train(journal, STRENGTH, at(MONDAY + timedelta(days=7), 8))
    for day in (0, 1, 3, 4, 6):  # the week before: five
        journal.record_event(DiaryKind.LEAK, diary.RECORDED, at(MONDAY + timedelta(days=day), 7).astimezone(UTC))
    for day in (7, 8):  # this week, by Tuesday: two, and a pad change
        journal.record_event(DiaryKind.LEAK, diary.RECORDED, at(MONDAY + timedelta(days=day), 7).astimezone(UTC))
    journal.record_event(DiaryKind.PAD, diary.RECORDED, at(MONDAY + timedelta(days=8), 7).astimezone(UTC))
    coach = Coach(journal, at(MONDAY + timedelta(days=8), 19))
    assert coach.intent("progress", "idle")
    assert coach.said[0].endswith("Den här veckan två läckage. Förra veckan fem läckage.")
    # A week later with none: said as none; two weeks on, with the diary quiet, nothing of it is said.
    coach.clock.now += timedelta(weeks=1)
    assert coach.intent("progress", "idle")
    assert coach.said[1].endswith("Den här veckan inga läckage. Förra veckan två läckage.")
    coach.clock.now += timedelta(weeks=1)
    assert coach.intent("progress", "idle")
    assert "läckage" not in coach.said[2]


@pytest.mark.parametrize("lang", ["sv", "en"])
def test_the_diary_answer_is_said_from_pieces_rendered_ahead(lang: str) -> None:
    phrases = load_phrases(lang)
    ahead = set(to_render(phrases))
    for this_week, last_week in [(0, 0), (1, 12), (60, 0)]:
        pieces = diary_pieces(this_week, last_week, phrases)
        assert set(pieces) <= ahead, set(pieces) - ahead
        # Every piece has words: one that is only punctuation would render as silence.
        assert all(any(c.isalnum() for c in piece) for piece in pieces), pieces


def test_leaks_fallen_needs_a_diary_kept_from_its_first_weeks_to_its_last() -> None:
    start = at(MONDAY, 7)

    def leaks(days: list[int]) -> list[Event]:
        return [event(DiaryKind.LEAK, start + timedelta(days=d)) for d in days]

    now = start + timedelta(weeks=10)
    first_month = list(range(0, 28, 2))  # 14 leaks
    assert diary.leaks_fallen(leaks([*first_month, 64, 66, 68]), now, 4, 50) is True
    assert diary.leaks_fallen(leaks(first_month + list(range(42, 70))), now, 4, 50) is False
    # Exactly half counts as fallen by half; the percent is the rule's.
    assert diary.leaks_fallen(leaks(first_month + list(range(42, 70, 4))), now, 4, 50) is True
    assert diary.leaks_fallen(leaks(first_month + list(range(42, 70, 4))), now, 4, 60) is False
    # No entry in the last weeks: the diary is no longer kept, and says nothing; nor does a diary too young.
    assert diary.leaks_fallen(leaks(first_month), now, 4, 50) is None
    assert diary.leaks_fallen(leaks([*first_month, 50]), start + timedelta(weeks=7), 4, 50) is None
    # A pad change shows the diary is still kept: no leak recorded is then no leak.
    kept = [*leaks(first_month), event(DiaryKind.PAD, start + timedelta(days=66))]
    assert diary.leaks_fallen(kept, now, 4, 50) is True
    # Nothing to fall from.
    assert diary.leaks_fallen([event(DiaryKind.PAD, start), event(DiaryKind.PAD, now)], now, 4, 50) is None


@pytest.mark.parametrize(("recent", "fallen"), [([3], True), (list(range(0, 28, 2)), False)])
def test_the_symptom_check_reads_the_diary_instead_of_asking(journal: Journal, recent: list[int], fallen: bool) -> None:
    now = regular_strength(journal, DOSAGE.see_doctor_after_months[0])
    first = now - timedelta(weeks=12)
    for d in range(0, 28, 2):
        journal.record_event(DiaryKind.LEAK, diary.RECORDED, (first + timedelta(days=d)).astimezone(UTC))
    for d in recent:
        journal.record_event(DiaryKind.LEAK, diary.RECORDED, (now - timedelta(days=27 - d)).astimezone(UTC))
    coach = Coach(journal, now)
    coach.conversation.set_ended(Outcome.COMPLETED, now=0.0)
    (said,) = coach.said
    answers = [e.value for e in journal.events() if e.kind == EventKind.SYMPTOM_CHECK]
    if fallen:
        assert said == PHRASES.text["diary_fallen"]
        assert answers == [SymptomAnswer.IMPROVED]
    else:
        assert said.startswith(PHRASES.text["diary_not_fallen"]) and "gynekolog" in said
        assert answers == [SymptomAnswer.NOT_IMPROVED]
    # Nothing waits for an answer, and the check is not made again that evening.
    assert coach.conversation.question is None
    coach.conversation.set_ended(Outcome.COMPLETED, now=3600.0)
    assert len(coach.said) == 1


def test_without_a_diary_the_symptom_question_is_asked_as_before(journal: Journal) -> None:
    now = regular_strength(journal, DOSAGE.see_doctor_after_months[0])
    coach = Coach(journal, now)
    coach.conversation.set_ended(Outcome.COMPLETED, now=0.0)
    assert coach.said == [PHRASES.text["symptom_question"]]
