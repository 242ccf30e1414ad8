"""Language packs: what the coach says and which commands it understands, loaded from TOML data."""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from voicecoach.engine.programme import BOUNDS, EXERCISES, Exercise
from voicecoach.errors import UserError
from voicecoach.intents import MAX_SNOOZE_MIN, VOCABULARY, Mode, Name, Slot

LANGUAGES = ("sv", "en")
CUE_KEYS = (
    "rep",
    "release_slow",
    "release_quick",
    "rest",
    "done",
    "paused",
    "restart_rep",
    "continue_rest",
    "stopped",
    "left",
    "second",
    "seconds",
    "none_left",
    "cant",
    "skip",
    "ready",
    "audio_back",
    "help",
    "failed",
    "restarting",
    "volume",
    "volume_max",
    "volume_min",
    "count_ticks",
    "count_words",
)
STATUS_KEYS = ("listening", "paused", "session", "no_model")
EXERCISE_KEYS = ("name", "short", "squeeze", "intro")
# idle; in a set; and, after a set, waiting for the answer ("ja" or "nej") to a question the coach asked.
STATES = tuple(Mode)


class PackError(UserError, ValueError):
    """A language pack that is missing something or names something unknown."""


@dataclass(frozen=True)
class Command:
    """One spoken or typed phrase, the intent it means and the states it is valid in."""

    phrase: str
    intent: Name
    states: tuple[str, ...]
    # The intent's slots, where it has one: "starta styrka" is intent "start" with exercise "strength";
    # "påminn mig om trettio minuter" is intent "snooze" with minutes 30.
    exercise: str | None = None
    minutes: int | None = None


@dataclass(frozen=True)
class Pack:
    """A loaded language pack."""

    code: str
    name: str
    voice: str
    numbers: dict[int, str]
    ordinals: dict[int, str]
    time_left: dict[int, str]
    cues: dict[str, str]
    exercises: dict[str, dict[str, str]]
    commands: tuple[Command, ...]
    status: dict[str, str]
    # [speech] counts = "ticks": the seconds of a hold are ticks, not spoken numbers (engine/timeline.py).
    ticks: bool = False

    def number(self, n: int) -> str:
        """The counting word for n, or its digits where the pack has no word (espeak-ng reads digits)."""
        return self.numbers.get(n, str(n))

    def rep(self, n: int, total: int) -> str:
        """Which repetition this is, e.g. "Femte av tio"."""
        text = self.cues["rep"].format(ordinal=self.ordinals[n], number=self.number(n), total=self.number(total))
        return text[:1].upper() + text[1:]

    def intro(self, exercise: Exercise) -> str:
        """The short spoken introduction to an exercise with this run's numbers."""
        template = self.exercises[exercise.key]["intro"]
        return template.format(hold=self.duration(exercise.hold_s), rest=self.duration(exercise.rest_s))

    def duration(self, seconds: int) -> str:
        """A number of seconds as said in a sentence: "fem sekunder", "en sekund"."""
        if seconds == 1:
            return self.cues["second"]
        return self.cues["seconds"].format(number=self.number(seconds))

    def squeeze(self, exercise: Exercise) -> str:
        return self.exercises[exercise.key]["squeeze"]

    def exercise_name(self, exercise: Exercise) -> str:
        return self.exercises[exercise.key]["name"]


def _int_keyed(table: object, section: str, source: str) -> dict[int, str]:
    if not isinstance(table, dict):
        raise PackError(f"{source}: [{section}] must be a table")
    try:
        return {int(k): str(v) for k, v in table.items()}
    except ValueError as exc:
        raise PackError(f"{source}: every key in [{section}] must be a whole number") from exc


def _commands(raw: object, source: str, text: str) -> tuple[Command, ...]:
    if not isinstance(raw, list):
        raise PackError(f"{source}: [[commands]] must be a list of tables")
    lines = [i for i, line in enumerate(text.splitlines(), 1) if re.match(r"\s*intent\s*=", line)]
    commands: list[Command] = []
    for index, entry in enumerate(raw):
        where = f"{source}, line {lines[index]}" if index < len(lines) else source
        intent = entry.get("intent")
        phrases = entry.get("phrases")
        states = tuple(entry.get("states", ()))
        if not isinstance(intent, str) or not isinstance(phrases, list) or not phrases:
            raise PackError(f"{where}: each [[commands]] entry needs an intent and a list of phrases")
        spoken = [str(name) for name, spec in VOCABULARY.items() if spec.spoken]
        if intent not in spoken:
            raise PackError(f"{where}: unknown intent {intent!r}; use one of {', '.join(spoken)}")
        name = Name(intent)
        unknown = [s for s in states if s not in STATES]
        if unknown or not states:
            raise PackError(f"{where}: command {intent!r} has states {list(states)}; use some of {list(STATES)}")
        exercise = entry.get(Slot.EXERCISE)
        keys = [e.key for e in EXERCISES]
        if exercise is not None and exercise not in keys:
            raise PackError(f"{where}: command {intent!r} names exercise {exercise!r}; use one of {keys}")
        minutes = entry.get(Slot.MINUTES)
        if minutes is not None and (type(minutes) is not int or not 0 < minutes <= MAX_SNOOZE_MIN):
            raise PackError(
                f"{where}: command {intent!r} has minutes = {minutes!r}; use a whole number, 1 to {MAX_SNOOZE_MIN}"
            )
        given = {slot for slot, value in ((Slot.EXERCISE, exercise), (Slot.MINUTES, minutes)) if value is not None}
        if given != VOCABULARY[name].slots:
            wanted = ", ".join(sorted(VOCABULARY[name].slots)) or "none"
            raise PackError(f"{where}: command {intent!r} takes {wanted} (it has {', '.join(sorted(given)) or 'none'})")
        commands.extend(
            Command(phrase=p.strip().lower(), intent=name, states=states, exercise=exercise, minutes=minutes)
            for p in phrases
        )
    return tuple(commands)


def parse_pack(pack: PackSource) -> Pack:
    """Validate a pack's TOML; errors name the source and the missing key."""
    data, source = pack.data, pack.name
    for key in ("code", "name", "voice"):
        if not isinstance(data.get(key), str):
            raise PackError(f"{source}: missing {key!r}")
    numbers = _int_keyed(data.get("numbers"), "numbers", source)
    ordinals = _int_keyed(data.get("ordinals"), "ordinals", source)
    low, high = BOUNDS.reps
    missing = [n for n in range(low, high + 1) if n not in ordinals or n not in numbers]
    if missing:
        raise PackError(
            f"{source}: [numbers] and [ordinals] need every value from {low} to {high}; {missing[0]} is missing"
        )
    cues = data.get("cues", {})
    for key in CUE_KEYS:
        if not isinstance(cues.get(key), str):
            raise PackError(f"{source}: [cues] is missing {key!r}")
    status = data.get("status", {})
    for key in STATUS_KEYS:
        if not isinstance(status.get(key), str):
            raise PackError(f"{source}: [status] is missing {key!r}")
    exercises = data.get("exercises", {})
    for exercise in EXERCISES:
        entry = exercises.get(exercise.key, {})
        for key in EXERCISE_KEYS:
            if not isinstance(entry.get(key), str):
                raise PackError(f"{source}: [exercises.{exercise.key}] is missing {key!r}")
    return Pack(
        code=data["code"],
        name=data["name"],
        voice=data["voice"],
        numbers=numbers,
        ordinals=ordinals,
        time_left=_int_keyed(data.get("time_left", {}), "time_left", source),
        cues={k: str(v) for k, v in cues.items()},
        exercises={k: dict(v) for k, v in exercises.items()},
        commands=_commands(data.get("commands", []), source, pack.text),
        status={k: str(v) for k, v in status.items()},
    )


def load_commands(path: Path) -> tuple[Command, ...]:
    """Only the [[commands]] of a pack file: a command pack for a language the coach does not narrate."""
    source = read_pack(path=path, what="command pack")
    commands = _commands(source.data.get("commands", []), source.name, source.text)
    if not commands:
        raise PackError(f"{path} has no [[commands]]: add at least one phrase with its intent and states")
    return commands


@dataclass(frozen=True)
class PackSource:
    """A pack's TOML as read: its tables, its name for messages, and its text (for line numbers)."""

    data: dict[str, Any]  # as tomllib gives it; parse_pack checks each part
    name: str
    text: str


def read_pack(lang: str = "sv", path: Path | None = None, what: str = "language pack") -> PackSource:
    """A pack's whole TOML: built-in by language code, or the file at path."""
    if path is None:
        if lang not in LANGUAGES:
            raise PackError(f"unknown language {lang!r}: choose one of {', '.join(LANGUAGES)}")
        name = f"{lang}.toml"
        text = resources.files("voicecoach.packs").joinpath(name).read_text(encoding="utf-8")
    else:
        name = str(path)
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise PackError(f"cannot read {what} {path}: {exc.strerror}") from exc
        except UnicodeDecodeError:
            raise PackError(f"{path} is not UTF-8 text; save it as UTF-8") from None
    try:
        return PackSource(tomllib.loads(text), name, text)
    except tomllib.TOMLDecodeError as exc:
        raise PackError(f"{name} is not valid TOML: {exc}") from exc


def texts(source: PackSource, table: str, keys: tuple[str, ...]) -> dict[str, str]:
    """The texts of one of a pack's tables ([progress], [check]); each of keys must be there."""
    found = source.data.get(table, {})
    if not isinstance(found, dict):
        raise PackError(f"{source.name}: [{table}] must be a table")
    missing = [key for key in keys if not isinstance(found.get(key), str)]
    if missing:
        raise PackError(f"{source.name}: [{table}] is missing {missing[0]!r}")
    return {key: found[key] for key in keys}


def load_pack(lang: str = "sv", path: Path | None = None) -> Pack:
    """Load a built-in pack by language code, or a pack file from path."""
    return parse_pack(read_pack(lang, path))


def typed_intent(text: str, packs: Iterable[Pack], state: str) -> Name | None:
    """The intent a typed line means in this state, or None. Every pack is tried: "paus" and "pause" both work."""
    wanted = " ".join(text.strip().lower().replace(",", " ").replace(".", " ").split())
    for pack in packs:
        for command in pack.commands:
            if command.phrase == wanted and state in command.states:
                return command.intent
    return None
