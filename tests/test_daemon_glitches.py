"""The daemon logs audio glitches counted in the callbacks: each one once, a reopened stream counted afresh."""

import logging
from types import SimpleNamespace

import pytest

from voicecoach.daemon.run import Daemon


def daemon_with(underruns: int, overflows: int) -> Daemon:
    daemon = Daemon.__new__(Daemon)
    daemon.speaker = SimpleNamespace(stream=SimpleNamespace(underruns=underruns))
    daemon.microphone = SimpleNamespace(stream=SimpleNamespace(overflows=overflows))
    return daemon


def test_each_underrun_and_overflow_is_logged_once(caplog: pytest.LogCaptureFixture) -> None:
    seen: dict[str, int] = {}
    with caplog.at_level(logging.WARNING, logger="voicecoach"):
        daemon_with(2, 0)._log_glitches(seen)
        daemon_with(2, 0)._log_glitches(seen)
        daemon_with(3, 1)._log_glitches(seen)
    assert [r.getMessage() for r in caplog.records] == [
        "2 speaker underruns (later words came late)",
        "1 speaker underruns (later words came late)",
        "1 microphone overflows (audio was lost)",
    ]


def test_a_reopened_stream_counts_from_zero(caplog: pytest.LogCaptureFixture) -> None:
    seen: dict[str, int] = {}
    with caplog.at_level(logging.WARNING, logger="voicecoach"):
        daemon_with(5, 0)._log_glitches(seen)
        daemon_with(1, 0)._log_glitches(seen)
    assert caplog.records[-1].getMessage() == "1 speaker underruns (later words came late)"


def test_devices_that_are_down_log_nothing(caplog: pytest.LogCaptureFixture) -> None:
    daemon = Daemon.__new__(Daemon)
    daemon.speaker = SimpleNamespace(stream=None)
    daemon.microphone = SimpleNamespace(stream=None)
    with caplog.at_level(logging.WARNING, logger="voicecoach"):
        daemon._log_glitches({})
    assert caplog.records == []
