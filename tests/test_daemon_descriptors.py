"""The daemon with too few file descriptors (issue 10): a real `voicecoach run` whose limit a real `prlimit` lowers,
held connections on its real socket, and a fake NOTIFY_SOCKET with a 4 s watchdog. Whatever runs out, `ctl` is
answered, the watchdog pinged, and the log says so once."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from daemon_harness import Daemon, hold_connections, new_lines, no_model, pings_go_on
from pulse import PulseServer
from test_daemon import WATCHDOG_S

from voicecoach.daemon import unix_server
from voicecoach.daemon.control import MAX_CLIENTS

pytestmark = pytest.mark.audio

# Bursts of queued connections: six of them are more than 100 file descriptors.
BURSTS = 6


def prlimit(pid: int, files: int) -> None:
    if shutil.which("prlimit") is None:
        pytest.skip("prlimit (util-linux) is not installed")
    subprocess.run(["prlimit", f"--pid={pid}", f"--nofile={files}:{files}"], check=True)


def open_fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


@contextlib.contextmanager
def held(connections: list[socket.socket]) -> Iterator[list[socket.socket]]:
    """The connections, closed at the end, whatever happened."""
    try:
        yield connections
    finally:
        for sock in connections:
            sock.close()


def cap_reached(d: Daemon) -> str:
    return f"WARNING: {MAX_CLIENTS} connections are open on {d.socket}: each new one closes the idlest"


@pytest.fixture
def coach(pulse: PulseServer, tmp_path: Path) -> Iterator[Daemon]:
    """A daemon of its own, ready and done rendering ahead, for each test: each lowers its limit for good."""
    with Daemon(tmp_path, no_model(tmp_path), pulse.environ(), WATCHDOG_S) as d:
        d.wait_ready()
        d.wait_rendered()
        yield d


def test_120_connections_held_under_a_limit_of_100_files_leave_ctl_and_the_watchdog_working(coach: Daemon) -> None:
    logged = len(coach.log_lines())
    prlimit(coach.pid, 100)
    with held(hold_connections(coach.socket, 120)) as connections:
        assert len(connections) == 120
        assert coach.status()["state"] == "idle"
        pings_go_on(coach)
        assert open_fds(coach.pid) < 100
    assert coach.status()["state"] == "idle"
    assert new_lines(coach, logged, "WARNING") == [cap_reached(coach)]
    assert "Traceback" not in coach.log()


def test_connections_queued_while_the_daemon_cannot_accept_each_make_room_for_the_next(coach: Daemon) -> None:
    """Connections that queue while the daemon cannot accept (stopped here; busy on a loaded Pi) are taken in one burst
    when it goes on. Each connection must make room for the next: a burst let in whole, a few of them against a limit
    of 100 file descriptors ran the daemon out of them, and then nothing freed one (the 120-connection test above
    once held 99)."""
    logged = len(coach.log_lines())
    before = open_fds(coach.pid)
    prlimit(coach.pid, 100)
    with held([]) as connections:
        for _ in range(BURSTS):
            os.kill(coach.pid, signal.SIGSTOP)
            try:
                # As many as the listen queue takes (its length is the cap, and Linux takes one more).
                connections += hold_connections(coach.socket, MAX_CLIENTS + 1, patience_s=0.5)
            finally:
                os.kill(coach.pid, signal.SIGCONT)
            assert coach.status()["state"] == "idle"
        assert len(connections) == BURSTS * (MAX_CLIENTS + 1)
        # The held connections it still has open: the cap's worth, and the one ctl used last, still closing.
        assert open_fds(coach.pid) - before <= MAX_CLIENTS + 1
        pings_go_on(coach)
    assert new_lines(coach, logged, "WARNING") == [cap_reached(coach)]
    assert "Traceback" not in coach.log()


def test_out_of_file_descriptors_accepting_waits_says_so_once_and_comes_back(coach: Daemon) -> None:
    logged = len(coach.log_lines())
    # Room for three connections: the fourth finds no file descriptor, far below the cap on connections.
    prlimit(coach.pid, open_fds(coach.pid) + 3)
    with held(hold_connections(coach.socket, 8, patience_s=0.5)):
        coach.wait_log(lambda line: "Too many open files" in line, what="the accept failure")
        pings_go_on(coach)
        # Long enough for a few more tries to accept, none of which may log again.
        time.sleep(3 * unix_server.ACCEPT_RETRY_S)
    assert coach.status()["state"] == "idle"
    [warning] = new_lines(coach, logged, "WARNING")
    assert warning.startswith(f"WARNING: cannot accept connections on {coach.socket} (Too many open files, ")
    assert warning.endswith("open); trying again every 1 s")
    assert "Traceback" not in coach.log()
