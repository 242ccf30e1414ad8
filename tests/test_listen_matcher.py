"""The matcher: what a decoder's words mean, in the coach's state. Pure, so fast."""

from __future__ import annotations

from voicecoach.engine.language import Command
from voicecoach.listen.matcher import Matcher, edit_distance, normalise

COMMANDS = (
    Command("paus", "pause", ("session",)),
    Command("fortsätt", "resume", ("session",)),
    Command("stopp", "stop", ("session",)),
    Command("avsluta", "stop", ("session",)),
    Command("hur många kvar", "how_many_left", ("session",)),
    Command("starta styrka", "start", ("idle",), exercise="strength"),
    Command("starta träning", "start_next", ("idle",)),
    Command("hjälp", "help", ("idle",)),
)


def matcher() -> Matcher:
    return Matcher(COMMANDS, unknown="<unk>")


def test_normalise_lowers_case_composes_accents_and_drops_punctuation() -> None:
    assert normalise("  Fortsa\u0308tt!  ") == "fortsätt"
    assert normalise("Hur många, kvar?") == "hur många kvar"


def test_edit_distance_counts_insertions_deletions_and_substitutions() -> None:
    assert edit_distance("paus", "paus") == 0
    assert edit_distance("paus", "pass") == 1
    assert edit_distance("stopp", "stop") == 1
    assert edit_distance("", "abc") == 3


def test_exact_match_gives_intent_and_exercise_slot() -> None:
    match = matcher().exact("starta styrka", "idle")
    assert match is not None
    assert (match.intent, match.exercise, match.phrase) == ("start", "strength", "starta styrka")


def test_exact_match_only_in_the_states_a_command_is_valid_in() -> None:
    assert matcher().exact("paus", "session") is not None
    assert matcher().exact("paus", "idle") is None
    assert matcher().exact("starta styrka", "session") is None


def test_a_command_inside_other_speech_is_not_a_command() -> None:
    assert matcher().exact("<unk> paus", "session") is None
    assert matcher().exact("paus <unk>", "session") is None


def test_a_word_said_twice_counts_once_unless_repeats_are_refused() -> None:
    match = matcher().exact("paus paus", "session")
    assert match is not None and match.intent == "pause"
    assert matcher().exact("paus paus", "session", repeats=False) is None
    assert matcher().exact("starta styrka styrka", "idle", repeats=False) is None
    match = matcher().exact("starta styrka", "idle", repeats=False)
    assert match is not None and match.exercise == "strength"


def test_words_of_two_commands_are_neither() -> None:
    assert matcher().exact("paus stopp", "session") is None
    assert matcher().exact("hur många", "session") is None


def test_runs_are_the_commands_among_other_words_never_all_of_them() -> None:
    def runs(words: str, state: str = "session", exact: bool = True) -> list[tuple[int, int, str]]:
        return [(i, j, c.phrase) for i, j, c in matcher().runs(words.split(), state, exact)]

    assert runs("<unk> paus") == [(1, 2, "paus")]
    assert runs("stopp paus") == [(0, 1, "stopp"), (1, 2, "paus")]
    assert runs("<unk> hur många kvar <unk>") == [(1, 4, "hur många kvar")]
    # The whole is no run: a command said alone is exact's, and an unknown word is no part of one.
    assert runs("paus") == []
    assert runs("<unk>") == []
    assert runs("paus <unk>", state="idle") == []
    # Open vocabulary: near enough, as nearest() takes it.
    assert runs("och fortsatt", exact=False) == [(1, 2, "fortsätt")]
    assert runs("och fortsatt") == []


def test_phrases_lists_each_valid_phrase_once() -> None:
    doubled = Matcher((*COMMANDS, Command("paus", "pause", ("session",))))
    assert doubled.phrases("session") == ("paus", "fortsätt", "stopp", "avsluta", "hur många kvar")
    assert doubled.phrases("idle") == ("starta styrka", "starta träning", "hjälp")


def test_nearest_accepts_a_near_miss() -> None:
    match = matcher().nearest([("fortsatt", -100.0)], "session")
    assert match is not None and match.intent == "resume" and match.phrase == "fortsätt"


def test_nearest_tolerates_split_words() -> None:
    match = matcher().nearest([("hur mångakvar", -100.0)], "session")
    assert match is not None and match.intent == "how_many_left"


def test_nearest_rejects_other_speech() -> None:
    assert matcher().nearest([("det är nog dags att återgälda tjänsten", -100.0)], "session") is None
    assert matcher().nearest([("och vad har hänt", -100.0)], "session") is None


def test_nearest_is_strict_with_short_commands() -> None:
    # One letter away from "paus", and an ordinary word.
    assert matcher().nearest([("pass", -100.0)], "session") is None


def test_nearest_needs_most_of_the_probability_to_agree() -> None:
    # The best guess is a command, but two guesses just as likely are other words.
    split = [("paus", -100.0), ("pappa", -100.0), ("passa", -100.0)]
    assert matcher().nearest(split, "session") is None
    confident = [("paus", -100.0), ("pappa", -104.0), ("passa", -105.0)]
    match = matcher().nearest(confident, "session")
    assert match is not None and match.intent == "pause" and match.confidence > 0.9


def test_nearest_pools_the_phrases_of_one_intent() -> None:
    # Neither phrase of "stop" has half the votes, together they do.
    votes = [("stopp", -100.0), ("avsluta", -100.0), ("paus", -100.0)]
    match = matcher().nearest(votes, "session")
    assert match is not None and match.intent == "stop"
    assert abs(match.confidence - 2 / 3) < 1e-9


def test_snoozes_of_different_lengths_are_different_commands() -> None:
    snoozes = Matcher(
        (
            Command("påminn mig om femton minuter", "snooze", ("idle",), minutes=15),
            Command("påminn mig om trettio minuter", "snooze", ("idle",), minutes=30),
        ),
        unknown="<unk>",
    )
    exact = snoozes.exact("påminn mig om trettio minuter", "idle")
    assert exact is not None and (exact.intent, exact.minutes) == ("snooze", 30)
    # Pooled as one snooze the two would have two thirds of the votes; apart, neither has enough.
    votes = [("påminn mig om trettio minuter", -100.0), ("påminn mig om femton minuter", -100.0), ("hej", -100.0)]
    assert snoozes.nearest(votes, "idle") is None
    votes = [("påminn mig om femton minuter", -100.0), ("påminn mig om fjorton minuter", -100.5)]
    match = snoozes.nearest(votes, "idle")
    assert match is not None and (match.intent, match.minutes) == ("snooze", 15)


def test_nearest_on_nothing_is_nothing() -> None:
    assert matcher().nearest([], "session") is None
    assert matcher().nearest([("", 0.0)], "session") is None


def test_continues_names_a_phrase_that_starts_a_longer_one() -> None:
    commands = (*COMMANDS, Command("starta", "start_next", ("idle",)))
    m = Matcher(commands)
    assert m.continues("starta", "idle")
    assert not m.continues("starta styrka", "idle")
    assert not m.continues("starta", "session")
