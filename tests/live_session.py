"""`voicecoach ARGS` run live in a process of its own, its output read line by line: for the tests that drive a set
with a voice and read what it printed (the `live` fixture in conftest.py starts them). Imports nothing from pytest."""

from __future__ import annotations

import queue
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TextIO

from coach_command import voicecoach_command


class SessionEnded(AssertionError):
    """The process ended while a line was waited for."""


class LiveSession:
    """`voicecoach ARGS` in a process of its own; its stdout read line by line on a thread, its stderr copied to a
    file on another, each line with when it came (the live benchmark tells what was logged while she spoke)."""

    def __init__(self, args: list[str], env: dict[str, str], directory: Path) -> None:
        self.lines: list[str] = []
        # When each line arrived (time.monotonic()), and when the last line wait_line returned did.
        self.arrivals: list[float] = []
        self.last_arrival = 0.0
        self.logged: list[tuple[float, str]] = []
        self._new: queue.SimpleQueue[tuple[str, float] | None] = queue.SimpleQueue()
        self._stderr = directory / "stderr.txt"
        # Opened here, so that the file is there before the process writes a line.
        copy = self._stderr.open("w")
        self.process = subprocess.Popen(
            [*voicecoach_command(), *args],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            # A line that is not UTF-8 must not end the threads reading it (the file was read so before).
            errors="replace",
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        self._logger = threading.Thread(target=self._log, args=(copy,), daemon=True)
        self._logger.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for raw in self.process.stdout:
            self.arrivals.append(time.monotonic())
            # wait_line hands out the same line as self.lines holds: with its newline, a phrase compared whole
            # ("heard: 멈춤\n" against "멈춤") never matched, and the live benchmark counted heard commands as missed.
            line = raw.rstrip("\n")
            self.lines.append(line)
            self._new.put((line, self.arrivals[-1]))
        self._new.put(None)

    def _log(self, copy: TextIO) -> None:
        assert self.process.stderr is not None
        with copy as file:
            for raw in self.process.stderr:
                self.logged.append((time.monotonic(), raw.rstrip("\n")))
                file.write(raw)
                file.flush()

    def wait_line(self, wanted: Callable[[str], bool], timeout: float, what: str) -> str:
        """The next line printed that is wanted; TimeoutError if none comes in time."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                item = self._new.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                raise TimeoutError(f"{what} was not printed in {timeout:.0f} s") from None
            if item is None:
                raise SessionEnded(f"the session ended before {what} was printed: {self.explain()}")
            line, self.last_arrival = item
            if wanted(line):
                return line

    def stderr(self) -> str:
        if self.process.poll() is not None:
            # All it wrote, not what the copying thread had got to.
            self._logger.join(timeout=5)
        return self._stderr.read_text(errors="replace")

    def explain(self) -> str:
        return f"exit {self.process.poll()}; stdout:\n" + "\n".join(self.lines) + f"\nstderr:\n{self.stderr()}"

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        self._reader.join(timeout=5)
        self._logger.join(timeout=5)
