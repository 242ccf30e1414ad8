"""The journal when its file is damaged or cannot be written: an empty (0-byte) file is damage, one damaged page
loses only what it held (the rest is saved into a new journal), and a read-only state directory can still be read.

Damage is made the way a disk makes it, by overwriting bytes of a real journal file; a read-only directory is made
with the immutable flag or a read-only bind mount (both need root), and skipped with the reason where neither can
be had."""

from __future__ import annotations

import logging
import os
import random
import shutil
import sqlite3
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, closing, contextmanager
from datetime import timedelta
from pathlib import Path

import pytest
from test_journal import T0, read_only, run_child

from voicecoach.training.journal import Journal, JournalUnavailable, Recorded

PAGE = 4096


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "state" / "journal.sqlite3"


def fill(path: Path, sessions: int, reps: int = 10) -> dict[int, list[int]]:
    """A journal of completed sessions, checkpointed into the main file; each session id with its rep numbers."""
    stored: dict[int, list[int]] = {}
    with Journal.open(path) as journal:
        for n in range(sessions):
            started = T0 + timedelta(days=n)
            sid = journal.start_session("strength", reps, 5, 5, started)
            for rep in range(1, reps + 1):
                journal.record_rep(sid, rep, 5.0, started + timedelta(seconds=10 * rep))
            journal.finish_session(sid, "completed", started + timedelta(minutes=3))
            stored[sid] = list(range(1, reps + 1))
        journal.record_event("advanced", "speed", T0)
        journal._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return stored


def pages_of(path: Path, table: str) -> list[int]:
    """The page numbers (1-based) of a table's b-tree in tree order: the root, then (in a two-level tree) the leaves
    in key order. From SQLite's dbstat table."""
    # Closed at once: SQLite keeps a file open while another connection of this process has it open.
    with closing(sqlite3.connect(path)) as conn:
        try:
            rows = conn.execute("SELECT pageno FROM dbstat WHERE name = ? ORDER BY path", (table,)).fetchall()
        except sqlite3.OperationalError:
            pytest.skip("this SQLite is built without the dbstat table, which finds a table's pages")
    return [page for (page,) in rows]


def damage(path: Path, page: int, start: int = 0, length: int = PAGE, seed: int = 1) -> None:
    """Overwrite part of one page with noise, as a failing card does."""
    data = bytearray(path.read_bytes())
    at = (page - 1) * PAGE + start
    data[at : at + length] = random.Random(seed).randbytes(length)
    path.write_bytes(bytes(data))


def warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]


def aside_of(path: Path) -> Path:
    (aside,) = path.parent.glob(f"{path.name}.corrupt-*")
    return aside


# -- an empty file --------------------------------------------------------------------------------------------------


def test_a_zero_byte_journal_is_reported_like_other_damage(path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path.parent.mkdir(mode=0o700)
    path.write_bytes(b"")
    with caplog.at_level(logging.WARNING), Journal.open(path) as journal:
        assert journal.sessions() == []
    (message,) = warnings(caplog)
    aside = aside_of(path)
    assert message == (
        f"journal {path} is corrupt (the file is empty, 0 bytes): nothing in it could be read, so a new journal"
        f" was started; the damaged file is kept as {aside}"
    )


def test_an_open_that_failed_leaves_no_empty_file_to_be_called_damaged(
    path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # A file-size limit of 0 fails the first write of a new journal (as a full disk does), after the file was made.
    script = (
        "import resource, sys; resource.setrlimit(resource.RLIMIT_FSIZE, (0, 0)); from voicecoach.cli.main import main"
    )
    env = {**os.environ, "VOICECOACH_STATE_DIR": str(path.parent)}
    done = subprocess.run(
        [sys.executable, "-c", f"{script}; sys.exit(main(['history']))"], env=env, capture_output=True, text=True
    )
    assert done.returncode == 1 and "it may be full or failing" in done.stderr, done.stderr
    with caplog.at_level(logging.WARNING), Journal.open(path):
        pass
    assert warnings(caplog) == []
    assert list(path.parent.glob("*.corrupt-*")) == []


# -- one damaged page -----------------------------------------------------------------------------------------------


def test_a_damaged_page_of_the_reps_table_keeps_the_sessions_and_the_damaged_file(
    path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    fill(path, 5)
    (reps_page,) = pages_of(path, "reps")
    # The cells at the end of the page: SQLite's integrity check reports this in eight lines.
    damage(path, reps_page, start=2000, length=500, seed=2)
    with caplog.at_level(logging.WARNING), Journal.open(path) as journal:
        sessions = journal.sessions()
        events = journal.events()
        assert journal.integrity_ok()
    assert [(s.outcome, s.started_at) for s in sessions] == [
        (Recorded.COMPLETED, T0 + timedelta(days=n)) for n in range(5)
    ]
    assert [(e.kind, e.value) for e in events] == [("advanced", "speed")]
    # Each repetition kept is one that was recorded, in its place.
    for s in sessions:
        assert [r.rep for r in s.reps] == sorted({r.rep for r in s.reps})
        assert all(r.completed_at == s.started_at + timedelta(seconds=10 * r.rep) for r in s.reps)
    (message,) = warnings(caplog)
    assert "\n" not in message
    assert message.startswith(f"journal {path} is corrupt (")
    kept = sum(s.reps_done for s in sessions)
    assert f": 5 sessions, {kept} repetitions and 1 event were saved into a new journal;" in message
    assert message.endswith(f"the damaged file is kept as {aside_of(path)}")
    assert aside_of(path).stat().st_size > 0


def test_a_damaged_leaf_loses_only_the_rows_it_held(path: Path, caplog: pytest.LogCaptureFixture) -> None:
    stored = fill(path, 200)
    reps_leaves = pages_of(path, "reps")[1:]
    sessions_leaves = pages_of(path, "sessions")[1:]
    assert len(reps_leaves) > 10 and len(sessions_leaves) > 2
    # The first sessions, and the repetitions of the last ones.
    damage(path, sessions_leaves[0], seed=3)
    damage(path, reps_leaves[-1])
    with caplog.at_level(logging.WARNING), Journal.open(path) as journal:
        sessions = {s.id: s for s in journal.sessions()}
    # The sessions of the undamaged leaves are all there, each with the repetitions that were not on the lost page.
    assert 0 < len(sessions) < len(stored)
    assert max(sessions) == max(stored)
    lost = [sid for sid, s in sessions.items() if [r.rep for r in s.reps] != stored[sid]]
    assert 0 < len(lost) < len(sessions) / 2
    assert len(warnings(caplog)) == 1


def test_history_after_one_damaged_page_is_the_sessions_and_one_line(path: Path) -> None:
    fill(path, 5)
    damage(path, pages_of(path, "reps")[0], start=2000, length=500, seed=2)
    env = {**os.environ, "VOICECOACH_STATE_DIR": str(path.parent), "TZ": "UTC"}
    done = subprocess.run([sys.executable, "-m", "voicecoach", "history"], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert len(done.stdout.splitlines()) == 1 + 5
    (line,) = done.stderr.splitlines()
    assert line.startswith(f"voicecoach: WARNING: journal {path} is corrupt (")


# -- a read-only state directory -------------------------------------------------------------------------------------


@contextmanager
def read_only_mount(directory: Path) -> Iterator[None]:
    """A read-only bind mount of the directory over itself: every write in it fails with EROFS, for root too."""
    if (
        shutil.which("mount") is None
        or subprocess.run(
            ["mount", "--bind", "-o", "ro", str(directory), str(directory)], capture_output=True
        ).returncode
    ):
        pytest.skip("cannot bind-mount here (needs root with CAP_SYS_ADMIN)")
    try:
        yield
    finally:
        busy = subprocess.run(["umount", str(directory)], capture_output=True, text=True)
        if busy.returncode:
            # Detached all the same, so no mount outlives the test; what held it open is a bug.
            subprocess.run(["umount", "--lazy", str(directory)], check=True)
            pytest.fail(f"the read-only mount was still in use: {busy.stderr.strip()}")


READ_ONLY: dict[str, Callable[[Path], AbstractContextManager[None]]] = {
    "immutable": read_only,
    "ro-mount": read_only_mount,
}


@pytest.fixture(params=list(READ_ONLY))
def made_read_only(request: pytest.FixtureRequest) -> Callable[[Path], AbstractContextManager[None]]:
    return READ_ONLY[request.param]


def test_a_read_only_journal_is_read_as_it_is(path: Path, made_read_only) -> None:
    stored = fill(path, 3)
    with made_read_only(path.parent), Journal.open_to_read(path) as journal:
        assert {s.id: [r.rep for r in s.reps] for s in journal.sessions()} == stored
        assert [e.value for e in journal.events()] == ["speed"]
        with pytest.raises(JournalUnavailable, match="read-only"):
            journal.record_event("advanced", "endurance", T0)


LIVE_WRITER = """
import sys, time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from voicecoach.training.journal import Journal

t0 = datetime(2024, 5, 10, 8, 0, tzinfo=UTC)
journal = Journal.open(Path(sys.argv[1]))
sid = journal.start_session("speed", 10, 3, 3, t0)
journal.record_rep(sid, 1, 3.0, t0 + timedelta(seconds=5))
print(sid, flush=True)
time.sleep(3600)
"""


@contextmanager
def live_writer(path: Path) -> Iterator[int]:
    """Another process in the middle of a set: it holds the journal open, its writes still in the -wal file; the id
    of its session. It is killed at the end, as a power cut would end it."""
    child = run_child(LIVE_WRITER, str(path))
    assert child.stdout is not None
    try:
        yield int(child.stdout.readline())
    finally:
        child.kill()
        child.communicate()


def test_a_read_only_journal_with_a_live_writer_s_log_is_read_with_it(path: Path, made_read_only) -> None:
    fill(path, 1)
    with live_writer(path) as sid, made_read_only(path.parent), Journal.open_to_read(path) as journal:
        latest = journal.sessions()[-1]
    # Its session runs, so it is not shown as cut off.
    assert (latest.id, latest.outcome, latest.reps_done) == (sid, None, 1)


def test_a_session_cut_off_shows_as_interrupted_in_a_read_only_journal(path: Path, made_read_only) -> None:
    with live_writer(path) as sid:
        pass
    with made_read_only(path.parent), Journal.open_to_read(path) as journal:
        (session,) = journal.sessions()
    assert (session.id, session.outcome) == (sid, Recorded.INTERRUPTED)
    assert session.ended_at == session.reps[-1].completed_at


def test_no_journal_in_a_read_only_directory_is_an_empty_one(path: Path, made_read_only) -> None:
    path.parent.mkdir(mode=0o700)
    with made_read_only(path.parent), Journal.open_to_read(path) as journal:
        assert (journal.sessions(), journal.events()) == ([], [])
    assert not path.exists()


def test_a_damaged_read_only_journal_is_one_clear_error(path: Path, made_read_only) -> None:
    fill(path, 2)
    damage(path, pages_of(path, "reps")[0])
    with made_read_only(path.parent), pytest.raises(JournalUnavailable) as caught:
        Journal.open_to_read(path)
    message = str(caught.value)
    assert "\n" not in message
    assert f"the journal {path} is damaged" in message
    assert f"make {path.parent} writable" in message
