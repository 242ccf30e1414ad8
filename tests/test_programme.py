import re
from pathlib import Path

import pytest

from voicecoach.engine import programme
from voicecoach.engine.programme import (
    BOUNDS,
    DOSAGE,
    ENDURANCE,
    IDENTIFICATION,
    SPEED,
    STRENGTH,
    ProgrammeError,
    Release,
    find_exercise,
    with_overrides,
)


def test_identification_matches_the_guide():
    assert IDENTIFICATION.hold_range_s == (2, 3)
    assert IDENTIFICATION.hold_s in IDENTIFICATION.hold_range_s
    assert IDENTIFICATION.reps == 10
    assert IDENTIFICATION.release is Release.SLOW


def test_strength_matches_the_guide():
    assert (STRENGTH.hold_s, STRENGTH.rest_s, STRENGTH.reps) == (5, 5, 10)
    assert STRENGTH.release is Release.SLOW


def test_speed_rests_as_long_as_it_holds():
    assert (SPEED.hold_s, SPEED.rest_s, SPEED.reps) == (3, 3, 10)
    assert SPEED.release is Release.QUICK


def test_endurance_starts_at_thirty_seconds_with_a_two_minute_goal():
    assert ENDURANCE.hold_s == 30
    assert ENDURANCE.goal_hold_s == 120
    assert ENDURANCE.reps == 2


def test_dosage_and_safety_advice():
    assert DOSAGE.maintenance_squeezes == (8, 12)
    assert DOSAGE.maintenance_times_per_week == (1, 2)
    assert DOSAGE.see_doctor_after_months == (3, 6)
    assert DOSAGE.learning_sessions_per_day_min > 1


def test_exercises_are_learned_in_order():
    assert [e.order for e in programme.EXERCISES] == [1, 2, 3, 4]


def test_each_source_number_is_written_once_in_the_programme():
    source = Path(programme.__file__).read_text(encoding="utf-8")
    code = "\n".join(line.split("#")[0] for line in source.splitlines() if not line.strip().startswith('"'))
    literals = re.findall(r"(?<![\w.])\d+(?![\w.])", code)
    # The guide says "10 in a row" (one fact, used by three exercises), 30 s, 8-12, 3-6 months once each;
    # "5 s" twice (the strength hold and the relaxation after it).
    expected = {"10": 1, "30": 1, "8": 1, "12": 1, "6": 1, "5": 2}
    for number, count in expected.items():
        assert literals.count(number) == count, f"{number} appears {literals.count(number)} times"


@pytest.mark.parametrize("name", ["strength", "styrka", "STYRKA", " styrka "])
def test_find_exercise_accepts_english_and_swedish_names(name):
    assert find_exercise(name) is STRENGTH


def test_find_exercise_accepts_the_swedish_endurance_name_with_a_ring():
    assert find_exercise("uthållighet") is ENDURANCE


def test_unknown_exercise_lists_the_choices():
    with pytest.raises(ProgrammeError, match="choose one of identification"):
        find_exercise("jogging")


def test_override_replaces_only_what_is_given():
    run = with_overrides(ENDURANCE, hold_s=45)
    assert (run.hold_s, run.rest_s, run.reps) == (45, ENDURANCE.rest_s, ENDURANCE.reps)


@pytest.mark.parametrize(
    ("field", "value"),
    [("hold_s", 0), ("hold_s", -5), ("hold_s", BOUNDS.hold_s[1] + 1), ("rest_s", 0), ("reps", 0), ("reps", 21)],
)
def test_override_outside_bounds_is_refused(field, value):
    with pytest.raises(ProgrammeError, match="out of range"):
        with_overrides(STRENGTH, **{field: value})
