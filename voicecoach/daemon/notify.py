"""Talking to systemd without a dependency: sd_notify datagrams, and log lines that journald files by priority."""

from __future__ import annotations

import logging
import os
import socket
import sys
from collections.abc import Callable, Mapping
from typing import TextIO

log = logging.getLogger(__name__)


class Notifier:
    """Sends sd_notify messages to $NOTIFY_SOCKET; without it (not under systemd) every call does nothing."""

    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        env = os.environ if environ is None else environ
        self._address = _address(env.get("NOTIFY_SOCKET", ""))
        self._watchdog_s = _watchdog_s(env)
        # One socket for the process's life, opened now: a process that has run out of file descriptors
        # must still be able to tell systemd so (a socket per message could not be opened then).
        self._socket: socket.socket | None = None
        self._open()

    @property
    def enabled(self) -> bool:
        return self._address is not None

    @property
    def watchdog_s(self) -> float | None:
        """The watchdog timeout systemd enforces on this process (WatchdogSec=), or None when there is none."""
        return self._watchdog_s

    def _open(self) -> socket.socket | None:
        if self._socket is None and self._address is not None:
            try:
                self._socket = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
            except OSError:
                return None
        return self._socket

    def send(self, *fields: str) -> bool:
        """Send one message of KEY=VALUE fields; False (never an exception) if systemd did not take it."""
        sock = self._open()
        if sock is None or self._address is None:
            return False
        try:
            sock.sendto("\n".join(fields).encode("utf-8", errors="replace"), self._address)
        except OSError:
            # systemd went away or the socket is full: the service must keep running, not crash on a status line.
            return False
        return True

    def ready(self, status: str | None = None) -> bool:
        return self.send("READY=1", *_status(status))

    def status(self, text: str) -> bool:
        return self.send(*_status(text))

    def starting(self, text: str, more_s: float) -> bool:
        """The start goes on: systemd waits more_s longer than it would (EXTEND_TIMEOUT_USEC), and the watchdog
        hears that the process lives."""
        return self.send(f"EXTEND_TIMEOUT_USEC={round(more_s * 1_000_000)}", "WATCHDOG=1", *_status(text))

    def watchdog(self) -> bool:
        return self.send("WATCHDOG=1")

    def stopping(self, status: str | None = None) -> bool:
        return self.send("STOPPING=1", *_status(status))

    def reloading(self) -> bool:
        return self.send("RELOADING=1")


class Watchdog:
    """Pings systemd's watchdog on behalf of the parts of the service that must all work (the control channel, the
    audio, the listener). Once one has failed the pings stop for good, so systemd restarts the service."""

    def __init__(self, notifier: Notifier, on_failure: Callable[[str], None] = lambda _part: None) -> None:
        self._notifier = notifier
        self._on_failure = on_failure
        self._checks: dict[str, Callable[[], str | None]] = {}
        # The parts that failed, and why.
        self.failed: dict[str, str] = {}

    def watch(self, part: str, problem: Callable[[], str | None]) -> None:
        """problem says what is wrong with part, or None while it works; it is asked before every ping."""
        self._checks[part] = problem

    def fail(self, part: str, why: str | BaseException) -> None:
        """part no longer works: logged once (with the traceback of an exception), and no ping is sent again."""
        if part in self.failed:
            return
        self.failed[part] = why if isinstance(why, str) else f"{type(why).__name__}: {why}"
        then = "systemd restarts the service" if self._notifier.watchdog_s else "restart voicecoach"
        exc_info = why if isinstance(why, BaseException) else None
        log.error("the %s failed (%s); %s", part, self.failed[part], then, exc_info=exc_info)
        self._on_failure(part)

    def ping(self) -> bool:
        """WATCHDOG=1 if every part works; False (and nothing sent) otherwise."""
        for part, problem in self._checks.items():
            why = None if part in self.failed else problem()
            if why is not None:
                self.fail(part, why)
        return not self.failed and self._notifier.watchdog()


def _status(text: str | None) -> tuple[str, ...]:
    # A newline would end the field and start a bogus one.
    return () if text is None else (f"STATUS={' '.join(text.split())}",)


def _address(value: str) -> str | None:
    if value.startswith("@"):
        # Abstract namespace: the name starts with a NUL byte instead of the '@' systemd writes.
        return "\0" + value[1:]
    if value.startswith("/"):
        return value
    # Unset, or a transport we do not speak (such as vsock): behave as if not under systemd.
    return None


def _watchdog_s(env: Mapping[str, str]) -> float | None:
    pid = env.get("WATCHDOG_PID")
    # WATCHDOG_PID names the process the watchdog is meant for; a child that inherited it must not ping.
    if pid and pid != str(os.getpid()):
        return None
    try:
        usec = int(env.get("WATCHDOG_USEC", ""))
    except ValueError:
        return None
    return usec / 1_000_000 if usec > 0 else None


def ping_interval(watchdog_s: float) -> float:
    """How often to send WATCHDOG=1: systemd advises half the timeout, so one late ping is not fatal."""
    return watchdog_s / 2


# sd-daemon(3) priorities; logging has no NOTICE, so nothing maps to 5.
_PRIORITIES = ((logging.CRITICAL, 2), (logging.ERROR, 3), (logging.WARNING, 4), (logging.INFO, 6))
_DEBUG = 7


def priority(levelno: int) -> int:
    """The syslog priority journald should file a record of this logging level under."""
    return next((prio for level, prio in _PRIORITIES if levelno >= level), _DEBUG)


class JournalFormatter(logging.Formatter):
    """Prefixes every line with <N>, so a multi-line traceback stays at the priority of its record."""

    def format(self, record: logging.LogRecord) -> str:
        prefix = f"<{priority(record.levelno)}>"
        return "\n".join(prefix + line for line in super().format(record).splitlines())


def connected_to_journal(stream: TextIO, environ: Mapping[str, str] | None = None) -> bool:
    """True when stream is the journald stream systemd gave us ($JOURNAL_STREAM is its device:inode)."""
    env = os.environ if environ is None else environ
    try:
        device, inode = (int(part) for part in env.get("JOURNAL_STREAM", "").split(":"))
        st = os.fstat(stream.fileno())
    except (ValueError, OSError):
        return False
    return (st.st_dev, st.st_ino) == (device, inode)


def log_handler(stream: TextIO | None = None, journal: bool | None = None) -> logging.Handler:
    """A stderr handler: sd-daemon prefixes under journald (decided by $JOURNAL_STREAM unless journal is given)."""
    out = sys.stderr if stream is None else stream
    handler = logging.StreamHandler(out)
    if journal is None:
        journal = connected_to_journal(out)
    # journald adds its own timestamp and unit name; a terminal reader wants the level spelled out.
    plain = logging.Formatter("%(levelname)s: %(message)s")
    handler.setFormatter(JournalFormatter("%(message)s") if journal else plain)
    return handler
