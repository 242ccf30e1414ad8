"""What the coach says about progress: the [progress] phrases of a language pack, filled in from the numbers
voicecoach.progression works out. The numbers are said as words, the way the pack counts."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from voicecoach.engine.language import Pack, load_pack, read_pack, texts
from voicecoach.engine.programme import DOSAGE, ENDURANCE, EXERCISES, find_exercise
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
    "diary_noted",
    "diary_undone",
    "diary_nothing_to_undo",
    "diary_off",
    "diary_this_week",
    "diary_last_week",
    "diary_none",
    "diary_fallen",
    "diary_not_fallen",
)
# Said between sets as they are, with no number to fill in.
NOTICE_KEYS = (
    "reminder",
    "snoozed",
    "snooze_quiet",
    "snooze_no_clock",
    "progress_off",
    "journal_off",
    "diary_noted",
    "diary_undone",
    "diary_nothing_to_undo",
    "diary_off",
    "diary_fallen",
    "diary_not_fallen",
)
# The suggestion to move on to maintenance, which needs no exercise.
MAINTENANCE = Suggestion(SuggestionKind.MAINTENANCE)


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


# A text said in pieces, each a clip of its own: the numbers that change with her training ("Du har tränat",
# "tolv", "dagar i rad."), so that a progress answer is said from clips rendered ahead (to_render) and needs no
# rendering when she asks; a Piper voice on a Pi renders at about half real time. A str is said whole.
Pieces = tuple[str, ...]
# Numbers said from clips rendered ahead, up to this: the streak in days, the endurance holds in seconds. A larger
# one is rendered when it is said.
NUMBERS_AHEAD = 60


def composed(template: str, slot: str, number: str) -> Pieces:
    """template with {slot} filled in by number, as the pieces it is said in: before, the number, after."""
    before, _, after = template.partition("{" + slot + "}")
    return tuple(piece for piece in (before.strip(), number, after.strip()) if piece)


def _exercise_text(phrases: Phrases, key: str, number: int, total: int) -> str:
    return phrases.text["exercise"].format(
        exercise=phrases.name(key), number=phrases.pack.number(number), total=phrases.count(total)
    )


def summary_pieces(s: Summary, phrases: Phrases) -> Pieces:
    """The spoken answer to "hur går det", in the pieces it is said in."""
    t = phrases.text
    if s.days_this_week == 0:
        pieces: Pieces = (t["week_none"],)
    elif s.days_this_week == 1:
        pieces = (t["week_one"],)
    else:
        pieces = (t["week_many"].format(days=phrases.count(s.days_this_week)),)
    # A streak of one day is just today; it is worth saying from two.
    if s.streak_days > 1:
        pieces += composed(t["streak"], "days", phrases.count(s.streak_days))
    if s.phase is TrainingPhase.MAINTENANCE:
        pieces += (t["maintenance"].format(**_dosage_words(phrases)),)
    else:
        pieces += (_exercise_text(phrases, s.exercise, s.exercise_number, s.exercises_total),)
        if s.exercise == ENDURANCE.key:
            pieces += composed(t["endurance_hold"], "seconds", phrases.count(s.endurance_hold_s))
    if s.longest_hold_s is not None:
        pieces += composed(t["longest_hold"], "seconds", phrases.count(s.longest_hold_s))
    return pieces


def diary_pieces(this_week: int, last_week: int, phrases: Phrases) -> Pieces:
    """The week's leaks against the week before's, for "hur går det" from someone who keeps the diary."""
    t = phrases.text

    def word(n: int) -> str:
        return t["diary_none"] if n == 0 else phrases.pack.number(n)

    return composed(t["diary_this_week"], "number", word(this_week)) + composed(
        t["diary_last_week"], "number", word(last_week)
    )


def notices(phrases: Phrases) -> list[str]:
    """What is said between sets with no number in it, and must never wait for a render (journal_off, at a set's
    start)."""
    return [phrases.text[key] for key in NOTICE_KEYS]


def to_render(phrases: Phrases) -> list[str]:
    """Everything progress, the questions and the notices between sets may say, as the texts and pieces that are
    rendered ahead: the answers for every week and exercise, the pieces around the numbers with every number up to
    NUMBERS_AHEAD, each question about every step, and each reply to it."""
    t = phrases.text
    texts = notices(phrases)
    texts += [t["week_none"], t["week_one"]] + [t["week_many"].format(days=phrases.count(n)) for n in range(2, 8)]
    texts += [_exercise_text(phrases, e.key, e.order, len(EXERCISES)) for e in EXERCISES]
    texts += [t["maintenance"].format(**_dosage_words(phrases))]
    for key, slot in (("streak", "days"), ("endurance_hold", "seconds"), ("longest_hold", "seconds")):
        texts += composed(t[key], slot, "")
    texts += [phrases.count(n) for n in range(1, NUMBERS_AHEAD + 1)]
    steps = [Suggestion(SuggestionKind.NEXT_EXERCISE, e.key) for e in EXERCISES[1:]]
    for current, step in [*zip((e.key for e in EXERCISES), steps, strict=False), (ENDURANCE.key, MAINTENANCE)]:
        texts += [suggestion_text(step, current, phrases), accepted_text(step, phrases)]
        texts += [declined_text(step, current, phrases)]
    texts += [t["symptom_question"], symptom_answer_text(True, phrases), symptom_answer_text(False, phrases)]
    texts += [*diary_pieces(0, 0, phrases), *composed(t["diary_this_week"], "number", "")]
    texts += [phrases.pack.number(n) for n in range(1, NUMBERS_AHEAD + 1)]
    return list(dict.fromkeys(texts))


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
