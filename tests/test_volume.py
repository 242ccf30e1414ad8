"""Her volume: `ctl volume`'s requests, the levels kept in the state directory, and the daemon's day and night level
(daemon/loudness.py) with a clock and a mixer of the test's own. The real daemon's is in test_daemon_volume.py."""

from __future__ import annotations

import logging
import stat
from datetime import datetime, time
from pathlib import Path

import pytest

from voicecoach.config import AudioSettings
from voicecoach.daemon.loudness import Loudness
from voicecoach.sound import volume
from voicecoach.sound.volume import Levels, Request, VolumeError, parse_request
from voicecoach.training.reminders import ReminderSettings

NIGHT = ReminderSettings(quiet=(time(22, 0), time(7, 0)))


@pytest.mark.parametrize(
    ("text", "request_"),
    [
        (None, Request()),
        ("+3", Request(change_db=3.0)),
        ("-3", Request(change_db=-3.0)),
        ("+1.5", Request(change_db=1.5)),
        ("-12dB", Request(level_db=-12.0)),
        ("-12 db", Request(level_db=-12.0)),
        ("0", Request(level_db=0.0)),
        ("-30dB", Request(level_db=-30.0)),
    ],
)
def test_a_signed_number_is_a_change_and_one_in_db_or_unsigned_a_level(text: str | None, request_: Request) -> None:
    assert parse_request(text) == request_


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("loud", "volume 'loud' is neither a change nor a level"),
        ("+3dB+", "neither a change nor a level"),
        ("6", "a volume of 6 dB is out of range; use -30 to 0 dB"),
        ("-31dB", "a volume of -31 dB is out of range"),
    ],
)
def test_a_request_that_is_no_volume_says_what_is_allowed(text: str, error: str) -> None:
    with pytest.raises(VolumeError, match=error):
        parse_request(text)


def test_a_change_stops_at_the_loudest_and_the_quietest() -> None:
    assert Request(change_db=3.0).apply(-6.0) == -3.0
    assert Request(change_db=3.0).apply(-1.0) == 0.0
    assert Request(change_db=-3.0).apply(-29.0) == -30.0
    assert Request(level_db=-12.0).apply(0.0) == -12.0
    assert Request().apply(-9.0) == -9.0


def test_the_gain_is_the_configured_volume_brought_down() -> None:
    assert volume.gain(0.8, 0.0) == 0.8
    assert volume.gain(1.0, -6.0) == pytest.approx(0.501, abs=0.001)
    assert volume.gain(0.0, -6.0) == 0.0


def test_the_levels_are_kept_for_her_only_and_read_back(tmp_path: Path) -> None:
    assert volume.load(tmp_path) == Levels(0.0, None)
    volume.save(tmp_path, Levels(-6.0, -15.0))
    assert volume.load(tmp_path) == Levels(-6.0, -15.0)
    assert stat.S_IMODE((tmp_path / volume.FILE_NAME).stat().st_mode) == 0o600
    volume.save(tmp_path, Levels(-3.0, None))
    assert volume.load(tmp_path) == Levels(-3.0, None)
    assert [p.name for p in tmp_path.iterdir()] == [volume.FILE_NAME]


@pytest.mark.parametrize(
    "content",
    ["", "{", '{"day_db": "loud", "night_db": null}', '{"day_db": -6}', '{"day_db": 12, "night_db": null}', "[1]"],
)
def test_a_damaged_file_gives_the_default_levels_and_says_so(
    tmp_path: Path, content: str, caplog: pytest.LogCaptureFixture
) -> None:
    (tmp_path / volume.FILE_NAME).write_text(content)
    with caplog.at_level(logging.WARNING):
        assert volume.load(tmp_path) == Levels()
    assert "volume kept in" in caplog.text


class Clock:
    def __init__(self, hour: int) -> None:
        self.now = datetime(2026, 12, 1, hour, 0)

    def __call__(self) -> datetime:
        return self.now


def loudness(state: Path, clock: Clock, gains: list[float], audio: AudioSettings | None = None) -> Loudness:
    return Loudness(state, audio or AudioSettings(volume=0.5, night_volume_db=-9.0), NIGHT, gains.append, clock)


def test_at_night_the_night_level_is_in_effect_and_a_change_keeps_to_it(tmp_path: Path) -> None:
    gains: list[float] = []
    clock = Clock(23)
    night = loudness(tmp_path, clock, gains)
    assert (night.night, night.level_db) == (True, -9.0)
    assert night.gain == pytest.approx(0.5 * 10 ** (-9 / 20))
    assert night.change(parse_request("-3")) == "night volume -12 dB"
    assert gains == [pytest.approx(0.5 * 10 ** (-12 / 20))]
    # The day's level is untouched, and both outlive a restart.
    clock.now = datetime(2026, 12, 2, 8, 0)
    day = loudness(tmp_path, clock, gains)
    assert (day.night, day.level_db) == (False, 0.0)
    assert day.change(parse_request("-6")) == "volume -6 dB"
    assert volume.load(tmp_path) == Levels(-6.0, -12.0)


def test_the_level_follows_the_clock_only_when_nothing_is_said(tmp_path: Path) -> None:
    gains: list[float] = []
    clock = Clock(21)
    coach = loudness(tmp_path, clock, gains)
    assert coach.night is False
    clock.now = datetime(2026, 12, 1, 22, 30)
    coach.follow_the_clock(quiet=False)
    assert (coach.night, gains) == (False, [])
    coach.follow_the_clock(quiet=True)
    assert coach.night is True
    assert gains == [pytest.approx(0.5 * 10 ** (-9 / 20))]
    clock.now = datetime(2026, 12, 2, 7, 0)
    coach.follow_the_clock(quiet=True)
    assert coach.night is False
    assert gains[-1] == 0.5


def test_a_new_configuration_takes_effect_at_once(tmp_path: Path) -> None:
    gains: list[float] = []
    coach = loudness(tmp_path, Clock(23), gains)
    coach.configure(AudioSettings(volume=1.0, night_volume_db=-15.0), NIGHT)
    assert coach.level_db == -15.0
    assert gains == [pytest.approx(10 ** (-15 / 20))]


def test_a_level_that_cannot_be_kept_still_applies_and_says_so(tmp_path: Path) -> None:
    gains: list[float] = []
    missing = tmp_path / "gone"
    coach = loudness(missing, Clock(12), gains)
    message = coach.change(parse_request("-3"))
    assert message.startswith(f"volume -3 dB; it cannot be kept in {missing}")
    assert message.endswith("so it lasts until a restart")
    assert coach.level_db == -3.0 and len(gains) == 1
