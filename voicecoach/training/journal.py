"""The training journal: every session and repetition in SQLite, crash-safe, private, and never sent anywhere.

Each completed repetition is its own commit (WAL, synchronous=FULL), so a power cut loses at most the repetition
in progress. A session still open when its process died is marked interrupted the next time the journal is opened.
Times are stored in UTC. A damaged file is kept aside and what still reads of it is saved into a new journal
(voicecoach.journal_faults); a journal that cannot be written raises JournalUnavailable, which a caller catches to
run with the journal off. Commands that only read open it with open_to_read, which reads a read-only one as it is.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import logging
import os
import sqlite3
import stat
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType

from voicecoach.training.journal_faults import (
    EMPTY,
    JournalUnavailable,
    Recorded,
    emptied,
    integrity_problem,
    is_busy,
    is_read_only,
    is_unavailable,
    lock_free,
    read_only_connection,
    report_repair,
    restore,
    set_aside,
    unavailable,
)

log = logging.getLogger(__name__)

# Migration n (1-based) brings the schema from version n-1 to n; PRAGMA user_version holds the version.
# A session row is one set: the engine plays one set per session. Multi-set sessions would add a table here.
MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE sessions (
        id INTEGER PRIMARY KEY,
        exercise TEXT NOT NULL,
        planned_reps INTEGER NOT NULL,
        hold_s INTEGER NOT NULL,
        rest_s INTEGER NOT NULL,
        started_at TEXT NOT NULL,
        ended_at TEXT,
        outcome TEXT CHECK (outcome IN ('completed', 'stopped', 'could_not_finish', 'interrupted'))
    );
    CREATE INDEX sessions_by_start ON sessions (started_at);
    CREATE TABLE reps (
        session_id INTEGER NOT NULL REFERENCES sessions (id),
        rep INTEGER NOT NULL,
        hold_s REAL NOT NULL,
        completed_at TEXT NOT NULL,
        PRIMARY KEY (session_id, rep)
    ) WITHOUT ROWID;
    CREATE TABLE events (
        id INTEGER PRIMARY KEY,
        kind TEXT NOT NULL,
        value TEXT NOT NULL,
        at TEXT NOT NULL
    );
    CREATE INDEX events_by_kind ON events (kind, at);
    """,
)

FILE_MODE = 0o600
DIR_MODE = 0o700
# Waiting this long for another process (the daemon, a CLI command) to finish its write is normal;
# longer means something is stuck.
BUSY_TIMEOUT_S = 5.0


@dataclass(frozen=True)
class Rep:
    rep: int
    hold_s: float
    completed_at: datetime


@dataclass(frozen=True)
class SessionRecord:
    """One session (one set) as stored, with its completed repetitions in order."""

    id: int
    exercise: str
    planned_reps: int
    hold_s: int
    rest_s: int
    started_at: datetime
    ended_at: datetime | None
    outcome: Recorded | None
    reps: tuple[Rep, ...]

    @property
    def reps_done(self) -> int:
        return len(self.reps)


@dataclass(frozen=True)
class Event:
    """Something decided about the training (a step accepted, a question asked or answered)."""

    kind: str
    value: str
    at: datetime


def _utc_text(when: datetime) -> str:
    if when.tzinfo is None:
        # A naive time would be stored as if it were UTC and shown hours off; that is a caller bug.
        raise ValueError(f"journal times must carry a time zone, got naive {when.isoformat()}")
    return when.astimezone(UTC).isoformat(timespec="microseconds")


def _from_text(text: str | None) -> datetime | None:
    return None if text is None else datetime.fromisoformat(text)


def _private_dir(directory: Path) -> None:
    directory.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
    mode = directory.stat().st_mode
    # A sticky, shared directory such as /tmp is not ours to lock down; anything else holding the journal is.
    if stat.S_IMODE(mode) != DIR_MODE and not mode & stat.S_ISVTX:
        directory.chmod(DIR_MODE)


def _private_file(path: Path) -> None:
    """Create the file 0600 before SQLite does, since SQLite copies the database's mode to its -wal and -shm."""
    os.close(os.open(path, os.O_RDWR | os.O_CREAT, FILE_MODE))
    if stat.S_IMODE(path.stat().st_mode) != FILE_MODE:
        path.chmod(FILE_MODE)


class Journal:
    """An open journal. Use it from one thread; every method returns plain values."""

    # How long a write waits for another process's write lock before it gives up.
    busy_timeout_s = BUSY_TIMEOUT_S

    def __init__(self, path: Path, conn: sqlite3.Connection, read_only: bool = False) -> None:
        self.path = path
        self.read_only = read_only
        self._conn = conn
        self._lock_fd: int | None = None
        self._open_sessions: set[int] = set()
        # Read-only, sessions that a dead process left open are shown as the next writable open will mark them.
        self._unmarked = read_only and lock_free(self._lock_path())

    @classmethod
    def open(cls, path: Path) -> Journal:
        """Open (creating, migrating, checking and if need be replacing) the journal at path."""
        created = False
        try:
            created = not path.exists()
            return cls._open(path)
        except (sqlite3.OperationalError, OSError) as exc:
            # A file this open made and could not write to would be taken for a truncated journal next time.
            with contextlib.suppress(OSError):
                if created and emptied(path):
                    path.unlink()
            raise unavailable(path, exc) from exc

    @classmethod
    def open_to_read(cls, path: Path) -> Journal:
        """For commands that only read: open() where the journal can be written, else the journal read as it is
        (not marked, migrated or repaired), or an empty one where there is none. Writes to it are refused."""
        try:
            return cls.open(path)
        except JournalUnavailable as exc:
            if not is_read_only(exc.__cause__ or exc):
                raise
        try:
            conn = read_only_connection(path, len(MIGRATIONS))
        except (sqlite3.OperationalError, OSError) as exc:
            raise unavailable(path, exc) from exc
        if conn is None:  # nothing to read: an empty journal, in memory
            conn = sqlite3.connect(":memory:", isolation_level=None)
            Journal(path, conn)._migrate()
        return cls(path, conn, read_only=True)

    @classmethod
    def _open(cls, path: Path) -> Journal:
        _private_dir(path.parent)
        was_emptied = emptied(path)
        _private_file(path)
        # Autocommit: every write below is its own transaction, committed before the call returns.
        conn = sqlite3.connect(path, timeout=cls.busy_timeout_s, isolation_level=None)
        try:
            problem = EMPTY if was_emptied else integrity_problem(conn)
            if problem is not None:
                rows, aside = set_aside(conn, path)
                _private_file(path)
                conn = sqlite3.connect(path, timeout=cls.busy_timeout_s, isolation_level=None)
            if conn.execute("PRAGMA journal_mode = WAL").fetchone()[0] != "wal":
                raise sqlite3.OperationalError("the journal cannot use write-ahead logging here")
            conn.execute("PRAGMA synchronous = FULL")
            conn.execute("PRAGMA foreign_keys = ON")
            journal = cls(path, conn)
            journal._migrate()
            if problem is not None:
                report_repair(path, problem, restore(conn, rows), aside)
            journal._mark_interrupted()
        except BaseException:
            conn.close()
            raise
        return journal

    def _migrate(self) -> None:
        version = self._conn.execute("PRAGMA user_version").fetchone()[0]
        if version > len(MIGRATIONS):
            raise JournalUnavailable(
                f"the journal {self.path} has schema version {version}, newer than this voicecoach knows"
                f" ({len(MIGRATIONS)}); upgrade voicecoach - until then sessions run with the journal off"
            )
        for number in range(version + 1, len(MIGRATIONS) + 1):
            try:
                self._conn.executescript(
                    f"BEGIN IMMEDIATE; {MIGRATIONS[number - 1]}; PRAGMA user_version = {number}; COMMIT;"
                )
            except BaseException:
                if self._conn.in_transaction:
                    self._conn.execute("ROLLBACK")
                raise

    def _lock_path(self) -> Path:
        return self.path.with_name(self.path.name + ".lock")

    def _mark_interrupted(self) -> None:
        """Mark sessions left open by a dead process. A live session holds a shared lock, so it is left alone."""
        fd = os.open(self._lock_path(), os.O_RDWR | os.O_CREAT, FILE_MODE)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return
            self._conn.execute(
                """
                UPDATE sessions SET outcome = 'interrupted',
                    ended_at = COALESCE((SELECT MAX(completed_at) FROM reps WHERE session_id = sessions.id), started_at)
                WHERE outcome IS NULL
                """
            )
        except sqlite3.OperationalError as exc:
            # Another process is writing: this bookkeeping is left to the next open.
            if not is_busy(exc):
                raise
        finally:
            os.close(fd)

    # -- writing ---------------------------------------------------------------------------

    def _write(self, sql: str, params: tuple[object, ...]) -> sqlite3.Cursor:
        """One statement, one durable commit (autocommit mode, WAL, synchronous=FULL)."""
        if self.read_only:
            raise unavailable(self.path, OSError(errno.EROFS, "read-only"))
        try:
            return self._conn.execute(sql, params)
        except (sqlite3.DatabaseError, OSError) as exc:
            if is_unavailable(exc):
                raise unavailable(self.path, exc) from exc
            raise

    def start_session(
        self, exercise_key: str, planned_reps: int, hold_s: int, rest_s: int, started_at: datetime
    ) -> int:
        """Record the start of a session and return its id."""
        if self._lock_fd is None:
            # Shared: several live sessions may hold it; only an open with no live session takes it exclusively.
            try:
                self._lock_fd = os.open(self._lock_path(), os.O_RDWR | os.O_CREAT, FILE_MODE)
                fcntl.flock(self._lock_fd, fcntl.LOCK_SH | (0 if self.busy_timeout_s else fcntl.LOCK_NB))
            except OSError as exc:
                self._release_lock()
                raise unavailable(self.path, exc) from exc
        cursor = self._write(
            "INSERT INTO sessions (exercise, planned_reps, hold_s, rest_s, started_at) VALUES (?, ?, ?, ?, ?)",
            (exercise_key, planned_reps, hold_s, rest_s, _utc_text(started_at)),
        )
        sid = int(cursor.lastrowid or 0)
        self._open_sessions.add(sid)
        return sid

    def record_rep(self, sid: int, rep: int, hold_s: float, completed_at: datetime) -> None:
        """Record a completed repetition; it is on disk when this returns. A redone repetition replaces the first."""
        self._write(
            """
            INSERT INTO reps (session_id, rep, hold_s, completed_at) VALUES (?, ?, ?, ?)
            ON CONFLICT (session_id, rep) DO UPDATE SET hold_s = excluded.hold_s, completed_at = excluded.completed_at
            """,
            (sid, rep, hold_s, _utc_text(completed_at)),
        )

    def finish_session(self, sid: int, outcome: Recorded | str, ended_at: datetime) -> None:
        """Record how a session ended: completed, stopped, or could_not_finish ("orkar inte")."""
        result = recorded(outcome)
        self._write(
            "UPDATE sessions SET outcome = ?, ended_at = ? WHERE id = ?", (str(result), _utc_text(ended_at), sid)
        )
        self._open_sessions.discard(sid)
        if not self._open_sessions:
            self._release_lock()

    def record_event(self, kind: str, value: str, at: datetime) -> None:
        """Record a decision about the training, such as an accepted step or an answered question."""
        self._write("INSERT INTO events (kind, value, at) VALUES (?, ?, ?)", (kind, value, _utc_text(at)))

    # -- reading ---------------------------------------------------------------------------

    def _read(self, sql: str, params: tuple[object, ...]) -> list[tuple]:
        try:
            return self._conn.execute(sql, params).fetchall()
        except (sqlite3.DatabaseError, OSError) as exc:
            if is_unavailable(exc):
                raise unavailable(self.path, exc) from exc
            raise

    def sessions(self, since: datetime | None = None) -> list[SessionRecord]:
        """Sessions started at or after since (all when None), oldest first, with their repetitions."""
        floor = _utc_text(since) if since is not None else ""
        rows = self._read(
            "SELECT id, exercise, planned_reps, hold_s, rest_s, started_at, ended_at, outcome"
            " FROM sessions WHERE started_at >= ? ORDER BY started_at, id",
            (floor,),
        )
        reps: dict[int, list[Rep]] = {}
        for sid, rep, hold, at in self._read(
            "SELECT r.session_id, r.rep, r.hold_s, r.completed_at FROM reps r JOIN sessions s ON s.id = r.session_id"
            " WHERE s.started_at >= ? ORDER BY r.session_id, r.rep",
            (floor,),
        ):
            reps.setdefault(sid, []).append(Rep(rep=rep, hold_s=hold, completed_at=datetime.fromisoformat(at)))
        records = [
            SessionRecord(
                id=sid,
                exercise=exercise,
                planned_reps=planned,
                hold_s=hold,
                rest_s=rest,
                started_at=datetime.fromisoformat(started),
                ended_at=_from_text(ended),
                outcome=Recorded(outcome) if outcome else None,
                reps=tuple(reps.get(sid, ())),
            )
            for sid, exercise, planned, hold, rest, started, ended, outcome in rows
        ]
        # Read-only, what _mark_interrupted would have written.
        return [_interrupted(r) if self._unmarked and r.outcome is None else r for r in records]

    def events(self) -> list[Event]:
        """Every recorded event, oldest first."""
        rows = self._read("SELECT kind, value, at FROM events ORDER BY at, id", ())
        return [Event(kind=kind, value=value, at=datetime.fromisoformat(at)) for kind, value, at in rows]

    def integrity_ok(self) -> bool:
        return integrity_problem(self._conn) is None

    def schema_version(self) -> int:
        return int(self._conn.execute("PRAGMA user_version").fetchone()[0])

    # -- closing ---------------------------------------------------------------------------

    def _release_lock(self) -> None:
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    def close(self) -> None:
        """Close the journal; a session not finished by now stays open and is marked interrupted at the next open."""
        self._conn.close()
        self._release_lock()

    def __enter__(self) -> Journal:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


def _interrupted(record: SessionRecord) -> SessionRecord:
    ended = max((r.completed_at for r in record.reps), default=record.started_at)
    return replace(record, outcome=Recorded.INTERRUPTED, ended_at=ended)


def recorded(outcome: Recorded | str) -> Recorded:
    """How a caller may end a session; interrupted is for the journal to set."""
    if str(outcome) == Recorded.INTERRUPTED:
        raise ValueError("interrupted is set by the journal for sessions cut off, not by a caller")
    return Recorded(str(outcome))
