"""An audio stream the daemon keeps open: reopened with backoff after it stops or is moved, each loss logged once."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

from voicecoach.sound.audio import AudioError, InputStream, OutputStream

log = logging.getLogger(__name__)

# Waits between attempts to reopen a lost device: quick at first, then no faster than every 30 s.
BACKOFF_S = (1.0, 2.0, 5.0, 10.0, 30.0)
# Mic blocks are 100 ms; a stream that has delivered nothing for this long has stopped.
STALL_S = 3.0

S = TypeVar("S", bound=OutputStream | InputStream)


@dataclass
class KeptStream(Generic[S]):
    """One audio stream kept open, reopened with backoff after it stops; the loss is logged once.

    misplaced, if given, says what is wrong with where the open stream really is (None: nothing); a stream
    can be moved by the sound server while PortAudio sees it run on. It is asked after every opening, and
    while the stream runs whenever recheck is set."""

    name: str
    opener: Callable[[], S]
    progress: Callable[[S], int]
    misplaced: Callable[[], str | None] | None = None
    stream: S | None = None
    failures: int = 0
    retry_at: float = 0.0
    last_progress: int = -1
    last_moved: float = 0.0
    lost: bool = False
    recheck: bool = False
    # The last problem logged, so that retrying never logs the same thing twice.
    said: str = ""

    @property
    def up(self) -> bool:
        return self.stream is not None

    def check(self, now: float) -> str | None:
        """Returns "lost", "up" (opened the first time) or "back" (reopened after a loss) on a change.

        A stream whose audio thread hangs makes close() hang too; then the loop stops, the watchdog
        pings stop, and systemd restarts the service, which is what should happen."""
        if self.stream is not None:
            progress = self.progress(self.stream)
            if progress != self.last_progress:
                self.last_progress, self.last_moved = progress, now
            fault = None
            if not self.stream.active or now - self.last_moved >= STALL_S:
                fault = "stopped"
            elif self.recheck and self.misplaced is not None:
                fault = self.misplaced()
            self.recheck = False
            if fault is None:
                return None
            self.close()
            self.said = f"the {self.name} {fault}"
            log.warning("%s; trying to reopen it", self.said)
            self.retry_at = now
            self.lost = True
            return "lost"
        if now < self.retry_at:
            return None
        try:
            stream = self.opener()
            stream.__enter__()
            fault = self.misplaced() if self.misplaced is not None else None
            if fault is not None:
                stream.__exit__(None, None, None)
                raise AudioError(f"the {self.name} {fault}")
        except AudioError as exc:
            if self.failures == 0 and str(exc) != self.said:
                self.said = str(exc)
                log.error("%s; will keep trying", exc)
            self.lost = True
            self.retry_at = now + BACKOFF_S[min(self.failures, len(BACKOFF_S) - 1)]
            self.failures += 1
            return None
        self.stream, self.failures, self.last_progress, self.last_moved = stream, 0, -1, now
        self.recheck, self.said = False, ""
        log.info("the %s is up: %s", self.name, stream.device.name)
        back, self.lost = self.lost, False
        return "back" if back else "up"

    def close(self) -> None:
        if self.stream is not None:
            self.stream.__exit__(None, None, None)
            self.stream = None
