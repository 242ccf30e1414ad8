"""What can go wrong with the journal's file, and what is done about it: the errors a caller sees (unavailable:
the disk, the directory; busy: another process's write lock), a damaged file and what of it still reads, and a
journal that can only be read. voicecoach.training.journal decides when each applies.

A card that fails damages a page or two, not the whole file. So the rows that still read are saved into the new
journal: sessions and events by their ids, stepping past ids whose page cannot be read, and each saved session's
repetitions, one by one where the page holding them is damaged. Rows that read but make no sense (a time that is
not a time, an outcome the schema does not allow) are left out.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import logging
import os
import sqlite3
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from urllib.parse import quote

from voicecoach.errors import UserError

# Its lines are the journal's: the same logger as voicecoach.training.journal.
log = logging.getLogger("voicecoach.training.journal")

CORRUPT = ("SQLITE_CORRUPT", "SQLITE_NOTADB")
EMPTY = "the file is empty, 0 bytes"
# After a row that cannot be read, the scan tries the next ids, one each, and gives up after this many in a row:
# more than a damaged page or two of a journal holds.
MAX_SKIPPED_IDS = 5000
SESSION_COLUMNS = "id, exercise, planned_reps, hold_s, rest_s, started_at, ended_at, outcome"


# -- errors -----------------------------------------------------------------------------------------------------------


class JournalUnavailable(UserError):
    """The journal cannot be opened or written; sessions still run, with the journal off."""


class JournalBusy(JournalUnavailable):
    """Another process holds the journal's write lock (SQLite allows one writer at a time); it will free it."""


def is_busy(exc: BaseException) -> bool:
    return getattr(exc, "sqlite_errorname", "").startswith(("SQLITE_BUSY", "SQLITE_LOCKED"))


def is_read_only(exc: BaseException) -> bool:
    name = getattr(exc, "sqlite_errorname", "")
    code = getattr(exc, "errno", None)
    return name.startswith(("SQLITE_READONLY", "SQLITE_CANTOPEN", "SQLITE_PERM")) or code in (
        errno.EPERM,
        errno.EACCES,
        errno.EROFS,
    )


def _problem_and_fix(path: Path, exc: BaseException) -> tuple[str, str]:
    name = getattr(exc, "sqlite_errorname", "")
    code = getattr(exc, "errno", None)
    if name.startswith("SQLITE_FULL") or code in (errno.ENOSPC, errno.EDQUOT):
        return "the disk is full", "free some disk space"
    # SQLite reports a write refused for size (EFBIG) as an I/O error, like a dying SD card.
    if name.startswith("SQLITE_IOERR") or code in (errno.EFBIG, errno.EIO):
        return "writing to the disk failed: it may be full or failing", "free some disk space or check the disk"
    if is_read_only(exc):
        return "its directory is read-only or not accessible", f"make {path.parent} writable"
    return str(exc), f"check that {path.parent} is writable and has free space"


def unavailable(path: Path, exc: BaseException) -> JournalUnavailable:
    """The error to raise for exc, which failed the journal at path, saying what is wrong and what to do."""
    if is_busy(exc) or isinstance(exc, BlockingIOError):
        # Not the disk: a sqlite3 shell, a backup or another voicecoach command is writing, or stuck writing.
        return JournalBusy(
            f"the journal {path} is busy: another program holds its write lock; close it (a sqlite3 shell, a backup)"
            " or wait for it to finish, then try again"
        )
    problem, fix = _problem_and_fix(path, exc)
    return JournalUnavailable(
        f"the journal {path} cannot be written ({problem}); {fix} - until then sessions run with the journal off"
    )


def is_unavailable(exc: BaseException) -> bool:
    """The disk, the directory or the file failed, so the journal is off; anything else (a constraint) is a bug."""
    if isinstance(exc, sqlite3.OperationalError | OSError):
        return True
    return getattr(exc, "sqlite_errorname", "").startswith(CORRUPT)


# -- files ------------------------------------------------------------------------------------------------------------


def companions(path: Path) -> list[Path]:
    return [path.with_name(path.name + suffix) for suffix in ("-wal", "-shm")]


def emptied(path: Path) -> bool:
    """The file is there but holds nothing: a journal voicecoach made never is (its first step writes a page), so
    something truncated it. Its -wal would still be replayed, so a file with one is left to the integrity check."""
    wal = companions(path)[0]
    return path.is_file() and path.stat().st_size == 0 and not (wal.exists() and wal.stat().st_size)


def lock_free(path: Path) -> bool:
    """No live session holds the journal's lock file (a missing one included)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return True
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    finally:
        os.close(fd)
    return True


def read_only_connection(path: Path, version: int) -> sqlite3.Connection | None:
    """A connection that only reads the journal at path, which must pass the integrity check and be at the schema
    version; None where there is no journal to read."""
    if not path.exists() or emptied(path):
        if path.exists():
            log.warning("journal %s is empty (0 bytes); it cannot be replaced while it is read-only", path)
        return None
    uri = f"file:{quote(str(path.absolute()))}?mode=ro"
    wal, shm = companions(path)
    if not shm.exists() and not (wal.exists() and wal.stat().st_size):
        # SQLite reads a WAL journal through its -shm, which a read-only directory cannot get; without a -wal
        # to read there is nothing it would add, and nobody can be writing in a read-only directory.
        uri += "&immutable=1"
    conn = sqlite3.connect(uri, uri=True, isolation_level=None)
    try:
        problem = integrity_problem(conn)
        if problem is not None:
            raise JournalUnavailable(
                f"the journal {path} is damaged ({problem}) and cannot be repaired while it is read-only;"
                f" make {path.parent} writable and run this again"
            )
        found = conn.execute("PRAGMA user_version").fetchone()[0]
        if found != version:
            raise JournalUnavailable(
                f"the journal {path} has schema version {found}, and this voicecoach reads {version};"
                f" make {path.parent} writable so it can be brought up to date, or use the matching voicecoach"
            )
    except BaseException:
        conn.close()
        raise
    return conn


# -- damage -----------------------------------------------------------------------------------------------------------


def integrity_problem(conn: sqlite3.Connection) -> str | None:
    """What is wrong with the file in one line, or None when it passes SQLite's integrity check."""
    try:
        rows = conn.execute("PRAGMA integrity_check").fetchall()
    except sqlite3.DatabaseError as exc:
        if getattr(exc, "sqlite_errorname", "").startswith(CORRUPT):
            return str(exc)
        raise
    if rows == [("ok",)]:
        return None
    # SQLite reports one problem a line, under a "*** in database main ***" heading.
    lines = [line for row in rows for line in str(row[0]).splitlines() if line and not line.startswith("***")]
    more = f" and {len(lines) - 1} more problems" if len(lines) > 1 else ""
    return f"{lines[0]}{more}" if lines else "it fails SQLite's integrity check"


@dataclass
class Rows:
    """What could be read from a damaged journal, as rows of its tables."""

    sessions: list[tuple] = field(default_factory=list)
    reps: list[tuple] = field(default_factory=list)
    events: list[tuple] = field(default_factory=list)

    def describe(self) -> str:
        """The counts in words: "5 sessions, 38 repetitions and 1 event"."""
        counts = [(len(self.sessions), "session"), (len(self.reps), "repetition"), (len(self.events), "event")]
        words = [f"{n} {noun}{'' if n == 1 else 's'}" for n, noun in counts]
        return f"{', '.join(words[:-1])} and {words[-1]}"


class Recorded(StrEnum):
    """How a set ended, as the journal records it: the sessions table's outcome (its CHECK names the same)."""

    COMPLETED = "completed"
    STOPPED = "stopped"
    COULD_NOT_FINISH = "could_not_finish"
    # Set by the journal, never by a caller: a session cut off (a crash, a power cut).
    INTERRUPTED = "interrupted"


def _time(value: object) -> bool:
    if not isinstance(value, str):
        return False
    try:
        return datetime.fromisoformat(value).tzinfo is not None
    except ValueError:
        return False


def _session_ok(row: tuple) -> bool:
    _sid, exercise, planned, hold, rest, started, ended, outcome = row
    whole = all(isinstance(n, int) and n > 0 for n in (planned, hold, rest))
    finished = (ended is None or _time(ended)) and (outcome is None or outcome in set(Recorded))
    return isinstance(exercise, str) and whole and _time(started) and finished


def _rep_ok(row: tuple) -> bool:
    _sid, rep, hold, at = row
    return isinstance(rep, int) and isinstance(hold, int | float) and _time(at)


def _event_ok(row: tuple) -> bool:
    _id, kind, value, at = row
    return isinstance(kind, str) and isinstance(value, str) and _time(at)


def _by_id(conn: sqlite3.Connection, columns: str, table: str) -> list[tuple]:
    """The rows of a rowid table in id order, past pages that cannot be read."""
    rows: list[tuple] = []
    after, skipped = 0, 0
    while skipped <= MAX_SKIPPED_IDS:
        try:
            for row in conn.execute(f"SELECT {columns} FROM {table} WHERE id > ? ORDER BY id", (after,)):
                rows.append(row)
                after, skipped = row[0], 0
            return rows
        except sqlite3.DatabaseError:
            after, skipped = after + 1, skipped + 1
    return rows


def _reps_of(conn: sqlite3.Connection, sid: int, planned: int) -> list[tuple]:
    query = "SELECT session_id, rep, hold_s, completed_at FROM reps WHERE session_id = ?"
    try:
        return conn.execute(f"{query} ORDER BY rep", (sid,)).fetchall()
    except sqlite3.DatabaseError:
        found: list[tuple] = []
        for rep in range(1, planned + 1):
            with contextlib.suppress(sqlite3.DatabaseError):
                found += conn.execute(f"{query} AND rep = ?", (sid, rep)).fetchall()
        return found


def readable_rows(conn: sqlite3.Connection) -> Rows:
    """Every row of the damaged journal that still reads and makes sense; nothing if its schema does not read."""
    rows = Rows()
    rows.sessions = [r for r in _by_id(conn, SESSION_COLUMNS, "sessions") if _session_ok(r)]
    for session in rows.sessions:
        rows.reps += [r for r in _reps_of(conn, session[0], session[2]) if _rep_ok(r)]
    rows.events = [r for r in _by_id(conn, "id, kind, value, at", "events") if _event_ok(r)]
    return rows


def set_aside(conn: sqlite3.Connection, path: Path) -> tuple[Rows, Path]:
    """Read what still reads of the damaged journal, close it, and rename it and its -wal and -shm out of the way;
    the rows, and where the file now is."""
    rows = readable_rows(conn)
    conn.close()
    aside = path.with_name(f"{path.name}.corrupt-{datetime.now(UTC):%Y%m%dT%H%M%SZ}")
    for source, target in zip([path, *companions(path)], [aside, *companions(aside)], strict=True):
        if source.exists():
            source.rename(target)
    return rows, aside


def restore(conn: sqlite3.Connection, rows: Rows) -> Rows:
    """Write the rows into a new, empty journal in one transaction; the rows it took (the schema refuses some)."""
    taken = Rows()
    inserts = (
        (rows.sessions, taken.sessions, f"INSERT INTO sessions ({SESSION_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"),
        (rows.reps, taken.reps, "INSERT INTO reps (session_id, rep, hold_s, completed_at) VALUES (?, ?, ?, ?)"),
        (rows.events, taken.events, "INSERT INTO events (id, kind, value, at) VALUES (?, ?, ?, ?)"),
    )
    conn.execute("BEGIN IMMEDIATE")
    try:
        for source, kept, sql in inserts:
            for row in source:
                with contextlib.suppress(sqlite3.IntegrityError):
                    conn.execute(sql, row)
                    kept.append(row)
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    return taken


def report_repair(path: Path, problem: str, saved: Rows, aside: Path) -> None:
    """One line: what was wrong, what was saved, and where the damaged file is."""
    what = f"{saved.describe()} were saved into a new journal" if saved.sessions or saved.events else ""
    what = what or "nothing in it could be read, so a new journal was started"
    log.warning("journal %s is corrupt (%s): %s; the damaged file is kept as %s", path, problem, what, aside)
