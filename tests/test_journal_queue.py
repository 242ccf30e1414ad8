"""A journal that never waits for SQLite's write lock: another process holding it (here a real second connection in
a write transaction, as a sqlite3 shell or a backup would) holds the writes in memory, and they are written, in
order and all of them, once it is free."""

from __future__ import annotations

import asyncio
import fcntl
import logging
import os
import sqlite3
from collections.abc import Iterator
from contextlib import closing, contextmanager
from datetime import timedelta
from pathlib import Path

import pytest
from conftest import one_error_line
from test_daemon_conversation import confident_days
from test_journal import T0

from voicecoach import config, paths
from voicecoach.cli.main import main
from voicecoach.training import journal_queue
from voicecoach.training.journal import Journal, Recorded
from voicecoach.training.journal_queue import QueuedJournal

# Only a guard against a hang: the retry comes long before.
HANG_S = 30.0


@pytest.fixture
def path(tmp_path: Path) -> Path:
    path = tmp_path / "state" / "journal.sqlite3"
    Journal.open(path).close()
    return path


@contextmanager
def write_lock(path: Path) -> Iterator[sqlite3.Connection]:
    """Another connection in the middle of a write transaction: it holds the journal's write lock until it ends."""
    with closing(sqlite3.connect(path, isolation_level=None)) as other:
        other.execute("BEGIN IMMEDIATE")
        other.execute("INSERT INTO events (kind, value, at) VALUES ('other', 'program', '2024-05-01T08:00:00+00:00')")
        try:
            yield other
        finally:
            if other.in_transaction:
                other.execute("ROLLBACK")


def stored(path: Path) -> list[tuple[object, ...]]:
    """Each session as another reader sees it: (id, outcome, its rep numbers)."""
    with closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as conn:
        sessions = conn.execute("SELECT id, outcome FROM sessions ORDER BY id").fetchall()
        reps = "SELECT rep FROM reps WHERE session_id = ? ORDER BY rep"
        return [(sid, outcome, [r for (r,) in conn.execute(reps, (sid,))]) for sid, outcome in sessions]


def a_set(journal: Journal, reps: range, finish: bool = True) -> int:
    sid = journal.start_session("strength", 10, 5, 5, T0)
    for rep in reps:
        journal.record_rep(sid, rep, 5.0, T0 + timedelta(seconds=10 * rep))
    if finish:
        journal.finish_session(sid, "completed", T0 + timedelta(minutes=3))
    return sid


def test_writes_while_another_process_holds_the_lock_are_held_then_written_in_order(path: Path) -> None:
    with QueuedJournal.open(path) as journal:
        first = a_set(journal, range(1, 3), finish=False)
        with write_lock(path):
            for rep in range(3, 11):
                journal.record_rep(first, rep, 5.0, T0 + timedelta(seconds=10 * rep))
            journal.finish_session(first, "completed", T0 + timedelta(minutes=3))
            # A whole set started and ended while the lock is held, with an answer after it.
            second = a_set(journal, range(1, 4))
            journal.record_event("advanced", "speed", T0)
            assert journal.held == 8 + 1 + 5 + 1
            assert stored(path) == [(first, None, [1, 2])]
        # The next write finds the lock free and writes everything held first.
        journal.record_event("declined", "maintenance", T0)
        assert journal.held == 0
        assert [(e.kind, e.value) for e in journal.events()] == [("advanced", "speed"), ("declined", "maintenance")]
    (_, done, reps), (real, also_done, more) = stored(path)
    assert (done, reps) == ("completed", list(range(1, 11)))
    # The set started under the lock had a stand-in id; its rows carry the one the journal gave it.
    assert second < 0 < real
    assert (also_done, more) == ("completed", [1, 2, 3])


def test_the_held_writes_are_written_by_a_retry_once_the_lock_is_free(path: Path) -> None:
    async def run() -> None:
        with QueuedJournal.open(path) as journal, write_lock(path) as other:
            sid = a_set(journal, range(1, 6))
            assert journal.held == 7
            asyncio.get_running_loop().call_later(0.1, other.execute, "COMMIT")
            async with asyncio.timeout(HANG_S):
                while journal.held:
                    await asyncio.sleep(0.05)
            assert sid < 0
            assert stored(path) == [(1, "completed", [1, 2, 3, 4, 5])]

    asyncio.run(run())


def test_a_write_refused_for_another_reason_is_raised_and_the_next_ones_go_on(path: Path) -> None:
    with QueuedJournal.open(path) as journal:
        sid = journal.start_session("strength", 10, 5, 5, T0)
        with pytest.raises(ValueError, match="time zone"):
            journal.record_rep(sid, 1, 5.0, T0.replace(tzinfo=None))
        journal.record_rep(sid, 2, 5.0, T0)
        assert journal.held == 0
    assert stored(path) == [(sid, None, [2])]


def test_the_journal_never_waits_for_the_lock(path: Path) -> None:
    with QueuedJournal.open(path) as journal:
        # SQLite gives up at once, rather than wait for the lock on the caller's thread.
        assert journal._conn.execute("PRAGMA busy_timeout").fetchone()[0] == 0
        # Nor does it wait for the journal's own lock file, held exclusively while an open marks cut-off sessions.
        fd = os.open(path.with_name(path.name + ".lock"), os.O_RDWR)
        fcntl.flock(fd, fcntl.LOCK_EX)
        try:
            sid = journal.start_session("speed", 10, 3, 3, T0)
        finally:
            os.close(fd)
        assert sid < 0 and journal.held == 1
        journal.record_rep(sid, 1, 3.0, T0)
        assert journal.held == 0


def test_the_log_names_the_lock_once_and_the_end_of_it_not_the_disk(
    path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="voicecoach"), QueuedJournal.open(path) as journal:
        with write_lock(path):
            a_set(journal, range(1, 4))
        journal.record_event("advanced", "speed", T0)
    messages = [(r.levelname, r.getMessage()) for r in caplog.records]
    assert messages == [
        (
            "WARNING",
            f"the journal {path} is busy: another program holds its write lock; what is recorded meanwhile is kept"
            " in memory and written when it is free",
        ),
        ("INFO", f"the journal {path} is free again: wrote the 6 entries kept in memory"),
    ]


def test_closing_while_still_locked_waits_then_says_what_was_not_written(
    path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(journal_queue, "CLOSE_WAIT_S", 0.05)
    journal = QueuedJournal.open(path)
    first = a_set(journal, range(1, 2), finish=False)
    with write_lock(path):
        journal.record_rep(first, 2, 5.0, T0)
        journal.finish_session(first, "stopped", T0)
        journal.close()
    (record,) = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert record.getMessage() == (
        f"the journal {path} could not be written before it closed: 1 repetition and 1 other entry kept in memory"
        " are lost (another program holds its write lock)"
    )
    with Journal.open(path) as reopened:
        (session,) = reopened.sessions()
    assert (session.outcome, session.reps_done) == (Recorded.INTERRUPTED, 1)


def test_progress_accept_on_a_busy_journal_names_the_lock(
    state_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(config, "SYSTEM_FILE", tmp_path / "etc" / "config.toml")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    # A command may wait for the lock, but not for the whole of a test.
    monkeypatch.setattr(Journal, "busy_timeout_s", 0.05)
    # Three confident days: there is a step to accept, and accepting it writes.
    confident_days(state_dir)
    with write_lock(paths.journal_path(state_dir)):
        assert main(["progress", "--accept"]) == 1
    line = one_error_line(capsys)
    assert "is busy: another program holds its write lock" in line
    assert "disk" not in line and "space" not in line
