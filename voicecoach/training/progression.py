"""Progression by the programme's rules: pure functions of the journal's records and an injected "now".

Days are calendar days in now's time zone, so the caller decides what "today" is (local time in real use,
a fake calendar in tests). The numbers come from voicecoach.engine.programme; Rules holds the choices the guide
leaves to us (how many days make "confident", how fast the endurance hold rises, what counts as steady).
"""

from __future__ import annotations

import calendar
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from enum import StrEnum

from voicecoach.engine.programme import DOSAGE, ENDURANCE, EXERCISES, STRENGTH, Exercise, find_exercise, with_overrides
from voicecoach.training.journal import Event, Recorded, SessionRecord


class EventKind(StrEnum):
    """What progression records in the journal's events; the value is given with each."""

    ADVANCED = "advanced"  # value: the key of the exercise now being learned
    MAINTENANCE = "maintenance"  # value: "accepted"
    DECLINED = "declined"  # value: the SuggestionKind declined
    SYMPTOM_CHECK = "symptom_check"  # value: a SymptomAnswer


class SuggestionKind(StrEnum):
    NEXT_EXERCISE = "next_exercise"
    MAINTENANCE = "maintenance"


class SymptomAnswer(StrEnum):
    ASKED = "asked"
    IMPROVED = "improved"
    NOT_IMPROVED = "not_improved"


class TrainingPhase(StrEnum):
    LEARNING = "learning"
    MAINTENANCE = "maintenance"


@dataclass(frozen=True)
class Rules:
    """The configurable part of progression; the defaults are the issue's."""

    # Move on after this many separate days with a confident session of the current exercise.
    days_to_move_on: int = 3
    # Repetitions in a row that make a session confident; None means the guide's set (10 in a row).
    # The configuration writes None as in_a_row = 0, since TOML has no null.
    in_a_row: int | None = None
    endurance_step_s: int = 10
    endurance_sessions_per_step: int = 2
    # Regular training for this long before maintenance is suggested.
    steady_months: int = 3
    # A longer break than this ends a period of regular training.
    max_gap_days: int = 7
    symptom_check_every_months: int = 1
    # The symptom check reads the leak diary where she keeps one (training/diary.py): the leaks of its first
    # diary_weeks against those of the last diary_weeks, fallen by at least leaks_fallen_percent to count as better.
    diary_weeks: int = 4
    leaks_fallen_percent: int = 50


DEFAULT_RULES = Rules()


@dataclass(frozen=True)
class Suggestion:
    kind: SuggestionKind
    exercise: str | None = None  # for NEXT_EXERCISE: the key to move on to


@dataclass(frozen=True)
class Endurance:
    hold_s: int
    goal_s: int
    # Complete sessions at the current hold so far, and how many the next step needs.
    complete_at_hold: int
    sessions_per_step: int


@dataclass(frozen=True)
class NextSession:
    """What "starta träning" plays next, and how much of the dosage is done."""

    exercise: str
    reps: int
    hold_s: int
    rest_s: int
    period: str  # "day" while learning, "week" (the last 7 days) in maintenance
    done: int  # sessions of this plan done in the period
    wanted: tuple[int, int | None]  # the dosage for the period: at least, at most (None: the guide sets no limit)
    due_today: int


@dataclass(frozen=True)
class Summary:
    """The spoken "hur går det": this week, the streak, where the training is, the longest endurance hold."""

    days_this_week: int
    streak_days: int
    phase: TrainingPhase
    exercise: str
    exercise_number: int
    exercises_total: int
    endurance_hold_s: int
    longest_hold_s: int | None


@dataclass(frozen=True)
class Progress:
    phase: TrainingPhase
    exercise: str
    next_exercise: str | None
    confident_days: int
    days_to_move_on: int
    endurance: Endurance
    regular_since: date | None
    maintenance_from: date | None  # when maintenance will be suggested if training stays regular
    suggestion: Suggestion | None
    symptom_check_due: bool
    next_session: NextSession
    summary: Summary = field(repr=False)


# -- calendar ---------------------------------------------------------------------------------


def add_months(day: date, months: int) -> date:
    """The same day of the month, months later; the 31st becomes the last day of a shorter month."""
    index = day.month - 1 + months
    year, month = day.year + index // 12, index % 12 + 1
    return date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def _day(when: datetime, now: datetime) -> date:
    return when.astimezone(now.tzinfo).date()


def _trained_days(sessions: list[SessionRecord], now: datetime) -> set[date]:
    """Days with at least one completed repetition."""
    return {_day(s.started_at, now) for s in sessions if s.reps}


# -- the rules --------------------------------------------------------------------------------


def current_exercise(events: list[Event]) -> Exercise:
    """The exercise being learned: the first, or the last one accepted."""
    key = EXERCISES[0].key
    for event in events:
        if event.kind == EventKind.ADVANCED:
            key = event.value
    return find_exercise(key)


def training_phase(events: list[Event]) -> TrainingPhase:
    accepted = any(e.kind == EventKind.MAINTENANCE for e in events)
    return TrainingPhase.MAINTENANCE if accepted else TrainingPhase.LEARNING


def _following(exercise: Exercise) -> Exercise | None:
    later = [e for e in EXERCISES if e.order > exercise.order]
    return min(later, key=lambda e: e.order) if later else None


def in_a_row(exercise: Exercise, rules: Rules) -> int:
    """Repetitions in a row that make a set confident: rules.in_a_row, else the guide's own set (10), whatever the
    configured set."""
    return rules.in_a_row or find_exercise(exercise.key).reps


def _shortest_hold(exercise: Exercise) -> int:
    """The shortest hold, in the guide's numbers, of a set that counts towards moving on."""
    guide = find_exercise(exercise.key)
    return guide.hold_range_s[0] if guide.hold_range_s else guide.hold_s


def confident_days(sessions: list[SessionRecord], exercise: Exercise, now: datetime, rules: Rules) -> int:
    """Separate days with a confident session (the guide's set in a row, or rules.in_a_row; completed)
    since the last "orkar inte"."""
    needed = in_a_row(exercise, rules)
    shortest_hold = _shortest_hold(exercise)
    days: set[date] = set()
    for s in sessions:
        if s.exercise != exercise.key:
            continue
        if s.outcome is Recorded.COULD_NOT_FINISH:
            days.clear()
        elif s.outcome is Recorded.COMPLETED and s.reps_done >= needed and s.hold_s >= shortest_hold:
            days.add(_day(s.started_at, now))
    return len(days)


def endurance(sessions: list[SessionRecord], rules: Rules) -> Endurance:
    """The endurance hold: from the programme's start, up a step after enough complete sessions, up to the goal."""
    goal = ENDURANCE.goal_hold_s or ENDURANCE.hold_s
    hold, complete = ENDURANCE.hold_s, 0
    for s in sessions:
        if (
            s.exercise == ENDURANCE.key
            and s.outcome is Recorded.COMPLETED
            and s.reps_done >= ENDURANCE.reps
            and s.hold_s >= hold
            and hold < goal
        ):
            complete += 1
            if complete == rules.endurance_sessions_per_step:
                hold, complete = min(hold + rules.endurance_step_s, goal), 0
    return Endurance(hold, goal, complete, rules.endurance_sessions_per_step)


@dataclass(frozen=True)
class Shortfall:
    """A configured number below what the progression waits for: a set with it never counts towards a step."""

    exercise: str  # the exercise's key
    field: str  # the Exercise field: "reps" or "hold_s"
    configured: int
    needed: int
    following: str | None  # the exercise it never moves on to; None: the endurance hold never rises


def shortfalls(programme: Iterable[Exercise], rules: Rules) -> list[Shortfall]:
    """The configured sets the progression never counts: too few in a row, too short a hold, or (endurance)
    too few repetitions for the hold to rise."""
    found: list[Shortfall] = []
    for exercise in programme:
        following = _following(exercise)
        if following is not None:
            needs = {"reps": in_a_row(exercise, rules), "hold_s": _shortest_hold(exercise)}
        elif exercise.key == ENDURANCE.key:
            needs = {"reps": ENDURANCE.reps}
        else:
            continue
        for field_name, needed in needs.items():
            configured = getattr(exercise, field_name)
            if configured < needed:
                key = following.key if following else None
                found.append(Shortfall(exercise.key, field_name, configured, needed, key))
    return found


def regular_since(sessions: list[SessionRecord], now: datetime, rules: Rules) -> date | None:
    """The first day of the current period of regular training (no break longer than max_gap_days), or None."""
    days = sorted(_trained_days(sessions, now))
    if not days or (now.date() - days[-1]).days > rules.max_gap_days:
        return None
    start = days[-1]
    for earlier in reversed(days[:-1]):
        if (start - earlier).days > rules.max_gap_days:
            break
        start = earlier
    return start


def symptom_check_due(sessions: list[SessionRecord], events: list[Event], now: datetime, rules: Rules) -> bool:
    """Ask whether the symptoms have improved: after the guide's months of regular training, at most once a month,
    and never again once the answer was yes."""
    since = regular_since(sessions, now, rules)
    if since is None or now.date() < add_months(since, DOSAGE.see_doctor_after_months[0]):
        return False
    checks = [e for e in events if e.kind == EventKind.SYMPTOM_CHECK]
    if any(e.value == SymptomAnswer.IMPROVED for e in checks):
        return False
    last_asked = max((_day(e.at, now) for e in checks), default=None)
    return last_asked is None or now.date() >= add_months(last_asked, rules.symptom_check_every_months)


def _declined_today(events: list[Event], kind: SuggestionKind, now: datetime) -> bool:
    return any(e.kind == EventKind.DECLINED and e.value == kind and _day(e.at, now) == now.date() for e in events)


def _next_session(
    sessions: list[SessionRecord],
    events: list[Event],
    phase: TrainingPhase,
    hold: int,
    now: datetime,
    exercises: Callable[[str], Exercise],
) -> NextSession:
    """The plan: the exercise as exercises gives it (the configured programme), but with the two numbers the
    progression decides: the endurance hold its steps have reached, and in maintenance the squeezes."""
    today = now.date()
    if phase is TrainingPhase.MAINTENANCE:
        started = max(e.at for e in events if e.kind == EventKind.MAINTENANCE)
        # 8-12 maximal squeezes: plan the most, count a session that reached the least.
        low, high = DOSAGE.maintenance_squeezes
        week = today - timedelta(days=6)
        done = sum(
            1
            for s in sessions
            if s.exercise == STRENGTH.key
            and s.started_at >= started
            and s.reps_done >= low
            and _day(s.started_at, now) >= week
        )
        wanted = DOSAGE.maintenance_times_per_week
        strength = exercises(STRENGTH.key)
        # One a day at most: the week's minimum is not crammed into one day.
        due = min(1, max(0, wanted[0] - done))
        return NextSession(STRENGTH.key, high, strength.hold_s, strength.rest_s, "week", done, wanted, due)
    exercise = exercises(current_exercise(events).key)
    done = sum(
        1
        for s in sessions
        if s.exercise == exercise.key and s.outcome is Recorded.COMPLETED and _day(s.started_at, now) == today
    )
    # "More than once a day" sets a minimum and no upper limit.
    least = DOSAGE.learning_sessions_per_day_min
    hold_s = hold if exercise.key == ENDURANCE.key else exercise.hold_s
    return NextSession(
        exercise.key, exercise.reps, hold_s, exercise.rest_s, "day", done, (least, None), max(0, least - done)
    )


def summary(sessions: list[SessionRecord], events: list[Event], now: datetime, rules: Rules = DEFAULT_RULES) -> Summary:
    """The numbers of the spoken progress summary."""
    days = _trained_days(sessions, now)
    today = now.date()
    monday = today - timedelta(days=today.weekday())
    streak, day = 0, today if today in days else today - timedelta(days=1)
    while day in days:
        streak, day = streak + 1, day - timedelta(days=1)
    holds = [r.hold_s for s in sessions if s.exercise == ENDURANCE.key for r in s.reps]
    exercise = current_exercise(events)
    return Summary(
        days_this_week=sum(1 for d in days if monday <= d <= today),
        streak_days=streak,
        phase=training_phase(events),
        exercise=exercise.key,
        exercise_number=exercise.order,
        exercises_total=len(EXERCISES),
        endurance_hold_s=endurance(sessions, rules).hold_s,
        longest_hold_s=round(max(holds)) if holds else None,
    )


def progress(
    sessions: list[SessionRecord],
    events: list[Event],
    now: datetime,
    rules: Rules = DEFAULT_RULES,
    exercises: Callable[[str], Exercise] = find_exercise,
) -> Progress:
    """Where the training stands today, what comes next, and any step waiting for the user's "ja".
    exercises gives an exercise as configured (the programme's own numbers by default)."""
    phase = training_phase(events)
    exercise = current_exercise(events)
    following = _following(exercise)
    confident = confident_days(sessions, exercise, now, rules)
    since = regular_since(sessions, now, rules)
    hold = endurance(sessions, rules)
    maintenance_from = None
    if phase is TrainingPhase.LEARNING and following is None and since is not None:
        maintenance_from = add_months(since, rules.steady_months)
    suggestion = None
    if phase is TrainingPhase.LEARNING and following is not None and confident >= rules.days_to_move_on:
        suggestion = Suggestion(SuggestionKind.NEXT_EXERCISE, following.key)
    elif maintenance_from is not None and now.date() >= maintenance_from:
        suggestion = Suggestion(SuggestionKind.MAINTENANCE)
    if suggestion is not None and _declined_today(events, suggestion.kind, now):
        suggestion = None
    return Progress(
        phase=phase,
        exercise=exercise.key,
        next_exercise=following.key if following else None,
        confident_days=confident,
        days_to_move_on=rules.days_to_move_on,
        endurance=hold,
        regular_since=since,
        maintenance_from=maintenance_from,
        suggestion=suggestion,
        symptom_check_due=symptom_check_due(sessions, events, now, rules),
        next_session=_next_session(sessions, events, phase, hold.hold_s, now, exercises),
        summary=summary(sessions, events, now, rules),
    )


def accepted(suggestion: Suggestion, now: datetime) -> Event:
    """The event that records the user's "ja" to a suggestion."""
    if suggestion.kind is SuggestionKind.NEXT_EXERCISE and suggestion.exercise is not None:
        return Event(EventKind.ADVANCED, suggestion.exercise, now)
    return Event(EventKind.MAINTENANCE, "accepted", now)


def declined(suggestion: Suggestion, now: datetime) -> Event:
    """The event that records a "nej": the suggestion is not repeated today."""
    return Event(EventKind.DECLINED, suggestion.kind, now)


def next_exercise(
    sessions: list[SessionRecord],
    events: list[Event],
    now: datetime,
    rules: Rules = DEFAULT_RULES,
    exercises: Callable[[str], Exercise] = find_exercise,
) -> Exercise:
    """The exercise "starta träning" plays now, as progress() plans it."""
    plan = progress(sessions, events, now, rules, exercises).next_session
    return with_overrides(exercises(plan.exercise), hold_s=plan.hold_s, rest_s=plan.rest_s, reps=plan.reps)
