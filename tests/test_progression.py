"""Progression rules on a fake calendar: records are built in memory, "now" is injected."""

from __future__ import annotations

import itertools
from datetime import UTC, date, datetime, timedelta, timezone

import pytest

from voicecoach.coach import sentences_of
from voicecoach.engine.language import LANGUAGES
from voicecoach.engine.programme import DOSAGE, ENDURANCE, EXERCISES, IDENTIFICATION, SPEED, STRENGTH, Exercise
from voicecoach.training.journal import Event, Recorded, Rep, SessionRecord
from voicecoach.training.progress_texts import (
    NUMBERS_AHEAD,
    accepted_text,
    declined_text,
    load_phrases,
    suggestion_text,
    summary_pieces,
    symptom_answer_text,
    to_render,
)
from voicecoach.training.progression import (
    DEFAULT_RULES,
    EventKind,
    Rules,
    Suggestion,
    SuggestionKind,
    Summary,
    SymptomAnswer,
    TrainingPhase,
    accepted,
    add_months,
    declined,
    endurance,
    next_exercise,
    progress,
    regular_since,
    summary,
    symptom_check_due,
)

# A fixed-offset zone a long way from UTC, so a day boundary in UTC is not a day boundary here.
ZONE = timezone(timedelta(hours=5))
MONDAY = date(2024, 6, 3)


def at(day: date, hour: int = 9, minute: int = 0) -> datetime:
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=ZONE)


class Calendar:
    """A fake training history: sessions and events added day by day."""

    def __init__(self) -> None:
        self.sessions: list[SessionRecord] = []
        self.events: list[Event] = []

    def train(
        self,
        exercise: Exercise,
        when: datetime,
        reps: int | None = None,
        outcome: Recorded = Recorded.COMPLETED,
        hold_s: int | None = None,
        planned: int | None = None,
    ) -> None:
        hold = hold_s if hold_s is not None else exercise.hold_s
        done = exercise.reps if reps is None else reps
        # The journal gives times back in UTC; the rules must find the local day themselves.
        when = when.astimezone(UTC)
        self.sessions.append(
            SessionRecord(
                id=len(self.sessions) + 1,
                exercise=exercise.key,
                planned_reps=planned or exercise.reps,
                hold_s=hold,
                rest_s=exercise.rest_s,
                started_at=when,
                ended_at=when + timedelta(minutes=5),
                outcome=outcome,
                reps=tuple(Rep(n, float(hold), when + timedelta(seconds=10 * n)) for n in range(1, done + 1)),
            )
        )

    def event(self, kind: str, value: str, when: datetime) -> None:
        self.events.append(Event(kind, value, when.astimezone(UTC)))

    def progress(self, now: datetime, rules: Rules = DEFAULT_RULES):
        return progress(self.sessions, self.events, now, rules)


def daily(cal: Calendar, exercise: Exercise, first: date, days: int, every: int = 1) -> date:
    for n in range(0, days, every):
        cal.train(exercise, at(first + timedelta(days=n)))
    return first + timedelta(days=days - 1)


# -- moving on --------------------------------------------------------------------------------


def test_three_confident_days_suggest_the_next_exercise():
    cal = Calendar()
    last = daily(cal, IDENTIFICATION, MONDAY, 3)
    p = cal.progress(at(last, 20))
    assert p.exercise == IDENTIFICATION.key
    assert p.confident_days == 3
    assert p.suggestion == Suggestion(SuggestionKind.NEXT_EXERCISE, STRENGTH.key)


def test_two_confident_days_are_not_enough():
    cal = Calendar()
    last = daily(cal, IDENTIFICATION, MONDAY, 2)
    p = cal.progress(at(last, 20))
    assert p.confident_days == 2
    assert p.suggestion is None


def test_three_sessions_on_one_day_count_as_one_day():
    cal = Calendar()
    for hour in (8, 12, 18):
        cal.train(IDENTIFICATION, at(MONDAY, hour))
    assert cal.progress(at(MONDAY, 20)).confident_days == 1


def test_days_are_local_days_not_utc_days():
    cal = Calendar()
    # 23:30 and 00:30 local are five hours apart from UTC: both fall on the same UTC day, on two local days.
    cal.train(IDENTIFICATION, at(MONDAY, 0, 30))
    cal.train(IDENTIFICATION, at(MONDAY - timedelta(days=1), 23, 30))
    assert cal.sessions[0].started_at.astimezone(UTC).date() == cal.sessions[1].started_at.astimezone(UTC).date()
    assert cal.progress(at(MONDAY, 20)).confident_days == 2


@pytest.mark.parametrize(
    ("reps", "outcome", "hold_s"),
    [
        (IDENTIFICATION.reps - 1, Recorded.COMPLETED, None),
        (IDENTIFICATION.reps, Recorded.STOPPED, None),
        (IDENTIFICATION.reps, Recorded.INTERRUPTED, None),
        (IDENTIFICATION.reps, Recorded.COMPLETED, IDENTIFICATION.hold_range_s[0] - 1),
    ],
)
def test_a_short_stopped_or_too_easy_session_is_not_confident(reps, outcome, hold_s):
    cal = Calendar()
    last = daily(cal, IDENTIFICATION, MONDAY, 2)
    cal.train(IDENTIFICATION, at(last + timedelta(days=1)), reps=reps, outcome=outcome, hold_s=hold_s)
    assert cal.progress(at(last + timedelta(days=1), 20)).confident_days == 2


def test_orkar_inte_starts_the_count_again():
    cal = Calendar()
    last = daily(cal, IDENTIFICATION, MONDAY, 2)
    cal.train(IDENTIFICATION, at(last, 19), reps=4, outcome=Recorded.COULD_NOT_FINISH)
    last = daily(cal, IDENTIFICATION, last + timedelta(days=1), 2)
    p = cal.progress(at(last, 20))
    assert p.confident_days == 2
    assert p.suggestion is None


def test_sessions_of_another_exercise_do_not_count():
    cal = Calendar()
    last = daily(cal, STRENGTH, MONDAY, 3)
    assert cal.progress(at(last, 20)).confident_days == 0


def test_the_rules_are_configurable():
    cal = Calendar()
    cal.train(IDENTIFICATION, at(MONDAY), reps=5, planned=5)
    cal.train(IDENTIFICATION, at(MONDAY + timedelta(days=1)), reps=5, planned=5)
    rules = Rules(days_to_move_on=2, in_a_row=5)
    assert cal.progress(at(MONDAY + timedelta(days=1), 20), rules).suggestion == Suggestion(
        SuggestionKind.NEXT_EXERCISE, STRENGTH.key
    )
    assert cal.progress(at(MONDAY + timedelta(days=1), 20)).suggestion is None


def test_accepting_moves_on_and_the_count_starts_for_the_new_exercise():
    cal = Calendar()
    last = daily(cal, IDENTIFICATION, MONDAY, 3)
    now = at(last, 20)
    event = accepted(cal.progress(now).suggestion, now)
    assert (event.kind, event.value) == (EventKind.ADVANCED, STRENGTH.key)
    cal.events.append(event)
    p = cal.progress(now)
    assert (p.exercise, p.next_exercise, p.confident_days, p.suggestion) == (STRENGTH.key, SPEED.key, 0, None)
    assert p.next_session.exercise == STRENGTH.key


def test_a_declined_suggestion_waits_until_tomorrow():
    cal = Calendar()
    last = daily(cal, IDENTIFICATION, MONDAY, 3)
    suggestion = cal.progress(at(last, 20)).suggestion
    cal.events.append(declined(suggestion, at(last, 20)))
    assert cal.progress(at(last, 21)).suggestion is None
    assert cal.progress(at(last + timedelta(days=1), 8)).suggestion == suggestion


def test_there_is_no_exercise_after_the_last():
    cal = Calendar()
    cal.event(EventKind.ADVANCED, EXERCISES[-1].key, at(MONDAY, 7))
    last = daily(cal, EXERCISES[-1], MONDAY, 5)
    p = cal.progress(at(last, 20))
    assert p.next_exercise is None
    assert p.suggestion is None


# -- endurance --------------------------------------------------------------------------------


def endurance_sessions(cal: Calendar, holds: list[int], first: date = MONDAY) -> None:
    for n, hold in enumerate(holds):
        cal.train(ENDURANCE, at(first + timedelta(days=n)), hold_s=hold)


def test_the_endurance_hold_starts_at_the_programme_start():
    assert endurance([], Rules()).hold_s == ENDURANCE.hold_s


def test_two_complete_sessions_raise_the_hold_by_a_step():
    cal = Calendar()
    endurance_sessions(cal, [ENDURANCE.hold_s])
    assert endurance(cal.sessions, Rules()).hold_s == ENDURANCE.hold_s
    endurance_sessions(cal, [ENDURANCE.hold_s], MONDAY + timedelta(days=1))
    e = endurance(cal.sessions, Rules())
    assert e.hold_s == ENDURANCE.hold_s + Rules().endurance_step_s
    assert e.complete_at_hold == 0


def test_an_unfinished_or_shorter_endurance_session_does_not_count():
    cal = Calendar()
    cal.train(ENDURANCE, at(MONDAY), reps=1, outcome=Recorded.STOPPED)
    cal.train(ENDURANCE, at(MONDAY, 12), reps=1, outcome=Recorded.COULD_NOT_FINISH)
    cal.train(ENDURANCE, at(MONDAY, 15), hold_s=ENDURANCE.hold_s - 5)
    cal.train(ENDURANCE, at(MONDAY, 18), reps=ENDURANCE.reps - 1, planned=ENDURANCE.reps - 1)
    assert endurance(cal.sessions, Rules()) == endurance([], Rules())


def test_the_endurance_hold_stops_at_the_goal():
    rules = Rules()
    steps = (ENDURANCE.goal_hold_s - ENDURANCE.hold_s) // rules.endurance_step_s
    cal = Calendar()
    holds = []
    for step in range(steps + 3):
        holds += [ENDURANCE.hold_s + step * rules.endurance_step_s] * rules.endurance_sessions_per_step
    endurance_sessions(cal, holds)
    assert endurance(cal.sessions, rules).hold_s == ENDURANCE.goal_hold_s


def test_the_next_endurance_session_uses_the_current_hold():
    cal = Calendar()
    cal.event(EventKind.ADVANCED, ENDURANCE.key, at(MONDAY, 7))
    endurance_sessions(cal, [ENDURANCE.hold_s, ENDURANCE.hold_s])
    nxt = cal.progress(at(MONDAY + timedelta(days=2))).next_session
    assert (nxt.exercise, nxt.hold_s) == (ENDURANCE.key, ENDURANCE.hold_s + Rules().endurance_step_s)


def test_the_exercise_started_next_follows_the_rules_given():
    cal = Calendar()
    cal.event(EventKind.ADVANCED, ENDURANCE.key, at(MONDAY, 7))
    endurance_sessions(cal, [ENDURANCE.hold_s])
    now = at(MONDAY + timedelta(days=1))
    # One complete session is half a step by default; with a step a session it is a whole (bigger) step.
    assert next_exercise(cal.sessions, cal.events, now).hold_s == ENDURANCE.hold_s
    quick = Rules(endurance_step_s=25, endurance_sessions_per_step=1)
    started = next_exercise(cal.sessions, cal.events, now, quick)
    assert (started.key, started.hold_s, started.reps) == (ENDURANCE.key, ENDURANCE.hold_s + 25, ENDURANCE.reps)


# -- dosage -----------------------------------------------------------------------------------


def test_while_learning_more_than_one_session_a_day_is_due():
    cal = Calendar()
    cal.train(IDENTIFICATION, at(MONDAY - timedelta(days=1)))
    nxt = cal.progress(at(MONDAY, 7)).next_session
    assert (nxt.exercise, nxt.period, nxt.done, nxt.due_today) == (
        IDENTIFICATION.key,
        "day",
        0,
        DOSAGE.learning_sessions_per_day_min,
    )
    for hour in range(8, 8 + DOSAGE.learning_sessions_per_day_min):
        cal.train(IDENTIFICATION, at(MONDAY, hour))
    nxt = cal.progress(at(MONDAY, 20)).next_session
    assert (nxt.done, nxt.due_today) == (DOSAGE.learning_sessions_per_day_min, 0)


def months_of_regular_training(cal: Calendar, exercise: Exercise, first: date, months: int) -> date:
    """Every other day (well within max_gap_days) for the given months; returns the day after the last session."""
    end = add_months(first, months)
    daily(cal, exercise, first, (end - first).days, every=2)
    return end


def test_maintenance_is_suggested_after_a_steady_period_on_the_last_exercise():
    cal = Calendar()
    cal.event(EventKind.ADVANCED, ENDURANCE.key, at(MONDAY, 7))
    end = months_of_regular_training(cal, ENDURANCE, MONDAY, Rules().steady_months)
    assert cal.progress(at(end - timedelta(days=2))).suggestion is None
    p = cal.progress(at(end))
    assert p.maintenance_from == end
    assert p.suggestion == Suggestion(SuggestionKind.MAINTENANCE)


def test_maintenance_is_not_suggested_before_the_last_exercise():
    cal = Calendar()
    end = months_of_regular_training(cal, STRENGTH, MONDAY, Rules().steady_months + 1)
    cal.event(EventKind.ADVANCED, STRENGTH.key, at(MONDAY, 7))
    # Months of confident strength sessions suggest moving on, never maintenance.
    p = cal.progress(at(end))
    assert p.suggestion != Suggestion(SuggestionKind.MAINTENANCE)
    assert p.maintenance_from is None


def test_a_long_break_restarts_the_steady_period():
    rules = Rules()
    cal = Calendar()
    cal.event(EventKind.ADVANCED, ENDURANCE.key, at(MONDAY, 7))
    end = months_of_regular_training(cal, ENDURANCE, MONDAY, rules.steady_months)
    restart = end + timedelta(days=rules.max_gap_days + 1)
    cal.train(ENDURANCE, at(restart))
    assert regular_since(cal.sessions, at(restart, 20), rules) == restart
    assert cal.progress(at(restart, 20)).suggestion is None
    assert regular_since(cal.sessions, at(restart + timedelta(days=rules.max_gap_days + 1)), rules) is None


def test_the_maintenance_phase_plans_maximal_squeezes_once_or_twice_a_week():
    cal = Calendar()
    cal.event(EventKind.MAINTENANCE, "accepted", at(MONDAY, 7))
    nxt = cal.progress(at(MONDAY, 8)).next_session
    assert cal.progress(at(MONDAY, 8)).phase is TrainingPhase.MAINTENANCE
    assert (nxt.exercise, nxt.reps, nxt.period) == (STRENGTH.key, DOSAGE.maintenance_squeezes[1], "week")
    assert nxt.wanted == DOSAGE.maintenance_times_per_week
    assert nxt.due_today == 1
    cal.train(STRENGTH, at(MONDAY, 9), reps=DOSAGE.maintenance_squeezes[0], outcome=Recorded.STOPPED)
    nxt = cal.progress(at(MONDAY + timedelta(days=3))).next_session
    assert (nxt.done, nxt.due_today) == (1, 0)
    # A week later the session has left the 7-day window.
    assert cal.progress(at(MONDAY + timedelta(days=7))).next_session.due_today == 1


def test_too_few_maximal_squeezes_do_not_count_as_a_maintenance_session():
    cal = Calendar()
    cal.event(EventKind.MAINTENANCE, "accepted", at(MONDAY, 7))
    cal.train(STRENGTH, at(MONDAY, 9), reps=DOSAGE.maintenance_squeezes[0] - 1, outcome=Recorded.STOPPED)
    assert cal.progress(at(MONDAY, 20)).next_session.done == 0


# -- the symptom check ------------------------------------------------------------------------


def test_the_symptom_check_waits_for_months_of_regular_training():
    cal = Calendar()
    end = months_of_regular_training(cal, STRENGTH, MONDAY, DOSAGE.see_doctor_after_months[0])
    assert not symptom_check_due(cal.sessions, cal.events, at(end - timedelta(days=2)), Rules())
    assert symptom_check_due(cal.sessions, cal.events, at(end), Rules())


def test_the_symptom_check_is_asked_at_most_once_a_month():
    cal = Calendar()
    months_of_regular_training(cal, STRENGTH, MONDAY, DOSAGE.see_doctor_after_months[1])
    asked = add_months(MONDAY, DOSAGE.see_doctor_after_months[0] + 1)
    cal.event(EventKind.SYMPTOM_CHECK, SymptomAnswer.NOT_IMPROVED, at(asked))
    assert not symptom_check_due(cal.sessions, cal.events, at(asked + timedelta(days=20)), Rules())
    assert not symptom_check_due(cal.sessions, cal.events, at(add_months(asked, 1) - timedelta(days=1)), Rules())
    assert symptom_check_due(cal.sessions, cal.events, at(add_months(asked, 1)), Rules())


def test_the_symptom_check_stops_once_the_symptoms_have_improved():
    cal = Calendar()
    end = months_of_regular_training(cal, STRENGTH, MONDAY, DOSAGE.see_doctor_after_months[1])
    cal.event(EventKind.SYMPTOM_CHECK, SymptomAnswer.IMPROVED, at(MONDAY + timedelta(days=100)))
    assert not symptom_check_due(cal.sessions, cal.events, at(end), Rules())


def test_add_months_keeps_the_day_or_takes_the_last_of_a_short_month():
    assert add_months(date(2024, 1, 31), 1) == date(2024, 2, 29)
    assert add_months(date(2023, 11, 15), 3) == date(2024, 2, 15)


# -- spoken progress --------------------------------------------------------------------------


def test_summary_counts_this_weeks_days_and_the_streak():
    cal = Calendar()
    # Saturday and Sunday of the week before, then Monday to Wednesday.
    for offset in (-2, -1, 0, 1, 2):
        cal.train(STRENGTH, at(MONDAY + timedelta(days=offset)))
    s = summary(cal.sessions, cal.events, at(MONDAY + timedelta(days=2), 20))
    assert (s.days_this_week, s.streak_days) == (3, 5)


def test_the_streak_survives_until_today_is_over_and_breaks_on_a_missed_day():
    cal = Calendar()
    for offset in (0, 1, 3, 4):
        cal.train(STRENGTH, at(MONDAY + timedelta(days=offset)))
    # Saturday morning, not trained yet today: Thursday and Friday still count; Wednesday was missed.
    assert summary(cal.sessions, cal.events, at(MONDAY + timedelta(days=5), 7)).streak_days == 2
    # Sunday morning: Saturday was missed.
    assert summary(cal.sessions, cal.events, at(MONDAY + timedelta(days=6), 7)).streak_days == 0


def test_a_session_without_a_single_rep_is_not_a_day_trained():
    cal = Calendar()
    cal.train(STRENGTH, at(MONDAY), reps=0, outcome=Recorded.STOPPED)
    assert summary(cal.sessions, cal.events, at(MONDAY, 20)).days_this_week == 0


def test_summary_reports_the_longest_endurance_hold():
    cal = Calendar()
    endurance_sessions(cal, [ENDURANCE.hold_s, ENDURANCE.hold_s + 15])
    cal.train(STRENGTH, at(MONDAY, 12), hold_s=170)
    s = summary(cal.sessions, cal.events, at(MONDAY + timedelta(days=2)))
    assert s.longest_hold_s == ENDURANCE.hold_s + 15


def test_the_swedish_summary_says_week_streak_exercise_and_longest_hold():
    phrases = load_phrases("sv")
    s = Summary(3, 4, TrainingPhase.LEARNING, ENDURANCE.key, 4, 4, 40, 45)
    # Said in pieces: the numbers that change with her training on their own, each piece rendered ahead.
    assert summary_pieces(s, phrases) == (
        "Den här veckan har du tränat tre dagar.",
        "Du har tränat",
        "fyra",
        "dagar i rad.",
        "Du tränar uthållighetsknip, övning fyra av fyra.",
        "Uthållighetsknipet är nu",
        "40",
        "sekunder.",
        "Ditt längsta uthållighetsknip är",
        "45",
        "sekunder.",
    )
    assert set(summary_pieces(s, phrases)) <= set(to_render(phrases))


def test_the_summary_of_a_first_day_is_short():
    pieces = summary_pieces(Summary(1, 1, TrainingPhase.LEARNING, STRENGTH.key, 2, 4, 30, None), load_phrases("sv"))
    assert pieces == ("Den här veckan har du tränat en dag.", "Du tränar styrkeknip, övning två av fyra.")


def test_the_maintenance_words_come_from_the_dosage():
    phrases = load_phrases("sv")
    low, high = DOSAGE.maintenance_squeezes
    times_low, times_high = DOSAGE.maintenance_times_per_week
    text = suggestion_text(Suggestion(SuggestionKind.MAINTENANCE), ENDURANCE.key, phrases)
    assert f"{phrases.pack.number(low)} till {phrases.pack.number(high)} maximala knip" in text
    # Before a noun Swedish says "en gång", not the counting "ett".
    assert f"{phrases.count(times_low)} till {phrases.pack.number(times_high)} gånger i veckan" in text
    assert phrases.count(1) == "en"


def test_the_move_on_question_names_both_exercises():
    text = suggestion_text(
        Suggestion(SuggestionKind.NEXT_EXERCISE, STRENGTH.key), IDENTIFICATION.key, load_phrases("sv")
    )
    assert text == "Du klarar identifieringsknip säkert nu. Vill du gå vidare till styrkeknip? Svara ja eller nej."
    assert accepted_text(Suggestion(SuggestionKind.NEXT_EXERCISE, STRENGTH.key), load_phrases("sv")).endswith(
        "styrkeknip."
    )


def test_a_no_to_the_symptom_question_gives_the_guides_advice():
    text = symptom_answer_text(False, load_phrases("sv"))
    assert "boka tid hos gynekolog via läkare eller direkt via elva sjuttiosju punkt se" in text
    low, high = DOSAGE.see_doctor_after_months
    pack = load_phrases("sv").pack
    assert f"{pack.number(low)} till {pack.number(high)} månader" in text
    assert "elva sjuttiosju" not in symptom_answer_text(True, load_phrases("sv"))


# The guide's 1177.se, written in the packs as it is said.
SPOKEN_1177 = {"sv": "elva sjuttiosju punkt se", "en": "eleven seventy-seven dot s e"}


@pytest.mark.parametrize("lang", LANGUAGES)
def test_every_pack_has_every_progress_phrase(lang):
    phrases = load_phrases(lang)
    s = Summary(2, 2, TrainingPhase.MAINTENANCE, ENDURANCE.key, 4, 4, 30, 30)
    assert all(summary_pieces(s, phrases))
    assert SPOKEN_1177[lang] in symptom_answer_text(False, phrases)


@pytest.mark.parametrize("lang", LANGUAGES)
def test_everything_said_between_sets_up_to_the_numbers_ahead_is_rendered_ahead(lang):
    phrases = load_phrases(lang)
    ahead = set(sentences_of(to_render(phrases)))
    said: set[str] = set()
    for exercise, phase in itertools.product(EXERCISES, TrainingPhase):
        for days, streak in itertools.product(range(8), range(NUMBERS_AHEAD + 1)):
            hold = 1 + (days * 7 + streak) % NUMBERS_AHEAD
            s = Summary(days, streak, phase, exercise.key, exercise.order, len(EXERCISES), hold, hold)
            said |= set(summary_pieces(s, phrases))
        following = [
            Suggestion(SuggestionKind.NEXT_EXERCISE, e.key) for e in EXERCISES if e.order == exercise.order + 1
        ]
        for step in (Suggestion(SuggestionKind.MAINTENANCE), *following):
            said |= {suggestion_text(step, exercise.key, phrases), accepted_text(step, phrases)}
            said.add(declined_text(step, exercise.key, phrases))
    said |= {phrases.text["symptom_question"], symptom_answer_text(True, phrases), symptom_answer_text(False, phrases)}
    missing = set(sentences_of(said)) - ahead
    assert missing == set()
    # Past the numbers ahead, only the number itself is rendered when it is said.
    long = summary_pieces(Summary(3, NUMBERS_AHEAD + 1, TrainingPhase.LEARNING, STRENGTH.key, 2, 4, 30, None), phrases)
    assert [p for p in long if p not in ahead] == [phrases.count(NUMBERS_AHEAD + 1)]
