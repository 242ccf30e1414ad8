"""Shared fixtures. Fast tests use fake clip lengths; tests marked speech/audio/model use the real parts."""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path

import jack_lock
import pytest
from live_session import LiveSession
from pulse import PulseServer, missing_tools, reinitialise_portaudio

from voicecoach.engine.language import Pack, load_pack


def fake_duration(text: str) -> float:
    """A stand-in for a clip's length: 60 ms a character, like espeak-ng at a calm rate."""
    return 0.06 * len(text)


def one_error_line(capsys: pytest.CaptureFixture[str]) -> str:
    """The one line a user error prints on stderr (and nothing else there)."""
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("voicecoach: error: ")
    return lines[0]


def require_tools(missing: list[str], who: str) -> None:
    """Skip where tools are missing, unless VOICECOACH_REQUIRE_AUDIO=1 (scripts/test, CI): there fail."""
    if missing:
        reason = f"{who} need {', '.join(missing)}: run 'scripts/install --test'"
        if os.environ.get("VOICECOACH_REQUIRE_AUDIO") == "1":
            pytest.fail(reason)
        pytest.skip(reason)


@pytest.fixture(scope="session")
def sv() -> Pack:
    return load_pack("sv")


@pytest.fixture(scope="session")
def en() -> Pack:
    return load_pack("en")


@pytest.fixture
def state_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty state directory for the CLI (VOICECOACH_STATE_DIR)."""
    path = tmp_path / "state"
    monkeypatch.setenv("VOICECOACH_STATE_DIR", str(path))
    return path


@pytest.fixture(scope="session")
def pulse(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PulseServer]:
    """A private PulseAudio server (speaker `spk`, microphone `mic`) that this process and its children use.

    Skips where PulseAudio is missing, unless VOICECOACH_REQUIRE_AUDIO=1 (scripts/test, CI): there it fails.
    """
    require_tools(missing_tools(), "the audio tests")
    # A PortAudio start that waits forever on JACK's lock (tests/jack_lock.py) would hang this process here and at
    # the end, where a kill test may have left the lock held.
    warn_released(jack_lock.release())
    with PulseServer(tmp_path_factory.mktemp("pulse")) as server, pytest.MonkeyPatch.context() as patch:
        for name, value in server.env.items():
            patch.setenv(name, value)
        reinitialise_portaudio()
        yield server
        warn_released(jack_lock.release(server.environ()))
    reinitialise_portaudio()


def warn_released(done: str | None) -> None:
    if done is not None:
        warnings.warn(done, stacklevel=2)


@pytest.fixture
def live(tmp_path: Path) -> Iterator[Callable[..., LiveSession]]:
    started: list[LiveSession] = []

    def start(args: list[str], env: dict[str, str]) -> LiveSession:
        started.append(LiveSession(args, env, tmp_path))
        return started[-1]

    yield start
    for session in started:
        session.close()
