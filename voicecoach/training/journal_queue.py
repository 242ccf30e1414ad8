"""The journal as the daemon and a live session write it, on the event loop: a write never waits for the lock.

SQLite lets one connection write at a time. When another process holds the write lock (a sqlite3 shell left in a
transaction, a backup, `voicecoach progress --accept`), a plain Journal waits up to its busy timeout, then gives up.
On the event loop that wait stopped the watchdog, the control socket and the cues for 5 s, and giving up switched
the journal off: the rest of the set was lost and the session stayed open. Here each write is tried at once (busy
timeout 0). One the lock refuses is held in memory, in order with every write after it, and the held writes are
tried again every RETRY_S on the event loop, and before any new write, until the lock is free; the set goes on
meanwhile. Writes still held when the journal is closed, after waiting CLOSE_WAIT_S for the lock, are lost and said
so; their session is then marked interrupted at the next open, as after a power cut.

A session started while the lock is held has a stand-in id (negative) until its row is written.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from collections import deque
from datetime import datetime
from pathlib import Path
from typing import Any

from voicecoach.training.journal import BUSY_TIMEOUT_S, Journal, Recorded, recorded
from voicecoach.training.journal_faults import JournalBusy, JournalUnavailable

log = logging.getLogger(__name__)

RETRY_S = 1.0
# At the end no loop goes on to retry: wait as long as any other command would.
CLOSE_WAIT_S = BUSY_TIMEOUT_S


class QueuedJournal(Journal):
    """A Journal whose writes never wait for another process's write lock; use it from the event loop's thread."""

    busy_timeout_s = 0.0

    def __init__(self, path: Path, conn: sqlite3.Connection, read_only: bool = False) -> None:
        super().__init__(path, conn, read_only)
        self._held: deque[tuple[str, tuple[Any, ...]]] = deque()
        # Stand-in session ids, and the journal's ids for them once written.
        self._ids: dict[int, int] = {}
        self._stand_ins = 0
        self._retry: asyncio.TimerHandle | None = None
        self._waiting = False

    @property
    def held(self) -> int:
        """How many writes are held in memory, waiting for the lock."""
        return len(self._held)

    def start_session(
        self, exercise_key: str, planned_reps: int, hold_s: int, rest_s: int, started_at: datetime
    ) -> int:
        """Record the start of a session; its id, or a stand-in for it while the lock is held."""
        self._stand_ins -= 1
        stand_in = self._stand_ins
        self._hold("start_session", (stand_in, exercise_key, planned_reps, hold_s, rest_s, started_at))
        return self._ids.pop(stand_in, stand_in)

    def record_rep(self, sid: int, rep: int, hold_s: float, completed_at: datetime) -> None:
        """Record a repetition: on disk when this returns, unless another process holds the lock."""
        self._hold("record_rep", (sid, rep, hold_s, completed_at))

    def finish_session(self, sid: int, outcome: Recorded | str, ended_at: datetime) -> None:
        self._hold("finish_session", (sid, recorded(outcome), ended_at))

    def record_event(self, kind: str, value: str, at: datetime) -> None:
        self._hold("record_event", (kind, value, at))

    def _hold(self, method: str, args: tuple[Any, ...]) -> None:
        self._held.append((method, args))
        if not self._write_held():
            self._schedule_retry()

    def _write_held(self) -> bool:
        """Write what is held, in order; False when the lock stopped it. Other failures are raised."""
        written = 0
        while self._held:
            method, args = self._held[0]
            try:
                self._write_one(method, args)
            except JournalBusy:
                if not self._waiting:
                    self._waiting = True
                    log.warning(
                        "the journal %s is busy: another program holds its write lock; what is recorded meanwhile"
                        " is kept in memory and written when it is free",
                        self.path,
                    )
                return False
            except Exception:
                # Not the lock: this write is refused for good (a full disk, a caller's bad value), as Journal
                # refuses it, and the writes after it go on.
                self._held.popleft()
                raise
            self._held.popleft()
            written += 1
        if self._waiting:
            self._waiting = False
            log.info("the journal %s is free again: wrote the %d entries kept in memory", self.path, written)
        return True

    def _write_one(self, method: str, args: tuple[Any, ...]) -> None:
        if method == "start_session":
            stand_in, *rest = args
            self._ids[stand_in] = super().start_session(*rest)
        elif method == "record_event":
            super().record_event(*args)
        else:
            sid, *rest = args
            getattr(super(), method)(self._ids.get(sid, sid), *rest)

    def _schedule_retry(self) -> None:
        if self._retry is not None:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return  # no loop: the next write, or close, tries again
        self._retry = loop.call_later(RETRY_S, self._on_retry)

    def _on_retry(self) -> None:
        self._retry = None
        try:
            if not self._write_held():
                self._schedule_retry()
        except JournalUnavailable as exc:
            # Not the lock (the disk, say): the next write raises it to its caller, which turns the journal off.
            log.error("%s", exc)

    def close(self) -> None:
        if self._retry is not None:
            self._retry.cancel()
            self._retry = None
        why = "another program holds its write lock"
        if self._held:
            self._conn.execute(f"PRAGMA busy_timeout = {round(CLOSE_WAIT_S * 1000)}")
            try:
                self._write_held()
            except (JournalUnavailable, sqlite3.Error) as exc:
                why = str(exc)
        if self._held:
            reps = sum(method == "record_rep" for method, _args in self._held)
            others = len(self._held) - reps
            log.error(
                "the journal %s could not be written before it closed: %d repetition%s and %d other entr%s kept in"
                " memory are lost (%s)",
                self.path,
                reps,
                "" if reps == 1 else "s",
                others,
                "y" if others == 1 else "ies",
                why,
            )
        super().close()
