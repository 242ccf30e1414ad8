"""The coach's questions: a step forward in the programme, or whether her symptoms have improved; and what a
"ja" or a "nej" to them does. Pure: the progress, the time and the phrases are given.

A question is asked only after a completed set, when she is lying still and listening anyway, and never
during one. It is open for ANSWER_WINDOW_S after it has been said; while it is open the listener's state is
QUESTION, where "ja" and "nej" are commands. Silence is no answer: nothing is recorded, and a suggestion
comes again after the next set. The symptom question is recorded as asked when it is asked, so that it is
put at most once a month whether or not she answers (the guide's check at 3-6 months, issue 5). Where she keeps the
leak diary and it can tell, it answers the symptom question instead of her (diary_says).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from voicecoach.intents import Mode
from voicecoach.training import diary
from voicecoach.training.journal import Event
from voicecoach.training.progress_texts import (
    Phrases,
    accepted_text,
    declined_text,
    suggestion_text,
    symptom_answer_text,
)
from voicecoach.training.progression import (
    EventKind,
    Progress,
    Rules,
    Suggestion,
    SymptomAnswer,
    accepted,
    declined,
)

QUESTION = Mode.QUESTION
# Long enough to open her eyes and think; short enough that a "ja" said to someone else later is not taken.
ANSWER_WINDOW_S = 20.0


@dataclass(frozen=True)
class Question:
    """A question waiting for "ja" or "nej": about a suggestion, or (suggestion None) about her symptoms.
    current is the exercise she was learning when asked, which a "nej" keeps."""

    text: str
    current: str
    suggestion: Suggestion | None = None


def after_set(progress: Progress, phrases: Phrases) -> Question | None:
    """The question to ask after a completed set, if any: a step forward first, the symptom check otherwise."""
    if progress.suggestion is not None:
        text = suggestion_text(progress.suggestion, progress.exercise, phrases)
        return Question(text, progress.exercise, progress.suggestion)
    if progress.symptom_check_due:
        return Question(phrases.text["symptom_question"], progress.exercise)
    return None


def diary_says(
    progress: Progress, events: list[Event], now: datetime, rules: Rules, phrases: Phrases
) -> tuple[list[Event], str] | None:
    """Where the symptom check is due and the leak diary can tell (diary.leaks_fallen), its answer instead of the
    question, recorded as hers would be: fallen, the coach says so; not fallen, it gives the guide's advice."""
    if progress.suggestion is not None or not progress.symptom_check_due:
        return None
    fallen = diary.leaks_fallen(events, now, rules.diary_weeks, rules.leaks_fallen_percent)
    if fallen is None:
        return None
    value = SymptomAnswer.IMPROVED if fallen else SymptomAnswer.NOT_IMPROVED
    text = (
        phrases.text["diary_fallen"]
        if fallen
        else f"{phrases.text['diary_not_fallen']} {symptom_answer_text(False, phrases)}"
    )
    return [Event(EventKind.SYMPTOM_CHECK, value, now)], text


def asked(question: Question, now: datetime) -> list[Event]:
    """What asking records in the journal."""
    if question.suggestion is None:
        return [Event(EventKind.SYMPTOM_CHECK, SymptomAnswer.ASKED, now)]
    return []


def answer(question: Question, yes: bool, now: datetime, phrases: Phrases) -> tuple[list[Event], str]:
    """The events a "ja" (yes) or "nej" records, and what the coach says back."""
    if question.suggestion is None:
        value = SymptomAnswer.IMPROVED if yes else SymptomAnswer.NOT_IMPROVED
        return [Event(EventKind.SYMPTOM_CHECK, value, now)], symptom_answer_text(yes, phrases)
    if yes:
        return [accepted(question.suggestion, now)], accepted_text(question.suggestion, phrases)
    return [declined(question.suggestion, now)], declined_text(question.suggestion, question.current, phrases)
