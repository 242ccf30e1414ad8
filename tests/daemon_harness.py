"""The real daemon, `voicecoach run`, in a subprocess, with a fake systemd: an AF_UNIX datagram socket bound
here is its NOTIFY_SOCKET, and every message it sends is kept. Each daemon gets its own state directory, an
empty XDG_CONFIG_HOME (no user's file leaks in) and its own RUNTIME_DIRECTORY for the control socket.

Used by tests/test_daemon.py and benchmarks/daemon.py; it imports nothing from pytest.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from coach_command import voicecoach_command

from voicecoach.cli.main import main
from voicecoach.daemon import control

# Only guards against a hung daemon; nothing is measured against them.
START_TIMEOUT_S = 120.0
WAIT_S = 30.0


class DaemonError(RuntimeError):
    """The daemon did not do what was waited for; the message ends with its log."""


@dataclass(frozen=True)
class Message:
    """One sd_notify datagram: when it arrived (time.monotonic()) and its KEY=VALUE fields."""

    at: float
    fields: dict[str, str] = field(default_factory=dict)

    @staticmethod
    def parse(at: float, data: bytes) -> Message:
        lines = data.decode("utf-8", errors="replace").split("\n")
        return Message(at, dict(line.split("=", 1) for line in lines if "=" in line))


class Notifications:
    """A fake $NOTIFY_SOCKET: binds path and collects every datagram, in order, on a reader thread.

    on_message runs on that thread as each message arrives, before anyone waiting is woken."""

    def __init__(self, path: Path, on_message: Callable[[Message], None] = lambda _m: None) -> None:
        self.path = path
        self.messages: list[Message] = []
        self._on_message = on_message
        self._changed = threading.Condition()
        self._socket = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self._socket.bind(str(path))
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        while True:
            try:
                data = self._socket.recv(65536)
            except OSError:
                return
            message = Message.parse(time.monotonic(), data)
            self._on_message(message)
            with self._changed:
                self.messages.append(message)
                self._changed.notify_all()

    def snapshot(self) -> list[Message]:
        with self._changed:
            return list(self.messages)

    def wait_for(
        self, wanted: Callable[[Message], bool], start: int = 0, timeout: float = WAIT_S, alive=lambda: True
    ) -> tuple[int, Message]:
        """The first message from index start on that is wanted, and its index; waits for it up to timeout."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                for index in range(start, len(self.messages)):
                    if wanted(self.messages[index]):
                        return index, self.messages[index]
                start = len(self.messages)
                if not alive():
                    # What a process sent just before it exited may still be on its way to the reader.
                    deadline = min(deadline, time.monotonic() + 1.0)
                    alive = lambda: True  # noqa: E731
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError
                self._changed.wait(min(left, 0.5))

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self._socket.shutdown(socket.SHUT_RDWR)
        self._socket.close()
        self._reader.join(timeout=5)
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()


class Daemon:
    """One `voicecoach run` process and what it told systemd and its log.

    ready_probe, if set, runs on the notification thread the moment READY=1 arrives (to ask the control
    socket something before anything else can happen); its result or exception is kept in probe_result."""

    def __init__(
        self,
        directory: Path,
        args: Sequence[str] = (),
        env: Mapping[str, str] | None = None,
        watchdog_s: float | None = 4.0,
        state_dir: Path | None = None,
        ready_probe: Callable[[Daemon], object] | None = None,
        state_from_env: bool = True,
    ) -> None:
        self.directory = directory
        self.args = list(args)
        self.state_dir = state_dir or directory / "state"
        self.runtime_dir = directory / "run"
        self.socket = self.runtime_dir / control.SOCKET_NAME
        self.log_path = directory / "daemon.log"
        self.probe_result: object = None
        self._ready_probe = ready_probe
        config_home = directory / "xdg"
        config_home.mkdir(parents=True, exist_ok=True)
        self.env = {
            **(os.environ if env is None else env),
            "XDG_CONFIG_HOME": str(config_home),
            # systemd's variable for RuntimeDirectory=: the control socket goes there, one per daemon.
            "RUNTIME_DIRECTORY": str(self.runtime_dir),
            "NOTIFY_SOCKET": str(directory / "notify.sock"),
        }
        if state_from_env:
            self.env["VOICECOACH_STATE_DIR"] = str(self.state_dir)
        else:
            # The configuration names it (state_dir = ...), as a user's config.toml would.
            self.env.pop("VOICECOACH_STATE_DIR", None)
        self.env.pop("WATCHDOG_PID", None)
        self.env.pop("WATCHDOG_USEC", None)
        if watchdog_s is not None:
            self.env["WATCHDOG_USEC"] = str(round(watchdog_s * 1_000_000))
        self.process: subprocess.Popen[bytes] | None = None
        self.notifications: Notifications | None = None
        self.started_at = 0.0

    # -- life ------------------------------------------------------------------------------------------------------

    def start(self) -> Daemon:
        self.notifications = Notifications(Path(self.env["NOTIFY_SOCKET"]), self._on_message)
        with self.log_path.open("ab") as log:
            self.started_at = time.monotonic()
            self.process = subprocess.Popen(
                [*voicecoach_command(), "run", *self.args],
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        return self

    def _on_message(self, message: Message) -> None:
        if message.fields.get("READY") == "1" and self._ready_probe is not None:
            probe, self._ready_probe = self._ready_probe, None
            try:
                self.probe_result = probe(self)
            except Exception as exc:
                self.probe_result = exc

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def wait_ready(self, timeout: float = START_TIMEOUT_S) -> Message:
        return self.wait_message(lambda m: m.fields.get("READY") == "1", timeout=timeout)[1]

    def terminate(self, timeout: float = WAIT_S) -> int:
        """SIGTERM, and the exit status."""
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            raise DaemonError(self._explain(f"still running {timeout:.0f} s after SIGTERM")) from None

    def close(self) -> None:
        """Make sure it is gone (killed if it must be) and the fake NOTIFY_SOCKET is closed."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self.notifications is not None:
            self.notifications.close()

    def __enter__(self) -> Daemon:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.close()

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    # -- what it said ----------------------------------------------------------------------------------------------

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace") if self.log_path.exists() else ""

    def log_lines(self) -> list[str]:
        """Its own log lines (INFO: ..., WARNING: ...); not the noise PortAudio and ALSA print to stderr."""
        levels = ("DEBUG: ", "INFO: ", "WARNING: ", "ERROR: ", "CRITICAL: ")
        return [line for line in self.log().splitlines() if line.startswith(levels)]

    def messages(self) -> list[Message]:
        assert self.notifications is not None
        return self.notifications.snapshot()

    def statuses(self, start: int = 0) -> list[str]:
        """Every STATUS= it sent, from message index start on."""
        return [m.fields["STATUS"] for m in self.messages()[start:] if "STATUS" in m.fields]

    def wait_message(
        self, wanted: Callable[[Message], bool], start: int = 0, timeout: float = WAIT_S, what: str = "a message"
    ) -> tuple[int, Message]:
        assert self.notifications is not None
        try:
            return self.notifications.wait_for(wanted, start, timeout, alive=lambda: self.running)
        except TimeoutError:
            raise DaemonError(self._explain(f"{what} did not come")) from None

    def wait_log(self, wanted: Callable[[str], bool], timeout: float = WAIT_S, what: str = "a log line") -> str:
        deadline = time.monotonic() + timeout
        while True:
            found = [line for line in self.log_lines() if wanted(line)]
            if found:
                return found[0]
            if time.monotonic() > deadline or not self.running:
                raise DaemonError(self._explain(f"{what} was not logged"))
            time.sleep(0.05)

    def _explain(self, problem: str) -> str:
        state = "running" if self.running else f"exited with {self.process.returncode if self.process else None}"
        notes = [m.fields for m in self.messages()] if self.notifications else []
        return f"{problem}; the daemon is {state}; it sent {notes[-12:]}; its log:\n{self.log()[-6000:]}"

    # -- control -----------------------------------------------------------------------------------------------------

    def ctl(self, *args: str) -> str:
        """`voicecoach ctl ARGS` (in this process, through the CLI); its output, or DaemonError with its error."""
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            status = main(["ctl", "--socket", str(self.socket), *args])
        if status != 0:
            raise DaemonError(f"voicecoach ctl {' '.join(args)} exited {status}: {err.getvalue().strip()}")
        return out.getvalue()

    def status(self) -> dict[str, object]:
        return json.loads(self.ctl("status", "--json"))

    def wait_status(
        self, wanted: Callable[[dict[str, object]], bool], timeout: float = WAIT_S, what: str = "the state"
    ) -> dict[str, object]:
        deadline = time.monotonic() + timeout
        while True:
            status = self.status()
            if wanted(status):
                return status
            if time.monotonic() > deadline or not self.running:
                raise DaemonError(self._explain(f"{what} did not come; the last status was {status}"))
            time.sleep(0.1)

    def wait_rendered(self, timeout: float = WAIT_S) -> None:
        """Until what is said between sets has been rendered ahead (which logs a line, and holds up the loop)."""
        self.wait_status(lambda s: s["rendering"] == 0, timeout, "the end of rendering ahead")


def no_model(root: Path) -> list[str]:
    return ["--model", str(root / "no-model")]


def pings_go_on(d: Daemon) -> None:
    """Two more WATCHDOG=1 arrive from now on."""
    start = len(d.messages())
    first, _ = d.wait_message(lambda m: m.fields.get("WATCHDOG") == "1", start, what="WATCHDOG=1")
    d.wait_message(lambda m: m.fields.get("WATCHDOG") == "1", first + 1, what="a second WATCHDOG=1")


def new_lines(d: Daemon, since: int, level: str) -> list[str]:
    return [line for line in d.log_lines()[since:] if line.startswith(f"{level}: ")]


def hold_connections(path: Path, count: int, patience_s: float = 10.0) -> list[socket.socket]:
    """Open count connections and leave them idle. A full listen queue refuses a connection at once (EAGAIN):
    it is tried again until the daemon has taken one in, or patience_s is over (then it is not held)."""
    held = []
    for _ in range(count):
        deadline = time.monotonic() + patience_s
        while time.monotonic() < deadline:
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.settimeout(2)
            try:
                sock.connect(str(path))
            except BlockingIOError:
                sock.close()
                time.sleep(0.01)
                continue
            held.append(sock)
            break
    return held


def rss_kib(pid: int) -> int:
    """Resident memory of a process, in KiB (VmRSS)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise DaemonError(f"no VmRSS for process {pid}")


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time a process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def children(pid: int) -> list[int]:
    """The process's direct children (such as the `pactl subscribe` it runs)."""
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(FileNotFoundError):
            found += [int(p) for p in (task / "children").read_text().split()]
    return found
