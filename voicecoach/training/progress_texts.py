"""What the coach says about progress: the [progress] phrases of a language pack, filled in from the numbers
voicecoach.progression works out. The numbers are said as words, the way the pack counts."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from voicecoach.engine.language import Pack, load_pack, read_pack, texts
from voicecoach.engine.programme import DOSAGE, ENDURANCE, find_exercise
from voicecoach.training.progression import Suggestion, SuggestionKind, Summary, TrainingPhase

PHRASE_KEYS = (
    "week_none",
    "week_one",
    "week_many",
    "streak",
    "exercise",
    "maintenance",
    "endurance_hold",
    "longest_hold",
    "suggest_next",
    "suggest_maintenance",
    "accepted_next",
    "accepted_maintenance",
    "declined_next",
    "declined_maintenance",
    "symptom_question",
    "symptom_good",
    "symptom_advice",
    "journal_off",
    "progress_off",
    "reminder",
    "snoozed",
    "snooze_quiet",
    "snooze_no_clock",
)


@dataclass(frozen=True)
class Phrases:
    """A language pack's [progress] table, with the pack for numbers and exercise names."""

    pack: Pack
    text: dict[str, str]
    # Numbers said before a noun where they differ from counting ("en gång", not "ett gång").
    counts: dict[int, str]

    def count(self, n: int) -> str:
        return self.counts.get(n, self.pack.number(n))

    def name(self, key: str) -> str:
        """An exercise's name to say mid-sentence."""
        name = self.pack.exercise_name(find_exercise(key))
        return name[:1].lower() + name[1:]


def load_phrases(lang: str = "sv", path: Path | None = None) -> Phrases:
    """The progress phrases of a built-in language pack, or of the pack file at path."""
    pack = load_pack(lang, path)
    source = read_pack(lang, path)
    phrases = texts(source, "progress", PHRASE_KEYS)
    table = source.data["progress"]
    counts = table.get("counts", {}) if isinstance(table, dict) else {}
    return Phrases(pack, phrases, {int(k): str(v) for k, v in counts.items()})


def _dosage_words(phrases: Phrases) -> dict[str, str]:
    low, high = DOSAGE.maintenance_squeezes
    times_low, times_high = DOSAGE.maintenance_times_per_week
    return {
        "low": phrases.count(low),
        "high": phrases.count(high),
        "times_low": phrases.count(times_low),
        "times_high": phrases.count(times_high),
    }


def summary_text(s: Summary, phrases: Phrases) -> str:
    """The spoken answer to "hur går det"."""
    t = phrases.text
    if s.days_this_week == 0:
        parts = [t["week_none"]]
    elif s.days_this_week == 1:
        parts = [t["week_one"]]
    else:
        parts = [t["week_many"].format(days=phrases.count(s.days_this_week))]
    # A streak of one day is just today; it is worth saying from two.
    if s.streak_days > 1:
        parts.append(t["streak"].format(days=phrases.count(s.streak_days)))
    if s.phase is TrainingPhase.MAINTENANCE:
        parts.append(t["maintenance"].format(**_dosage_words(phrases)))
    else:
        parts.append(
            t["exercise"].format(
                exercise=phrases.name(s.exercise),
                number=phrases.pack.number(s.exercise_number),
                total=phrases.count(s.exercises_total),
            )
        )
        if s.exercise == ENDURANCE.key:
            parts.append(t["endurance_hold"].format(seconds=phrases.count(s.endurance_hold_s)))
    if s.longest_hold_s is not None:
        parts.append(t["longest_hold"].format(seconds=phrases.count(s.longest_hold_s)))
    return " ".join(parts)


def suggestion_text(suggestion: Suggestion, current: str, phrases: Phrases) -> str:
    """The spoken question for a suggestion; it takes effect only after a "ja"."""
    if suggestion.kind is SuggestionKind.NEXT_EXERCISE and suggestion.exercise is not None:
        return phrases.text["suggest_next"].format(
            exercise=phrases.name(current), next=phrases.name(suggestion.exercise)
        )
    return phrases.text["suggest_maintenance"].format(**_dosage_words(phrases))


def accepted_text(suggestion: Suggestion, phrases: Phrases) -> str:
    if suggestion.kind is SuggestionKind.NEXT_EXERCISE and suggestion.exercise is not None:
        return phrases.text["accepted_next"].format(exercise=phrases.name(suggestion.exercise))
    return phrases.text["accepted_maintenance"]


def declined_text(suggestion: Suggestion, current: str, phrases: Phrases) -> str:
    """What is said after a "nej" to a suggestion: nothing changes."""
    if suggestion.kind is SuggestionKind.NEXT_EXERCISE:
        return phrases.text["declined_next"].format(exercise=phrases.name(current))
    return phrases.text["declined_maintenance"]


def symptom_answer_text(improved: bool, phrases: Phrases) -> str:
    """What is said after the answer: on "nej", the guide's advice to book a gynaecologist."""
    if improved:
        return phrases.text["symptom_good"]
    low, high = DOSAGE.see_doctor_after_months
    return phrases.text["symptom_advice"].format(low=phrases.count(low), high=phrases.count(high))


def journal_off_text(phrases: Phrases) -> str:
    return phrases.text["journal_off"]
