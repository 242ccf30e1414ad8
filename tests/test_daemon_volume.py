"""The real daemon's volume: `ctl volume` makes what it says quieter by as many dB, measured on the virtual speaker,
the level outlives a restart, and during the quiet hours the night's level is in effect."""

from __future__ import annotations

import math
import time
from datetime import timedelta
from pathlib import Path

import pytest
from daemon_harness import Daemon
from pulse import RATE, PulseServer
from speech_corpus import active_rms
from test_daemon import WATCHDOG_S, sample_at, wait_for_silence

from voicecoach.sound import volume
from voicecoach.training.clock import local_now

TEXT = "Ett, två, tre, fyra, fem."


def said_level_db(pulse: PulseServer, d: Daemon) -> float:
    """The level of TEXT as the daemon says it, on the speaker's monitor (dB full scale, its words only), once the
    level said back after a change has been said."""
    d.wait_status(lambda s: s["speaking_s"] == 0, what="quiet")
    recording = pulse.record()
    try:
        recording.wait_for(RATE // 10)
        asked = time.monotonic()
        d.ctl("say", TEXT)
        spans = wait_for_silence(recording, asked, 1.0)
        said = recording.samples()[sample_at(recording, asked) :]
    finally:
        recording.stop()
    words = said[spans[0][0] : spans[-1][1]]
    return 20 * math.log10(active_rms(words))


@pytest.mark.audio
def test_ctl_volume_brings_the_voice_down_by_its_db_and_the_level_is_kept(pulse: PulseServer, tmp_path: Path) -> None:
    # No quiet hours at first: the day's level, whatever the hour the test runs at.
    day = tmp_path / "day.toml"
    day.write_text('[reminders]\nquiet_hours = ""\n')
    args = ["--model", str(tmp_path / "no-model")]
    with Daemon(tmp_path / "daemon", [*args, "--config", str(day)], pulse.environ(), WATCHDOG_S) as d:
        d.wait_ready()
        d.wait_rendered()
        loud = said_level_db(pulse, d)
        assert d.ctl("volume", "-12dB").strip() == "volume -12 dB"
        quiet = said_level_db(pulse, d)
        assert d.ctl("volume", "+3").strip() == "volume -9 dB"
        assert d.status()["volume_db"] == -9.0
    # espeak-ng says the same words the same way each time: the difference is the volume's.
    assert loud - quiet == pytest.approx(12.0, abs=0.5), (loud, quiet)
    assert volume.load(d.state_dir) == volume.Levels(-9.0, None)

    # Started again, by day it keeps her level; inside the quiet hours the night's is in effect.
    now = local_now()
    around_now = f"{now - timedelta(hours=1):%H:%M}-{now + timedelta(hours=1):%H:%M}"
    settings = tmp_path / "night.toml"
    settings.write_text(f'[audio]\nnight_volume_db = -18\n[reminders]\nquiet_hours = "{around_now}"\n')
    night_args = [*args, "--config", str(settings)]
    with Daemon(tmp_path / "daemon", night_args, pulse.environ(), WATCHDOG_S) as d:
        d.wait_ready()
        status = d.status()
        assert (status["volume_db"], status["night"]) == (-18.0, True)
        assert "volume: -18 dB, the night level" in d.ctl("status")
        assert d.ctl("volume", "-3").strip() == "night volume -21 dB"
    assert volume.load(d.state_dir) == volume.Levels(-9.0, -21.0)
