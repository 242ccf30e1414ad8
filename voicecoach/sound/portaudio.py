"""Starting PortAudio, which can wait forever on a lock that a killed program left held: then a clear error instead.

Debian's and Raspberry Pi OS's PortAudio has a JACK host API. Starting it opens JACK 2's metadata database in
/dev/shm/jack_db-<uid>, whether or not a JACK server runs, and a program killed while it held that database's lock
leaves the lock held until the directory is removed or the machine restarts. Every later PortAudio start of that user
then waits forever: the coach would hang before saying a word, with nothing in its log. (Seen in CI: the kill test
killed a session as it started, and every daemon after it hung; tests/test_portaudio_stuck.py makes the lock so.)
The wait is a C call that cannot be interrupted, so it runs in a thread of its own; the thread is left behind when
it does not end, and the process is expected to exit with the error. Where no JACK server runs, the error removes
the database first, so the next start (systemd's restart, the command run again) works.
"""

from __future__ import annotations

import os
import queue
import shutil
import sys
import threading
from pathlib import Path
from types import ModuleType

from voicecoach.errors import UserError

# PortAudio starts in well under a second on a Pi; a start that has not ended in this long is waiting for the lock.
START_TIMEOUT_S = 30.0
JACK_SERVERS = ("jackd", "jackdbus")


class PortAudioStuck(UserError):
    """PortAudio did not start; the process cannot use audio until it exits (the stuck start holds PortAudio)."""


_stuck: PortAudioStuck | None = None


def jack_database() -> Path:
    return Path(f"/dev/shm/jack_db-{os.getuid()}")


def load(timeout_s: float = START_TIMEOUT_S) -> ModuleType:
    """Import sounddevice, which starts PortAudio; raises PortAudioStuck if that has not ended within timeout_s."""
    global _stuck
    if _stuck is not None:
        raise _stuck
    loaded = sys.modules.get("sounddevice")
    if loaded is not None:
        return loaded
    result: queue.Queue[ModuleType | BaseException] = queue.Queue()

    def start() -> None:
        try:
            import sounddevice

            result.put(sounddevice)
        except BaseException as exc:
            result.put(exc)

    # sounddevice points stderr at /dev/null while PortAudio starts, to hide ALSA's and JACK's chatter, and a start
    # that never ends never points it back: nothing the process said after it would be seen.
    stderr = os.dup(2)
    try:
        threading.Thread(target=start, name="portaudio-start", daemon=True).start()
        try:
            got = result.get(timeout=timeout_s)
        except queue.Empty:
            os.dup2(stderr, 2)
            _stuck = PortAudioStuck(_explain(timeout_s))
            raise _stuck from None
    finally:
        os.close(stderr)
    if isinstance(got, BaseException):
        raise got
    return got


def _explain(timeout_s: float) -> str:
    """Why PortAudio did not start, after removing JACK's database where that is the cure: a process that stays stuck
    cannot start PortAudio again, but the next one (the restart systemd makes, the command run again) can."""
    database = jack_database()
    waited = f"PortAudio did not start within {timeout_s:.0f} s"
    if not database.exists():
        return f"{waited}: the sound system is not answering; restart it (or the computer) and start the coach again"
    if jack_server_running():
        return (
            f"{waited}, with JACK's database {database} most likely locked by a program killed while starting audio: "
            "stop the JACK server, remove that directory, and start the coach again"
        )
    # What a JACK server does with it when it starts, and systemd's RemoveIPC=yes when the service stops: its
    # metadata lives only as long as a server runs, and none does.
    shutil.rmtree(database, ignore_errors=True)
    if database.exists():
        return f"{waited}, and JACK's database {database}, most likely locked, could not be removed: remove it"
    return (
        f"{waited}: a program killed while starting audio had left JACK's database {database} locked, and it is "
        "removed now: start the coach again (systemd does so by itself)"
    )


def jack_server_running() -> bool:
    for comm in Path("/proc").glob("[0-9]*/comm"):
        try:
            if comm.read_text().strip() in JACK_SERVERS:
                return True
        except OSError:
            continue
    return False
