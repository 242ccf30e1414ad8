"""What a recogniser's words mean: text, or n-best alternatives, to the one command they say. Pure functions.

Two kinds of input. A decoder restricted to a grammar only ever outputs command words and the unknown-word
token, so its text must be exactly a command. An open-vocabulary decoder outputs any words, so its best few
guesses vote, each for the command it is nearest to, if it is near enough.
"""

from __future__ import annotations

import math
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from voicecoach.engine.language import Command
from voicecoach.intents import Name

# How far an open-vocabulary guess may be from a phrase: edits per letter, letters counted after splitting
# accents off (so "fortsatt" is one edit from "fortsätt"). Low, because a near-miss of a short command is
# often another word: "pass" is one edit from "paus".
MAX_EDITS_PER_LETTER = 0.2
# The share of the guesses' probability that must agree on one command before it counts as said.
MIN_AGREEMENT = 0.5


@dataclass(frozen=True)
class Match:
    """A command heard: its intent and slot, the phrase as written in the pack, and how sure we are (0 to 1)."""

    intent: Name
    phrase: str
    exercise: str | None
    confidence: float
    minutes: int | None = None
    # Where the recogniser placed the phrase's words in the decoded audio (seconds from its start), when it said.
    span: tuple[float, float] | None = None


def normalise(text: str) -> str:
    """Lower case, composed accents, single spaces, no punctuation: the form both packs and decoders compare in."""
    text = unicodedata.normalize("NFC", text).lower()
    kept = "".join(c if c.isalnum() or c in "'-" else " " for c in text)
    return " ".join(kept.split())


def _letters(text: str) -> str:
    # Word boundaries are unreliable in open-vocabulary output ("hur många kvar" as "hurmånga kvar"), and an
    # accent is one slip, not a different letter.
    return unicodedata.normalize("NFD", text.replace(" ", ""))


def edit_distance(a: str, b: str) -> int:
    """Levenshtein distance between two strings."""
    if len(a) < len(b):
        a, b = b, a
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        current = [i]
        for j, cb in enumerate(b, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ca != cb)))
        previous = current
    return previous[-1]


class Matcher:
    """The commands of one pack, matched against what a decoder heard, in the state the coach is in."""

    def __init__(self, commands: Iterable[Command], unknown: str | None = None) -> None:
        self.commands = tuple(commands)
        self.unknown = unknown

    def phrases(self, state: str) -> tuple[str, ...]:
        """Every phrase valid in a state, in pack order, each once."""
        return tuple(dict.fromkeys(normalise(c.phrase) for c in self.commands if state in c.states))

    def _valid(self, state: str) -> Iterable[Command]:
        return (c for c in self.commands if state in c.states)

    def exact(self, text: str, state: str, repeats: bool = True) -> Match | None:
        """The command that text is, word for word, or None.

        A word said twice counts once ("paus paus"), unless repeats is False. Any unknown-word token means other
        speech was part of the utterance, and a command inside a sentence was not addressed to the coach, so it
        does not count.
        """
        words = text.split()
        if not words or self.unknown in words:
            return None
        collapsed = [w for i, w in enumerate(words) if i == 0 or w != words[i - 1] or not repeats]
        command = self._exactly(" ".join(collapsed), state)
        if command is None:
            return None
        return Match(command.intent, command.phrase, command.exercise, 1.0, command.minutes)

    def nearest(self, alternatives: Sequence[tuple[str, float]], state: str) -> Match | None:
        """The command that most of the probability of an n-best list agrees on, or None.

        alternatives are (text, log-likelihood) pairs as vosk returns them. Each votes with its probability
        for the nearest command within MAX_EDITS_PER_LETTER; a command needs MIN_AGREEMENT of the total.
        """
        if not alternatives:
            return None
        best = max(score for _text, score in alternatives)
        weights = [math.exp(score - best) for _text, score in alternatives]
        total = sum(weights)
        votes: dict[Command, float] = {}
        for (text, _score), weight in zip(alternatives, weights, strict=True):
            command = self._closest(text, state)
            if command is not None:
                votes[command] = votes.get(command, 0.0) + weight / total
        if not votes:
            return None
        # Phrases of one intent and slots pool their votes: "stopp" and "avsluta" both mean stop.
        pooled: dict[tuple[str, str | None, int | None], float] = {}
        for command, share in votes.items():
            pooled[_meaning(command)] = pooled.get(_meaning(command), 0.0) + share
        meaning, share = max(pooled.items(), key=lambda item: item[1])
        if share < MIN_AGREEMENT:
            return None
        phrase = max((c for c in votes if _meaning(c) == meaning), key=votes.__getitem__)
        return Match(phrase.intent, phrase.phrase, phrase.exercise, share, phrase.minutes)

    def _closest(self, text: str, state: str) -> Command | None:
        heard = _letters(normalise(text))
        if not heard:
            return None
        best: tuple[float, Command] | None = None
        for command in self._valid(state):
            wanted = _letters(normalise(command.phrase))
            distance = edit_distance(heard, wanted) / len(wanted)
            if distance <= MAX_EDITS_PER_LETTER and (best is None or distance < best[0]):
                best = (distance, command)
        return best[1] if best else None

    def runs(self, words: Sequence[str], state: str, exact: bool) -> list[tuple[int, int, Command]]:
        """Every run of consecutive words, words[i:j] short of all of them and without the unknown-word token, that
        is a command valid in the state: word for word (exact, a grammar's output) or within MAX_EDITS_PER_LETTER
        (open vocabulary)."""
        found = []
        for i in range(len(words)):
            for j in range(i + 1, len(words) + 1):
                run = words[i:j]
                if j - i == len(words) or self.unknown in run:
                    continue
                text = " ".join(run)
                command = self._exactly(text, state) if exact else self._closest(text, state)
                if command is not None:
                    found.append((i, j, command))
        return found

    def _exactly(self, text: str, state: str) -> Command | None:
        heard = normalise(text)
        return next((c for c in self._valid(state) if normalise(c.phrase) == heard), None)

    def continues(self, phrase: str, state: str) -> bool:
        """Whether a longer phrase valid in this state starts with this one, so hearing it may be premature."""
        words = normalise(phrase).split()
        return any(
            len(other) > len(words) and other[: len(words)] == words
            for other in (normalise(c.phrase).split() for c in self._valid(state))
        )


def _meaning(command: Command) -> tuple[str, str | None, int | None]:
    return command.intent, command.exercise, command.minutes
