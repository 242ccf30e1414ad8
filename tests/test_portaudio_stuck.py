"""A PortAudio start that waits forever on the lock a killed program left (tests/jack_lock.py): the CLI and the daemon
say so in one line and exit, instead of hanging before a word, with nothing in the log.

The lock is made as a user's machine gets it: a real PortAudio start, killed (by gdb) while it holds the lock.
Each of these tests waits out the coach's 30 s start timeout."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import jack_lock
import pytest
from conftest import require_tools
from daemon_harness import Daemon
from pulse import PulseServer, voicecoach_command

from voicecoach.sound.portaudio import START_TIMEOUT_S

pytestmark = pytest.mark.audio


@pytest.fixture(scope="module")
def held_lock(pulse: PulseServer) -> Iterator[Path]:
    require_tools([] if shutil.which("gdb") else ["gdb"], "the PortAudio lock tests")
    jack_lock.hold(pulse.environ())
    yield jack_lock.database()
    # Still held after both tests, and what the harness does about it works on a real held lock.
    assert jack_lock.release(pulse.environ()) is not None
    assert jack_lock.portaudio_starts(pulse.environ())


def one_error(stderr: str, database: Path) -> None:
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert "Traceback" not in stderr, stderr
    assert [line for line in lines if line.startswith("voicecoach: error: ")] == lines[-1:], stderr
    assert lines[-1].startswith(f"voicecoach: error: PortAudio did not start within {START_TIMEOUT_S:.0f} s"), stderr
    assert f"'rm -r {database}'" in lines[-1], stderr


def test_the_cli_says_portaudio_did_not_start_and_what_to_remove(held_lock: Path, pulse: PulseServer) -> None:
    done = subprocess.run(
        [*voicecoach_command(), "devices"],
        env=pulse.environ(),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=START_TIMEOUT_S + 60,
    )
    assert done.returncode == 1, done
    assert done.stdout == ""
    one_error(done.stderr, held_lock)


def test_the_daemon_exits_with_the_same_line_before_ready(held_lock: Path, pulse: PulseServer, tmp_path: Path) -> None:
    """Under systemd it is restarted, and RemoveIPC=yes removes the lock when it stops (voicecoach.service)."""
    with Daemon(tmp_path, ["--model", str(tmp_path / "no-model")], pulse.environ()) as d:
        assert d.process is not None
        assert d.process.wait(START_TIMEOUT_S + 60) == 1
        assert d.notifications is not None
        assert not any(m.fields.get("READY") == "1" for m in d.notifications.snapshot()), d.notifications.snapshot()
    one_error(d.log_path.read_text(), held_lock)
