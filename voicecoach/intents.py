"""The coach's vocabulary: every intent declared once, with its slots and who may ask for it.

Intents are data, as hassil's are, and typed, as wyoming's events are: a language pack's [[commands]] name them,
the control socket carries them, the coach and the conversation act on them, and all of them take the names and
slots from here. A name nobody declared is an error where it is read, not a silent no-op where it is acted on.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Name(StrEnum):
    # In a set (the session engine's reactions).
    PAUSE = "pause"
    RESUME = "resume"
    STOP = "stop"
    NEXT = "next"
    REPEAT = "repeat"
    HOW_MANY_LEFT = "how_many_left"
    CANT = "cant"
    # Between sets.
    START = "start"
    START_NEXT = "start_next"
    HELP = "help"
    PROGRESS = "progress"
    YES = "yes"
    NO = "no"
    SNOOZE = "snooze"
    # The leak diary (training/diary.py), between sets.
    LEAK = "leak"
    PAD = "pad"
    UNDO = "undo"
    # Her volume a step up or down (sound/volume.STEP_DB), in every state.
    LOUDER = "louder"
    QUIETER = "quieter"
    # How the seconds of a hold are counted ([speech] counts), between sets.
    COUNT_TICKS = "count_ticks"
    COUNT_WORDS = "count_words"
    # Only over the control socket.
    SAY = "say"
    STATUS = "status"
    VOLUME = "volume"


class Mode(StrEnum):
    """The coach's mode, which decides what it listens for: between sets, in a set, or the answer to a question it
    has just asked."""

    IDLE = "idle"
    SESSION = "session"
    QUESTION = "question"


class Slot(StrEnum):
    EXERCISE = "exercise"
    MINUTES = "minutes"
    TEXT = "text"
    # A volume request as `ctl volume` takes it: "+3", "-3", "-12dB" (sound/volume.py).
    LEVEL = "level"


@dataclass(frozen=True)
class Spec:
    """What an intent carries, and whether a phrase may say it (a pack may name it) or only the socket."""

    slots: frozenset[Slot] = frozenset()
    spoken: bool = True


VOCABULARY: dict[Name, Spec] = {
    **{name: Spec() for name in (Name.PAUSE, Name.RESUME, Name.STOP, Name.NEXT, Name.REPEAT)},
    **{name: Spec() for name in (Name.HOW_MANY_LEFT, Name.CANT, Name.START_NEXT, Name.HELP, Name.PROGRESS)},
    Name.YES: Spec(),
    Name.NO: Spec(),
    Name.START: Spec(frozenset({Slot.EXERCISE})),
    Name.SNOOZE: Spec(frozenset({Slot.MINUTES})),
    Name.SAY: Spec(frozenset({Slot.TEXT}), spoken=False),
    Name.STATUS: Spec(spoken=False),
    Name.VOLUME: Spec(frozenset({Slot.LEVEL}), spoken=False),
    **{name: Spec() for name in (Name.LEAK, Name.PAD, Name.UNDO, Name.LOUDER, Name.QUIETER)},
    **{name: Spec() for name in (Name.COUNT_TICKS, Name.COUNT_WORDS)},
}
# The session engine's reactions: what the coach does in a set.
SESSION = frozenset({Name.PAUSE, Name.RESUME, Name.STOP, Name.NEXT, Name.REPEAT, Name.HOW_MANY_LEFT, Name.CANT})
# What the conversation between sets answers.
CONVERSATION = frozenset({Name.PROGRESS, Name.YES, Name.NO, Name.SNOOZE, Name.LEAK, Name.PAD, Name.UNDO})
# A snooze longer than half a day is not a snooze.
MAX_SNOOZE_MIN = 720


@dataclass(frozen=True)
class Intent:
    """What someone asked for, from any channel: a declared name and its slots."""

    name: Name
    exercise: str | None = None
    text: str | None = None
    minutes: int | None = None
    level: str | None = None

    def __post_init__(self) -> None:
        # A plain string is taken, and checked: Intent("paus") is a typo, found here.
        object.__setattr__(self, "name", Name(self.name))
