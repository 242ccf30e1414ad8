"""sd_notify against a fake NOTIFY_SOCKET, and log lines that carry sd-daemon priorities."""

from __future__ import annotations

import io
import logging
import os
import socket
import subprocess
import sys
import textwrap
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from voicecoach.daemon.notify import (
    JournalFormatter,
    Notifier,
    Watchdog,
    connected_to_journal,
    log_handler,
    ping_interval,
)
from voicecoach.daemon.run import WARM_NOTICE_S, render_telling


@pytest.fixture
def systemd(tmp_path: Path) -> Iterator[tuple[socket.socket, str]]:
    """A datagram socket standing in for systemd's notify socket, and the $NOTIFY_SOCKET value naming it."""
    path = tmp_path / "notify"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(str(path))
        sock.settimeout(5)
        yield sock, str(path)


def received(sock: socket.socket) -> list[str]:
    return sock.recv(4096).decode("utf-8").split("\n")


def test_ready_with_status_is_one_datagram(systemd: tuple[socket.socket, str]) -> None:
    sock, address = systemd
    notifier = Notifier({"NOTIFY_SOCKET": address})
    assert notifier.enabled
    assert notifier.ready("Lyssnar")
    assert received(sock) == ["READY=1", "STATUS=Lyssnar"]


def test_status_watchdog_stopping_and_reloading(systemd: tuple[socket.socket, str]) -> None:
    sock, address = systemd
    notifier = Notifier({"NOTIFY_SOCKET": address})
    notifier.status("Styrka 3/10")
    notifier.watchdog()
    notifier.reloading()
    notifier.stopping()
    expected = [["STATUS=Styrka 3/10"], ["WATCHDOG=1"], ["RELOADING=1"], ["STOPPING=1"]]
    assert [received(sock) for _ in expected] == expected


def test_a_long_start_extends_systemds_timeout_in_one_datagram(systemd: tuple[socket.socket, str]) -> None:
    sock, address = systemd
    assert Notifier({"NOTIFY_SOCKET": address}).starting("rendering speech: 40 of 106 phrases", 30.0)
    assert received(sock) == [
        "EXTEND_TIMEOUT_USEC=30000000",
        "WATCHDOG=1",
        "STATUS=rendering speech: 40 of 106 phrases",
    ]


def test_status_keeps_non_ascii_and_cannot_smuggle_a_second_field(systemd: tuple[socket.socket, str]) -> None:
    sock, address = systemd
    Notifier({"NOTIFY_SOCKET": address}).status("Ingen taligenkänningsmodell\nREADY=1")
    assert received(sock) == ["STATUS=Ingen taligenkänningsmodell READY=1"]


def test_abstract_namespace_socket() -> None:
    name = f"voicecoach-test-{uuid.uuid4().hex}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind("\0" + name)
        sock.settimeout(5)
        assert Notifier({"NOTIFY_SOCKET": "@" + name}).ready()
        assert received(sock) == ["READY=1"]


@pytest.mark.parametrize("value", ["", "relative/path", "vsock:2:1234"])
def test_without_a_usable_socket_every_call_is_a_no_op(value: str) -> None:
    notifier = Notifier({"NOTIFY_SOCKET": value} if value else {})
    assert not notifier.enabled
    assert not notifier.ready("Lyssnar")
    assert not notifier.watchdog()


def test_a_socket_nobody_listens_on_does_not_raise(tmp_path: Path) -> None:
    assert not Notifier({"NOTIFY_SOCKET": str(tmp_path / "gone")}).ready()


def test_a_process_out_of_file_descriptors_still_tells_systemd(systemd: tuple[socket.socket, str]) -> None:
    # In a process of its own with a real RLIMIT_NOFILE: the notifier was made first, then every descriptor was
    # taken. A socket made per message cannot be made then (on the landed main, send raised EMFILE).
    sock, address = systemd
    script = textwrap.dedent(
        f"""
        import os, resource
        from voicecoach.daemon.notify import Notifier
        notifier = Notifier({{"NOTIFY_SOCKET": {address!r}}})
        resource.setrlimit(resource.RLIMIT_NOFILE, (64, 64))
        held = []
        try:
            while True:
                held.append(os.open("/dev/null", os.O_RDONLY))
        except OSError as exc:
            assert exc.errno == 24, exc
        print(notifier.watchdog(), notifier.status("utan filer"))
        """
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert (done.returncode, done.stdout.split()) == (0, ["True", "True"]), done.stderr
    assert [received(sock), received(sock)] == [["WATCHDOG=1"], ["STATUS=utan filer"]]


def test_the_watchdog_is_pinged_only_while_every_part_works(
    systemd: tuple[socket.socket, str], caplog: pytest.LogCaptureFixture
) -> None:
    sock, address = systemd
    notifier = Notifier({"NOTIFY_SOCKET": address, "WATCHDOG_USEC": "4000000", "WATCHDOG_PID": str(os.getpid())})
    problems: dict[str, str | None] = {"control": None}
    failed: list[str] = []
    watchdog = Watchdog(notifier, failed.append)
    watchdog.watch("control", lambda: problems["control"])
    assert watchdog.ping()
    assert received(sock) == ["WATCHDOG=1"]
    problems["control"] = "the control socket no longer accepts connections"
    with caplog.at_level(logging.ERROR, logger="voicecoach"):
        assert not watchdog.ping()
        problems["control"] = None
        # A part that failed stays failed: systemd must restart the service, not see it recover half-way.
        assert not watchdog.ping()
        watchdog.fail("listener", ValueError("bad block"))
        watchdog.fail("listener", ValueError("again"))
    assert failed == ["control", "listener"]
    assert watchdog.failed == {
        "control": "the control socket no longer accepts connections",
        "listener": "ValueError: bad block",
    }
    messages = [r.getMessage() for r in caplog.records]
    assert messages == [
        "the control failed (the control socket no longer accepts connections); systemd restarts the service",
        "the listener failed (ValueError: bad block); systemd restarts the service",
    ]
    assert caplog.records[1].exc_info is not None
    sock.settimeout(0.2)
    with pytest.raises(TimeoutError):
        sock.recv(4096)


def test_watchdog_interval_from_watchdog_usec() -> None:
    notifier = Notifier({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": str(os.getpid())})
    assert notifier.watchdog_s == 30.0
    assert ping_interval(30.0) == 15.0


@pytest.mark.parametrize(
    "env",
    [{}, {"WATCHDOG_USEC": "0"}, {"WATCHDOG_USEC": "soon"}, {"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": "1"}],
)
def test_no_watchdog_when_unset_invalid_or_meant_for_another_process(env: dict[str, str]) -> None:
    if env.get("WATCHDOG_PID") == str(os.getpid()):
        pytest.skip("this test process happens to be pid 1")
    assert Notifier(env).watchdog_s is None


def log_lines(handler: logging.Handler, stream: io.StringIO, level: int, message: str) -> list[str]:
    logger = logging.getLogger(f"voicecoach.test.{uuid.uuid4().hex}")
    logger.propagate = False
    logger.setLevel(logging.DEBUG)
    logger.addHandler(handler)
    logger.log(level, message)
    return stream.getvalue().splitlines()


@pytest.mark.parametrize(
    ("level", "prefix"),
    [
        (logging.CRITICAL, "<2>"),
        (logging.ERROR, "<3>"),
        (logging.WARNING, "<4>"),
        (logging.INFO, "<6>"),
        (logging.DEBUG, "<7>"),
    ],
)
def test_journal_lines_carry_sd_daemon_priorities(level: int, prefix: str) -> None:
    stream = io.StringIO()
    assert log_lines(log_handler(stream, journal=True), stream, level, "mikrofonen saknas") == [
        f"{prefix}mikrofonen saknas"
    ]


def test_every_line_of_a_traceback_keeps_the_error_priority() -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JournalFormatter("%(message)s"))
    logger = logging.getLogger(f"voicecoach.test.{uuid.uuid4().hex}")
    logger.propagate = False
    logger.addHandler(handler)
    try:
        raise RuntimeError("audio thread hung")
    except RuntimeError:
        logger.exception("watchdog")
    lines = stream.getvalue().splitlines()
    assert len(lines) > 2
    assert all(line.startswith("<3>") for line in lines)
    assert lines[-1] == "<3>RuntimeError: audio thread hung"


def test_a_terminal_gets_plain_levels_without_prefixes() -> None:
    stream = io.StringIO()
    assert log_lines(log_handler(stream, journal=False), stream, logging.WARNING, "underrun") == ["WARNING: underrun"]


def test_journal_is_detected_from_journal_stream(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with open(tmp_path / "stderr", "w") as stream:
        st = os.fstat(stream.fileno())
        assert connected_to_journal(stream, {"JOURNAL_STREAM": f"{st.st_dev}:{st.st_ino}"})
        assert not connected_to_journal(stream, {"JOURNAL_STREAM": f"{st.st_dev}:{st.st_ino + 1}"})
        assert not connected_to_journal(stream, {})
        monkeypatch.setenv("JOURNAL_STREAM", f"{st.st_dev}:{st.st_ino}")
        assert isinstance(log_handler(stream).formatter, JournalFormatter)
    assert not connected_to_journal(io.StringIO(), {"JOURNAL_STREAM": "1:2"})


def test_a_start_that_renders_long_tells_systemd_it_goes_on(systemd: tuple[socket.socket, str]) -> None:
    sock, address = systemd
    now = [0.0]
    rendered: list[str] = []

    def render(text: str) -> None:
        rendered.append(text)
        now[0] += 2.0  # a Piper voice on a Pi: two seconds a phrase

    texts = [f"fras {n}" for n in range(1, 8)]
    render_telling(texts, render, Notifier({"NOTIFY_SOCKET": address}), clock=lambda: now[0])
    assert rendered == texts
    # Every WARM_NOTICE_S (5 s): after the third phrase (6 s) and the sixth (12 s).
    sock.settimeout(0.5)
    told = [received(sock) for _ in range(2)]
    assert [fields[-1] for fields in told] == [
        "STATUS=rendering speech: 3 of 7 phrases",
        "STATUS=rendering speech: 6 of 7 phrases",
    ]
    assert all(fields[:2] == [f"EXTEND_TIMEOUT_USEC={round(6 * WARM_NOTICE_S * 1e6)}", "WATCHDOG=1"] for fields in told)
    with pytest.raises(TimeoutError):
        sock.recv(4096)
