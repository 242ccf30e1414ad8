"""Between sets: spoken progress, the question after a set and its answer, reminders. A real journal on disk,
a fake calendar, and the phrases that would be spoken collected instead of played."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from voicecoach.engine.programme import DOSAGE, ENDURANCE, EXERCISES, IDENTIFICATION, STRENGTH, Exercise, with_overrides
from voicecoach.engine.session import Outcome
from voicecoach.intents import Intent
from voicecoach.training import conversation as conversation_module
from voicecoach.training.conversation import ECHO_TAIL_S, STALE, UNSYNCHRONISED, ClockSync, Conversation
from voicecoach.training.dialogue import ANSWER_WINDOW_S, QUESTION
from voicecoach.training.journal import Journal
from voicecoach.training.progress_texts import load_phrases
from voicecoach.training.progression import DEFAULT_RULES, EventKind, SymptomAnswer, add_months
from voicecoach.training.reminders import ReminderSettings

ZONE = ZoneInfo("Europe/Stockholm")
MONDAY = date(2024, 6, 3)
PHRASES = load_phrases("sv")
SAY_S = 4.0  # how long the fake coach takes to say anything
OFF = ReminderSettings()
EVENING = ReminderSettings(enabled=True, times=(time(18, 0),), quiet=(time(21, 30), time(7, 30)))


def at(day: date, hour: int = 9, minute: int = 0) -> datetime:
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=ZONE)


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def train(journal: Journal, exercise: Exercise, when: datetime, outcome: Outcome = Outcome.COMPLETED) -> None:
    sid = journal.start_session(exercise.key, exercise.reps, exercise.hold_s, exercise.rest_s, when.astimezone(UTC))
    for rep in range(1, exercise.reps + 1):
        journal.record_rep(sid, rep, exercise.hold_s, when.astimezone(UTC) + timedelta(seconds=10 * rep))
    journal.finish_session(sid, outcome, when.astimezone(UTC) + timedelta(minutes=5))


@pytest.fixture
def journal(tmp_path: Path):
    with Journal.open(tmp_path / "journal.sqlite3") as j:
        yield j


class Coach:
    """A conversation as the daemon holds it, and what it said."""

    def __init__(
        self,
        journal: Journal | None,
        now: datetime,
        settings: ReminderSettings = OFF,
        exercises: tuple[Exercise, ...] = EXERCISES,
    ) -> None:
        self.said: list[str] = []
        self.clock = Clock(now)
        # Whether the system clock has been synchronised (NTP) since boot.
        self.synchronised = True
        self.conversation = Conversation(
            journal,
            PHRASES,
            DEFAULT_RULES,
            settings,
            self._say,
            lambda key: next(e for e in exercises if e.key == key),
            self.clock,
            lambda: self.synchronised,
        )

    def _say(self, text: str | tuple[str, ...]) -> float:
        # Pieces are said one after the other: what she hears, as one text.
        self.said.append(text if isinstance(text, str) else " ".join(text))
        return SAY_S

    def intent(self, name: str, state: str, minutes: int | None = None) -> bool:
        return self.conversation.handle(Intent(name, minutes=minutes), state)


def confident_identification(journal: Journal) -> datetime:
    """Three days of full identification sets: the step to strength is due. Returns the third evening."""
    for day in range(3):
        train(journal, IDENTIFICATION, at(MONDAY + timedelta(days=day)))
    return at(MONDAY + timedelta(days=2), 19)


# -- "hur går det" -----------------------------------------------------------------------------------


def test_progress_is_spoken_from_the_journal(journal: Journal) -> None:
    now = confident_identification(journal)
    coach = Coach(journal, now)
    assert coach.intent("progress", "idle")
    (text,) = coach.said
    assert text.startswith("Den här veckan har du tränat tre dagar. Du har tränat tre dagar i rad.")
    assert "Du tränar identifieringsknip, övning ett av fyra." in text


def test_without_a_journal_progress_says_so(tmp_path: Path) -> None:
    coach = Coach(None, at(MONDAY))
    assert coach.intent("progress", "idle")
    assert coach.said == [PHRASES.text["progress_off"]]


def test_progress_is_not_spoken_during_a_set(journal: Journal) -> None:
    coach = Coach(journal, at(MONDAY))
    assert not coach.intent("progress", "session")
    assert coach.said == []


# -- the question after a set ------------------------------------------------------------------------


def test_after_a_completed_set_the_next_step_is_asked_and_a_yes_takes_it(journal: Journal) -> None:
    now = confident_identification(journal)
    coach = Coach(journal, now)
    conversation = coach.conversation
    conversation.set_ended(Outcome.COMPLETED, now=100.0)
    assert coach.said == [
        "Du klarar identifieringsknip säkert nu. Vill du gå vidare till styrkeknip? Svara ja eller nej."
    ]
    # Not while the coach asks: the question itself says "ja eller nej".
    assert conversation.state("idle", 100.0 + SAY_S - 0.1) == "idle"
    # Nor while the room still rings with it.
    assert conversation.state("idle", 100.0 + SAY_S + ECHO_TAIL_S - 0.1) == "idle"
    assert conversation.state("idle", 100.0 + SAY_S + ECHO_TAIL_S) == QUESTION
    assert conversation.state("idle", 100.0 + SAY_S + ECHO_TAIL_S + ANSWER_WINDOW_S - 0.1) == QUESTION
    assert coach.intent("yes", QUESTION)
    assert coach.said[-1] == "Bra. Nu går vi vidare till styrkeknip."
    assert [(e.kind, e.value) for e in journal.events()] == [(EventKind.ADVANCED, STRENGTH.key)]
    assert conversation.state("idle", 101.0) == "idle"
    # "starta träning" now plays the new exercise.
    assert conversation.next_exercise().key == STRENGTH.key


def test_a_no_keeps_the_exercise_and_the_question_waits_until_tomorrow(journal: Journal) -> None:
    now = confident_identification(journal)
    coach = Coach(journal, now)
    coach.conversation.set_ended(Outcome.COMPLETED, now=0.0)
    assert coach.intent("no", QUESTION)
    assert coach.said[-1] == "Okej. Vi fortsätter med identifieringsknip ett tag till."
    assert [(e.kind, e.value) for e in journal.events()] == [(EventKind.DECLINED, "next_exercise")]
    coach.conversation.set_ended(Outcome.COMPLETED, now=600.0)
    assert len(coach.said) == 2, "asked again the same day"
    coach.clock.now += timedelta(days=1)
    coach.conversation.set_ended(Outcome.COMPLETED, now=90000.0)
    assert coach.said[-1].startswith("Du klarar identifieringsknip säkert nu.")


def test_silence_is_no_answer(journal: Journal) -> None:
    now = confident_identification(journal)
    coach = Coach(journal, now)
    coach.conversation.set_ended(Outcome.COMPLETED, now=0.0)
    assert coach.conversation.state("idle", SAY_S + ECHO_TAIL_S + ANSWER_WINDOW_S + 0.1) == "idle"
    assert not coach.intent("yes", "idle")
    assert journal.events() == []
    # Asked again after the next set.
    coach.conversation.set_ended(Outcome.COMPLETED, now=600.0)
    assert len(coach.said) == 2


@pytest.mark.parametrize("outcome", [Outcome.STOPPED, Outcome.COULD_NOT_FINISH, Outcome.SKIPPED])
def test_nothing_is_asked_after_a_set_that_was_not_completed(journal: Journal, outcome: Outcome) -> None:
    now = confident_identification(journal)
    coach = Coach(journal, now)
    coach.conversation.set_ended(outcome, now=0.0)
    assert coach.said == []
    assert coach.conversation.state("idle", 1.0) == "idle"


def test_starting_a_set_drops_the_question(journal: Journal) -> None:
    now = confident_identification(journal)
    coach = Coach(journal, now)
    coach.conversation.set_ended(Outcome.COMPLETED, now=0.0)
    coach.conversation.session_started()
    assert coach.conversation.state("session", 1.0) == "session"
    assert coach.conversation.state("idle", 2.0) == "idle"


def regular_strength(journal: Journal, months: int) -> datetime:
    """Strength every other day for months (after moving on to it), the step to speed declined today; the evening
    after the last day."""
    journal.record_event(EventKind.ADVANCED, STRENGTH.key, at(MONDAY, 7).astimezone(UTC))
    end = add_months(MONDAY, months)
    day = MONDAY
    while day < end:
        train(journal, STRENGTH, at(day))
        day += timedelta(days=2)
    journal.record_event(EventKind.DECLINED, "next_exercise", at(end, 8).astimezone(UTC))
    return at(end, 19)


def test_after_months_of_training_the_symptom_question_is_asked_once_and_a_no_gets_the_advice(
    journal: Journal,
) -> None:
    now = regular_strength(journal, DOSAGE.see_doctor_after_months[0])
    coach = Coach(journal, now)
    coach.conversation.set_ended(Outcome.COMPLETED, now=0.0)
    assert coach.said == [PHRASES.text["symptom_question"]]
    assert coach.intent("no", QUESTION)
    assert "elva sjuttiosju punkt se" in coach.said[-1] and "gynekolog" in coach.said[-1]
    answers = [e.value for e in journal.events() if e.kind == EventKind.SYMPTOM_CHECK]
    assert answers == [SymptomAnswer.ASKED, SymptomAnswer.NOT_IMPROVED]
    # Not again later that evening: at most once a month.
    coach.conversation.set_ended(Outcome.COMPLETED, now=3600.0)
    assert len(coach.said) == 2


def test_an_unanswered_symptom_question_still_counts_as_asked(journal: Journal) -> None:
    now = regular_strength(journal, DOSAGE.see_doctor_after_months[0])
    coach = Coach(journal, now)
    coach.conversation.set_ended(Outcome.COMPLETED, now=0.0)
    coach.conversation.set_ended(Outcome.COMPLETED, now=3600.0)
    assert coach.said == [PHRASES.text["symptom_question"]]


# -- "starta träning" --------------------------------------------------------------------------------


def test_the_next_exercise_keeps_the_configured_numbers(journal: Journal) -> None:
    fewer = tuple(with_overrides(e, reps=6) if e.key == IDENTIFICATION.key else e for e in EXERCISES)
    coach = Coach(journal, at(MONDAY), exercises=fewer)
    exercise = coach.conversation.next_exercise()
    assert (exercise.key, exercise.reps) == (IDENTIFICATION.key, 6)


def test_the_next_endurance_set_has_the_hold_the_steps_reached(journal: Journal) -> None:
    journal.record_event(EventKind.ADVANCED, ENDURANCE.key, at(MONDAY, 7).astimezone(UTC))
    for day in range(DEFAULT_RULES.endurance_sessions_per_step):
        train(journal, ENDURANCE, at(MONDAY + timedelta(days=day)))
    coach = Coach(journal, at(MONDAY + timedelta(days=3)))
    assert coach.conversation.next_exercise().hold_s == ENDURANCE.hold_s + DEFAULT_RULES.endurance_step_s


# -- reminders ---------------------------------------------------------------------------------------


def test_a_reminder_is_said_at_its_time_and_then_tomorrow(journal: Journal) -> None:
    coach = Coach(journal, at(MONDAY, 17, 59), EVENING)
    coach.conversation.tick(busy=False)
    assert coach.said == []
    coach.clock.now = at(
        MONDAY,
        18,
        0,
    )
    coach.conversation.tick(busy=False)
    assert coach.said == [PHRASES.text["reminder"]]
    coach.conversation.tick(busy=False)
    assert len(coach.said) == 1
    assert coach.conversation.reminder_due == at(MONDAY + timedelta(days=1), 18)


def test_a_reminder_waits_for_the_set_and_is_said_after_it(journal: Journal) -> None:
    coach = Coach(journal, at(MONDAY, 17, 0), EVENING)
    coach.clock.now = at(MONDAY, 18, 0)
    coach.conversation.tick(busy=True)
    assert coach.said == []
    coach.clock.now = at(MONDAY, 18, 12)
    coach.conversation.tick(busy=False)
    assert coach.said == [PHRASES.text["reminder"]]


def test_a_reminder_later_than_an_hour_is_dropped(journal: Journal) -> None:
    coach = Coach(journal, at(MONDAY, 17, 0), EVENING)
    coach.clock.now = at(MONDAY, 18, 0) + STALE + timedelta(minutes=1)
    coach.conversation.tick(busy=False)
    assert coach.said == []
    assert coach.conversation.reminder_due == at(MONDAY + timedelta(days=1), 18)


def test_no_reminder_once_today_is_trained(journal: Journal) -> None:
    for hour in (8, 12):
        train(journal, IDENTIFICATION, at(MONDAY, hour))
    coach = Coach(journal, at(MONDAY, 17, 0), EVENING)
    coach.clock.now = at(MONDAY, 18, 0)
    coach.conversation.tick(busy=False)
    assert coach.said == []
    assert coach.conversation.reminder_due == at(MONDAY + timedelta(days=1), 18)


def test_a_snooze_brings_the_reminder_back_that_many_minutes_later(journal: Journal) -> None:
    coach = Coach(journal, at(MONDAY, 17, 0), EVENING)
    coach.clock.now = at(MONDAY, 18, 0)
    coach.conversation.tick(busy=False)
    assert coach.intent("snooze", "idle", minutes=30)
    assert coach.said[-1] == PHRASES.text["snoozed"]
    assert coach.conversation.reminder_due == at(MONDAY, 18, 30)
    coach.clock.now = at(MONDAY, 18, 30)
    coach.conversation.tick(busy=False)
    assert coach.said[-1] == PHRASES.text["reminder"]
    assert coach.conversation.reminder_due == at(MONDAY + timedelta(days=1), 18)


def test_a_snooze_into_the_quiet_hours_is_refused_aloud(journal: Journal) -> None:
    coach = Coach(journal, at(MONDAY, 21, 15), EVENING)
    assert coach.intent("snooze", "idle", minutes=30)
    assert coach.said == [PHRASES.text["snooze_quiet"]]
    assert coach.conversation.reminder_due == at(MONDAY + timedelta(days=1), 18)


def test_a_snooze_works_with_reminders_off_and_never_starts_a_set(journal: Journal) -> None:
    coach = Coach(journal, at(MONDAY, 10, 0))
    assert coach.conversation.reminder_due is None
    assert coach.intent("snooze", "idle", minutes=15)
    coach.clock.now = at(MONDAY, 10, 15)
    coach.conversation.tick(busy=False)
    assert coach.said[-1] == PHRASES.text["reminder"]
    assert journal.sessions() == []


# -- before the clock is synchronised ------------------------------------------------------------------------


def test_no_reminder_is_said_before_the_clock_is_synchronised_and_the_status_says_why(journal: Journal) -> None:
    # A Pi without a real-time clock boots with the time it was shut down: "18:00" may be three in the morning.
    coach = Coach(journal, at(MONDAY, 17, 0), EVENING)
    coach.synchronised = False
    coach.clock.now = at(MONDAY, 18, 0)
    coach.conversation.tick(busy=False)
    assert coach.said == []
    assert coach.conversation.reminder_status() == UNSYNCHRONISED
    coach.synchronised = True
    assert coach.conversation.reminder_status() == "next at 2024-06-03 18:00+02:00"


def test_once_the_clock_is_set_the_next_reminder_is_worked_out_again(journal: Journal) -> None:
    # The wrong clock said 19:00 at start-up, so the next reminder looked like tomorrow's; it is really 17:00.
    coach = Coach(journal, at(MONDAY, 19, 0), EVENING)
    coach.synchronised = False
    coach.conversation.tick(busy=False)
    coach.synchronised = True
    coach.clock.now = at(MONDAY, 17, 0)
    coach.conversation.tick(busy=False)
    assert coach.conversation.reminder_due == at(MONDAY, 18, 0)
    coach.clock.now = at(MONDAY, 18, 0)
    coach.conversation.tick(busy=False)
    assert coach.said == [PHRASES.text["reminder"]]


def test_a_snooze_before_the_clock_is_synchronised_is_refused_aloud(journal: Journal) -> None:
    coach = Coach(journal, at(MONDAY, 10, 0), EVENING)
    coach.synchronised = False
    assert coach.intent("snooze", "idle", minutes=30)
    assert coach.said == [PHRASES.text["snooze_no_clock"]]
    assert coach.conversation.reminder_due == at(MONDAY, 18, 0)


def test_reminders_off_are_described_as_off(journal: Journal) -> None:
    assert Coach(journal, at(MONDAY, 10, 0)).conversation.reminder_status() == "off"


def test_clock_sync_from_the_timesync_flag_timedatectl_or_neither(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    flag = tmp_path / "synchronized"
    answers: list[bool | None] = [False, False, True]
    asked: list[bool | None] = []

    def ask() -> bool | None:
        asked.append(answers.pop(0))
        return asked[-1]

    now = [1000.0]
    monkeypatch.setattr(conversation_module.time, "monotonic", lambda: now[0])
    sync = ClockSync(flag, ask)
    assert sync() is False
    # Not asked again before CLOCK_CHECK_S is over: timedatectl is a subprocess.
    assert sync() is False and len(asked) == 1
    now[0] += conversation_module.CLOCK_CHECK_S
    assert sync() is False and len(asked) == 2
    flag.touch()
    now[0] += conversation_module.CLOCK_CHECK_S
    assert sync() is True and len(asked) == 2
    flag.unlink()
    assert sync() is True, "once synchronised, it stays so"
    # Where nothing can tell (no systemd), the clock is taken to be right.
    assert ClockSync(tmp_path / "absent", lambda: None)() is True
