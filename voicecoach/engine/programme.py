"""The training programme from the Swedish patient guide "Träning av bäckenbotten", as data.

Every number the guide gives appears exactly once in this file. Values the guide leaves open
(for example the rest after an identification squeeze) are marked as our choice.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from enum import Enum
from typing import Any

from voicecoach.errors import UserError


class Release(Enum):
    """How the squeeze ends: slowly (most exercises) or at once (speed)."""

    SLOW = "slow"
    QUICK = "quick"


@dataclass(frozen=True)
class Exercise:
    """One exercise of the programme with its default set."""

    key: str
    swedish_key: str
    order: int
    hold_s: int
    rest_s: int
    reps: int
    release: Release
    hold_range_s: tuple[int, int] | None = None
    goal_hold_s: int | None = None


# 1. Identifieringsknip: hold 2-3 s, release slowly, until 10 in a row.
_IDENTIFICATION_HOLD = (2, 3)
# 2. Styrkeknip: as hard as you can for 5 s, release slowly, relax 5 s, until 10 in a row.
_STRENGTH_HOLD = 5
_STRENGTH_REST = 5
_IN_A_ROW = 10
# 3. Snabbhetsknip: quickly and as hard as you can for 3 s, relax "for as long", 10 in a row.
_SPEED_HOLD = 3
# 4. Uthållighetsknip: half capacity, 30 s to begin with, goal 2 minutes, "a couple of times".
_ENDURANCE_START = 30
_ENDURANCE_GOAL = 2 * 60
_A_COUPLE = 2
# Our choice where the guide is silent: the rest between endurance holds.
_ENDURANCE_REST = 20

IDENTIFICATION = Exercise(
    key="identification",
    swedish_key="identifiering",
    order=1,
    hold_s=_IDENTIFICATION_HOLD[1],
    # Our choice: the guide gives no rest here; we use the strength rest.
    rest_s=_STRENGTH_REST,
    reps=_IN_A_ROW,
    release=Release.SLOW,
    hold_range_s=_IDENTIFICATION_HOLD,
)
STRENGTH = Exercise(
    key="strength",
    swedish_key="styrka",
    order=2,
    hold_s=_STRENGTH_HOLD,
    rest_s=_STRENGTH_REST,
    reps=_IN_A_ROW,
    release=Release.SLOW,
)
SPEED = Exercise(
    key="speed",
    swedish_key="snabbhet",
    order=3,
    hold_s=_SPEED_HOLD,
    rest_s=_SPEED_HOLD,
    reps=_IN_A_ROW,
    release=Release.QUICK,
)
ENDURANCE = Exercise(
    key="endurance",
    swedish_key="uthållighet",
    order=4,
    hold_s=_ENDURANCE_START,
    rest_s=_ENDURANCE_REST,
    reps=_A_COUPLE,
    release=Release.SLOW,
    goal_hold_s=_ENDURANCE_GOAL,
)

EXERCISES: tuple[Exercise, ...] = (IDENTIFICATION, STRENGTH, SPEED, ENDURANCE)


@dataclass(frozen=True)
class Dosage:
    """How often to train, from the guide's dosage and safety advice."""

    learning_sessions_per_day_min: int
    maintenance_squeezes: tuple[int, int]
    maintenance_times_per_week: tuple[int, int]
    see_doctor_after_months: tuple[int, int]


DOSAGE = Dosage(
    # "train more than once a day" at first
    learning_sessions_per_day_min=2,
    maintenance_squeezes=(8, 12),
    maintenance_times_per_week=(1, 2),
    see_doctor_after_months=(3, 6),
)


@dataclass(frozen=True)
class Bounds:
    """Sane limits for a run's overrides; outside them the run is refused."""

    hold_s: tuple[int, int] = (1, 180)
    rest_s: tuple[int, int] = (1, 300)
    # The packs name repetitions up to twentieth; the guide's own goal is ten in a row.
    reps: tuple[int, int] = (1, 20)


BOUNDS = Bounds()


class ProgrammeError(UserError, ValueError):
    """A user-supplied exercise name or override that the programme cannot accept."""

    exit_code = 2


def find_exercise(name: str) -> Exercise:
    """Look up an exercise by its English or Swedish key, case-insensitively."""
    wanted = name.strip().lower()
    for exercise in EXERCISES:
        if wanted in (exercise.key, exercise.swedish_key):
            return exercise
    names = ", ".join(f"{e.key} ({e.swedish_key})" for e in EXERCISES)
    raise ProgrammeError(f"unknown exercise {name!r}: choose one of {names}")


def with_overrides(
    exercise: Exercise, *, hold_s: int | None = None, rest_s: int | None = None, reps: int | None = None
) -> Exercise:
    """Return the exercise with a run's overrides applied, refusing values outside BOUNDS."""
    changes: dict[str, Any] = {}  # all int fields; replace() is typed per field, a dict of them cannot be
    for field, value, (low, high), unit in (
        ("hold_s", hold_s, BOUNDS.hold_s, "seconds"),
        ("rest_s", rest_s, BOUNDS.rest_s, "seconds"),
        ("reps", reps, BOUNDS.reps, "repetitions"),
    ):
        if value is None:
            continue
        if not low <= value <= high:
            label = field.removesuffix("_s")
            raise ProgrammeError(f"{label} of {value} is out of range: use {low} to {high} {unit}")
        changes[field] = value
    return replace(exercise, **changes)
