"""JACK's shared database, whose lock a program killed while PortAudio starts can leave held for good.

Debian's PortAudio has a JACK host API, and starting it opens JACK 2's metadata database in /dev/shm/jack_db-<uid>,
whether or not a JACK server runs. A process killed while it holds that database's lock leaves the lock held, and
every later PortAudio start of the same user waits for it forever. The kill test kills sessions while they start, so
it can leave the lock held: in CI (stop 31) it did, every daemon started after it hung before READY, and the run hung
at its end, in the `pulse` fixture's PortAudio restart. systemd's RemoveIPC=yes in voicecoach.service removes the
directory when the service stops, and the coach does when its own start is stuck (voicecoach/sound/portaudio.py);
the tests do it where PortAudio cannot start and no JACK server runs. Imports nothing from pytest, so the harnesses
can use it.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Mapping

from voicecoach.sound.portaudio import jack_database, jack_server_running

# PortAudio starts in well under a second here; a start that has not ended in this long waits for the lock.
START_TIMEOUT_S = 20.0
# Stop where the database library lets go of a lock, so holding it, and kill the process there.
GDB_KILL_HOLDING = (
    *("gdb", "-q", "-batch", "-ex", "set breakpoint pending on", "-ex", "break __db_pthread_mutex_unlock"),
    *("-ex", "run", "-ex", "kill"),
)


def portaudio_starts(env: Mapping[str, str] | None = None, timeout_s: float = START_TIMEOUT_S) -> bool:
    """Whether a new process can start PortAudio (list its devices) within timeout_s."""
    try:
        done = subprocess.run(
            [sys.executable, "-c", "import sounddevice; sounddevice.query_devices()"],
            env=None if env is None else dict(env),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            timeout=timeout_s,
        )
    except subprocess.TimeoutExpired:
        return False
    return done.returncode == 0


def release(env: Mapping[str, str] | None = None) -> str | None:
    """Make PortAudio start again if a killed process left JACK's lock held; what was done, or None if nothing was.

    Raises RuntimeError where PortAudio cannot start and removing the database is not the cure (or is not allowed)."""
    if portaudio_starts(env):
        return None
    path = jack_database()
    if not path.exists():
        raise RuntimeError(f"PortAudio does not start within {START_TIMEOUT_S:.0f} s, and {path} does not exist")
    if jack_server_running():
        raise RuntimeError(f"PortAudio does not start within {START_TIMEOUT_S:.0f} s while a JACK server runs")
    # Lanes of the kill test release it side by side: another may be removing it, or a new start making it again.
    shutil.rmtree(path, ignore_errors=True)
    if not portaudio_starts(env):
        raise RuntimeError(f"PortAudio does not start within {START_TIMEOUT_S:.0f} s, even with {path} removed")
    return f"PortAudio could not start: a killed process had left JACK's lock in {path} held; removed it"


def hold(env: Mapping[str, str] | None = None) -> None:
    """Leave JACK's lock held, as a process killed at the wrong moment of PortAudio's start does: gdb stops a start
    where the database library lets go of a lock it holds, and kills it there."""
    done = subprocess.run(
        [*GDB_KILL_HOLDING, "--args", sys.executable, "-c", "import sounddevice"],
        env=None if env is None else dict(env),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=120,
    )
    if done.returncode != 0:
        raise RuntimeError(f"gdb failed ({done.returncode}): {done.stderr.strip()}")
    if portaudio_starts(env, timeout_s=10.0):
        raise RuntimeError(f"gdb could not leave the lock in {jack_database()} held: PortAudio still starts")
