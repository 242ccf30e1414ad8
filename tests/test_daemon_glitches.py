"""The daemon's devices log audio glitches counted in the callbacks: each one once, a reopened stream counted afresh."""

import logging
from types import SimpleNamespace

import pytest

from voicecoach.daemon.devices import Devices


def devices_with(underruns: int, overflows: int) -> Devices:
    devices = Devices.__new__(Devices)
    devices.speaker = SimpleNamespace(stream=SimpleNamespace(underruns=underruns))  # type: ignore[assignment]
    devices.microphone = SimpleNamespace(stream=SimpleNamespace(overflows=overflows))  # type: ignore[assignment]
    return devices


def test_each_underrun_and_overflow_is_logged_once(caplog: pytest.LogCaptureFixture) -> None:
    seen: dict[str, int] = {}
    with caplog.at_level(logging.WARNING, logger="voicecoach"):
        devices_with(2, 0).log_glitches(seen)
        devices_with(2, 0).log_glitches(seen)
        devices_with(3, 1).log_glitches(seen)
    assert [r.getMessage() for r in caplog.records] == [
        "2 speaker underruns (later words came late)",
        "1 speaker underruns (later words came late)",
        "1 microphone overflows (audio was lost)",
    ]


def test_a_reopened_stream_counts_from_zero(caplog: pytest.LogCaptureFixture) -> None:
    seen: dict[str, int] = {}
    with caplog.at_level(logging.WARNING, logger="voicecoach"):
        devices_with(5, 0).log_glitches(seen)
        devices_with(1, 0).log_glitches(seen)
    assert caplog.records[-1].getMessage() == "1 speaker underruns (later words came late)"


def test_devices_that_are_down_log_nothing(caplog: pytest.LogCaptureFixture) -> None:
    devices = Devices.__new__(Devices)
    devices.speaker = SimpleNamespace(stream=None)  # type: ignore[assignment]
    devices.microphone = SimpleNamespace(stream=None)  # type: ignore[assignment]
    with caplog.at_level(logging.WARNING, logger="voicecoach"):
        devices.log_glitches({})
    assert caplog.records == []
