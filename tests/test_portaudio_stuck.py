"""A PortAudio start that waits forever on the lock a killed program left (tests/jack_lock.py): the CLI and the daemon
say so in one line and exit, instead of hanging before a word with nothing in the log, and the next start works.

The lock is made as a user's machine gets it: a real PortAudio start, killed (by gdb) while it holds the lock.
Each of these tests waits out the coach's 30 s start timeout."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import jack_lock
import pytest
from coach_command import voicecoach_command
from conftest import require_tools
from daemon_harness import Daemon
from pulse import PulseServer

from voicecoach.sound.portaudio import START_TIMEOUT_S, jack_database

pytestmark = pytest.mark.audio


@pytest.fixture
def held_lock(pulse: PulseServer) -> Iterator[Path]:
    require_tools([] if shutil.which("gdb") else ["gdb"], "the PortAudio lock tests")
    jack_lock.hold(pulse.environ())
    yield jack_database()
    # Where a test failed before the coach removed it, for the tests after this one.
    jack_lock.release(pulse.environ())


def one_error(stderr: str, database: Path) -> None:
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert "Traceback" not in stderr, stderr
    assert [line for line in lines if line.startswith("voicecoach: error: ")] == lines[-1:], stderr
    assert lines[-1].startswith(f"voicecoach: error: PortAudio did not start within {START_TIMEOUT_S:.0f} s"), stderr
    assert f"left JACK's database {database} locked, and it is removed now" in lines[-1], stderr


def devices(pulse: PulseServer) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*voicecoach_command(), "devices"],
        env=pulse.environ(),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=START_TIMEOUT_S + 60,
    )


def test_the_cli_says_portaudio_did_not_start_removes_the_lock_and_the_next_start_works(
    held_lock: Path, pulse: PulseServer
) -> None:
    done = devices(pulse)
    assert done.returncode == 1, done
    assert done.stdout == ""
    one_error(done.stderr, held_lock)
    assert jack_lock.portaudio_starts(pulse.environ())


def test_the_daemon_exits_with_the_same_line_before_ready_and_the_next_start_works(
    held_lock: Path, pulse: PulseServer, tmp_path: Path
) -> None:
    """Under systemd it is restarted (and RemoveIPC=yes in voicecoach.service would remove the lock too)."""
    with Daemon(tmp_path, ["--model", str(tmp_path / "no-model")], pulse.environ()) as d:
        assert d.process is not None
        assert d.process.wait(START_TIMEOUT_S + 60) == 1
        assert d.notifications is not None
        assert not any(m.fields.get("READY") == "1" for m in d.notifications.snapshot()), d.notifications.snapshot()
    one_error(d.log_path.read_text(), held_lock)
    assert jack_lock.portaudio_starts(pulse.environ())


def test_while_a_jack_server_runs_the_lock_is_left_alone(held_lock: Path, pulse: PulseServer, tmp_path: Path) -> None:
    """Its database is then the server's: the line says to stop it first. A process named jackd stands in for it."""
    jackd = tmp_path / "jackd"
    shutil.copy(shutil.which("sleep") or "/bin/sleep", jackd)
    with subprocess.Popen([str(jackd), "300"]) as server:
        try:
            done = devices(pulse)
        finally:
            server.kill()
    assert done.returncode == 1, done
    assert done.stderr.startswith(
        f"voicecoach: error: PortAudio did not start within {START_TIMEOUT_S:.0f} s, with "
    ), done
    assert "stop the JACK server, remove that directory" in done.stderr, done.stderr
    assert held_lock.exists()
    assert not jack_lock.portaudio_starts(pulse.environ(), timeout_s=5.0)
