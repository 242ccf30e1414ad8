"""The daemon vouches to systemd's watchdog for its control channel, its audio and its listener: when one of them
fails, the pings stop (systemd then restarts the service), it is logged once, and the coach says so first.

The parts here are stand-ins that fail on demand; the real daemon under real faults is tests/test_daemon_hostile.py
and tests/test_daemon_descriptors.py.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from voicecoach.assembly import Assembly
from voicecoach.daemon.notify import Notifier, Watchdog
from voicecoach.daemon.run import Daemon
from voicecoach.engine.language import load_pack
from voicecoach.intents import Intent

SV = load_pack("sv")


class FakeCoach:
    """Idle; records what it is asked to do. on_mixer_event fails when told to."""

    session = None
    state = "idle"

    def __init__(self) -> None:
        self.handled: list[Intent] = []
        self.broken = False

    def handle(self, intent: Intent) -> bool:
        self.handled.append(intent)
        return True

    def on_mixer_event(self, _event: object) -> None:
        if self.broken:
            raise RuntimeError("the mixer's events make no sense")


class BrokenVoice:
    def __init__(self) -> None:
        self.fed = 0

    def hear(self, _block: np.ndarray, _state: str, _adc_time: float | None = None) -> list[Intent]:
        self.fed += 1
        raise ValueError("the recognizer fell over")


class FakeConversation:
    def state(self, coach_state: str, _now: float) -> str:
        return coach_state


@pytest.fixture
def systemd(tmp_path: Path) -> Iterator[socket.socket]:
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(str(tmp_path / "notify"))
        sock.setblocking(False)
        yield sock


def pings(sock: socket.socket) -> list[bytes]:
    got = []
    while True:
        try:
            got.append(sock.recv(4096))
        except BlockingIOError:
            return [m for m in got if m == b"WATCHDOG=1"]


@pytest.fixture
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    loop = asyncio.new_event_loop()
    yield loop
    loop.close()


def daemon_for(systemd: socket.socket, loop: asyncio.AbstractEventLoop) -> tuple[Daemon, FakeCoach]:
    notifier = Notifier(
        {"NOTIFY_SOCKET": systemd.getsockname(), "WATCHDOG_USEC": "4000000", "WATCHDOG_PID": str(os.getpid())}
    )
    daemon = Daemon.__new__(Daemon)
    daemon.notifier = notifier
    daemon.pack = SV
    daemon.watchdog = Watchdog(notifier, daemon._on_part_failed)
    daemon.parts = Assembly(loop, 16000, 1.0, lambda _mixer: FakeCoach(), lambda _mixer: BrokenVoice())  # type: ignore[arg-type,return-value]
    daemon.coach, daemon.voice = daemon.parts.coach, daemon.parts.voice
    daemon.conversation = FakeConversation()  # type: ignore[assignment]
    daemon._status_text = ""
    return daemon, daemon.coach  # type: ignore[return-value]


def restarting(coach: FakeCoach) -> list[Intent]:
    return [i for i in coach.handled if i == Intent("say", text=SV.cues["restarting"])]


def test_a_listener_that_fails_stops_the_pings_and_is_said_and_logged_once(
    systemd: socket.socket, loop: asyncio.AbstractEventLoop, caplog: pytest.LogCaptureFixture
) -> None:
    daemon, coach = daemon_for(systemd, loop)
    assert daemon.watchdog.ping()
    block = np.zeros(1600, dtype=np.float32)
    with caplog.at_level(logging.ERROR, logger="voicecoach"):
        daemon._on_mic(block, None)
        daemon._on_mic(block, None)
    assert daemon.voice.fed == 1, "a failed listener is not fed again"  # type: ignore[union-attr]
    assert not daemon.watchdog.ping()
    assert pings(systemd) == [b"WATCHDOG=1"]
    assert len(restarting(coach)) == 1
    assert [r.getMessage() for r in caplog.records] == [
        "the listener failed (ValueError: the recognizer fell over); systemd restarts the service"
    ]


def test_audio_events_that_cannot_be_followed_stop_the_pings(
    systemd: socket.socket, loop: asyncio.AbstractEventLoop
) -> None:
    daemon, coach = daemon_for(systemd, loop)
    coach.broken = True
    daemon._on_mixer_event(object())
    assert daemon.watchdog.failed == {"audio": "RuntimeError: the mixer's events make no sense"}
    assert not daemon.watchdog.ping()
    assert pings(systemd) == []
    assert len(restarting(coach)) == 1


def test_a_control_channel_whose_server_ended_stops_the_pings(
    systemd: socket.socket, loop: asyncio.AbstractEventLoop
) -> None:
    daemon, coach = daemon_for(systemd, loop)

    async def serve() -> None:
        raise OSError(24, "Too many open files")

    async def scenario() -> None:
        task = daemon._task("control", serve())
        await asyncio.gather(task, return_exceptions=True)
        # Done callbacks run on the loop's next turn.
        await asyncio.sleep(0)

    asyncio.run(scenario())
    assert daemon.watchdog.failed == {"control": "OSError: [Errno 24] Too many open files"}
    assert not daemon.watchdog.ping()
    assert len(restarting(coach)) == 1
