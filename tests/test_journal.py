"""The journal: privacy, durability per repetition, interrupted sessions, migrations, and bad files."""

from __future__ import annotations

import errno
import logging
import os
import random
import shutil
import sqlite3
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from voicecoach.training import journal as journal_module
from voicecoach.training.journal import MIGRATIONS, Journal, JournalUnavailable, Recorded

REPO = Path(__file__).resolve().parents[1]
T0 = datetime(2024, 5, 1, 8, 0, tzinfo=UTC)


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "state" / "journal.sqlite3"


@contextmanager
def read_only(directory: Path) -> Iterator[None]:
    """Make a directory unwritable for this process. Root ignores mode bits, but not the immutable flag."""
    if os.geteuid() != 0:
        directory.chmod(0o500)
        try:
            yield
        finally:
            directory.chmod(0o700)
        return
    chattr = shutil.which("chattr")
    if chattr is None or subprocess.run([chattr, "+i", str(directory)], capture_output=True).returncode != 0:
        pytest.skip("running as root on a file system without the immutable flag: no way to make a directory read-only")
    try:
        yield
    finally:
        subprocess.run([chattr, "-i", str(directory)], check=True)


def run_child(script: str, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", script, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO
    )


def one_session(journal: Journal, reps: int, outcome: str | None = "completed") -> int:
    sid = journal.start_session("strength", 10, 5, 5, T0)
    for rep in range(1, reps + 1):
        journal.record_rep(sid, rep, 5.0, T0 + timedelta(seconds=10 * rep))
    if outcome is not None:
        journal.finish_session(sid, outcome, T0 + timedelta(minutes=5))
    return sid


# -- privacy and durability ---------------------------------------------------------------------


def test_journal_file_and_directory_are_private(path):
    with Journal.open(path) as journal:
        one_session(journal, 1)
        files = [path, *path.parent.glob("journal.sqlite3-*")]
        assert {f.name for f in files} >= {"journal.sqlite3", "journal.sqlite3-wal", "journal.sqlite3-shm"}
        for f in files:
            assert stat.S_IMODE(f.stat().st_mode) == 0o600, f
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700


def test_an_existing_loose_directory_is_tightened(path):
    path.parent.mkdir(mode=0o755)
    path.parent.chmod(0o755)
    Journal.open(path).close()
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700


def test_journal_uses_wal_and_full_sync(path):
    with Journal.open(path) as journal:
        assert journal._conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
    with sqlite3.connect(path) as other:
        assert other.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_each_repetition_is_committed_as_it_completes(path):
    with Journal.open(path) as journal:
        sid = journal.start_session("strength", 10, 5, 5, T0)
        other = sqlite3.connect(path)
        for rep in (1, 2, 3):
            journal.record_rep(sid, rep, 4.9, T0 + timedelta(seconds=rep))
            # Another connection only sees committed data.
            assert other.execute("SELECT COUNT(*) FROM reps WHERE session_id = ?", (sid,)).fetchone()[0] == rep
        other.close()


def test_times_are_stored_in_utc_and_read_back_as_the_same_instant(path):
    stockholm = datetime(2024, 7, 1, 10, 30, tzinfo=ZoneInfo("Europe/Stockholm"))
    with Journal.open(path) as journal:
        sid = journal.start_session("endurance", 2, 30, 20, stockholm)
        stored = journal._conn.execute("SELECT started_at FROM sessions WHERE id = ?", (sid,)).fetchone()[0]
        assert stored == "2024-07-01T08:30:00.000000+00:00"
        assert journal.sessions()[0].started_at == stockholm


def test_naive_times_are_refused(path):
    with Journal.open(path) as journal, pytest.raises(ValueError, match="time zone"):
        journal.start_session("strength", 10, 5, 5, datetime(2024, 5, 1, 8, 0))


def test_finished_sessions_keep_their_outcome_and_reps(path):
    with Journal.open(path) as journal:
        done = one_session(journal, 10)
        stopped = one_session(journal, 4, "stopped")
        tired = one_session(journal, 6, Recorded.COULD_NOT_FINISH)
    with Journal.open(path) as journal:
        by_id = {s.id: s for s in journal.sessions()}
    assert (by_id[done].outcome, by_id[done].reps_done) == (Recorded.COMPLETED, 10)
    assert (by_id[stopped].outcome, by_id[stopped].reps_done) == (Recorded.STOPPED, 4)
    assert (by_id[tired].outcome, by_id[tired].reps_done) == (Recorded.COULD_NOT_FINISH, 6)
    assert [r.rep for r in by_id[done].reps] == list(range(1, 11))


def test_a_redone_repetition_replaces_the_first(path):
    with Journal.open(path) as journal:
        sid = journal.start_session("strength", 10, 5, 5, T0)
        journal.record_rep(sid, 1, 2.0, T0 + timedelta(seconds=5))
        journal.record_rep(sid, 1, 5.0, T0 + timedelta(seconds=20))
        (session,) = journal.sessions()
    assert [(r.rep, r.hold_s) for r in session.reps] == [(1, 5.0)]
    assert session.id == sid


def test_a_caller_cannot_mark_a_session_interrupted(path):
    with Journal.open(path) as journal:
        sid = journal.start_session("strength", 10, 5, 5, T0)
        with pytest.raises(ValueError):
            journal.finish_session(sid, "interrupted", T0)


def test_sessions_since_filters_by_start(path):
    with Journal.open(path) as journal:
        early = journal.start_session("strength", 10, 5, 5, T0)
        late = journal.start_session("speed", 10, 3, 3, T0 + timedelta(days=2))
        assert [s.id for s in journal.sessions(since=T0 + timedelta(days=1))] == [late]
        assert [s.id for s in journal.sessions()] == [early, late]


def test_events_are_recorded_in_order(path):
    with Journal.open(path) as journal:
        journal.record_event("advanced", "strength", T0 + timedelta(days=3))
        journal.record_event("symptom_check", "asked", T0)
        assert [(e.kind, e.value) for e in journal.events()] == [("symptom_check", "asked"), ("advanced", "strength")]


# -- interrupted sessions ---------------------------------------------------------------------


def test_a_session_left_open_is_marked_interrupted_at_the_next_open(path):
    journal = Journal.open(path)
    sid = one_session(journal, 3, outcome=None)
    journal.close()
    with Journal.open(path) as journal:
        (session,) = journal.sessions()
    assert session.id == sid
    assert session.outcome is Recorded.INTERRUPTED
    assert session.ended_at == session.reps[-1].completed_at


def test_a_live_session_in_another_journal_is_not_marked_interrupted(path):
    with Journal.open(path) as live:
        sid = live.start_session("strength", 10, 5, 5, T0)
        live.record_rep(sid, 1, 5.0, T0)
        with Journal.open(path) as reader:
            assert reader.sessions()[0].outcome is None
        live.finish_session(sid, "completed", T0 + timedelta(minutes=2))
    with Journal.open(path) as journal:
        assert journal.sessions()[0].outcome is Recorded.COMPLETED


KILLED_WRITER = """
import sys
from datetime import UTC, datetime
from pathlib import Path
from voicecoach.training.journal import Journal

journal = Journal.open(Path(sys.argv[1]))
sid = journal.start_session("strength", 10_000, 5, 5, datetime.now(UTC))
print("session", sid, flush=True)
rep = 0
while True:
    rep += 1
    journal.record_rep(sid, rep, 5.0, datetime.now(UTC))
    print("rep", rep, flush=True)
"""


def test_sigkill_at_random_points_loses_no_committed_repetition(path):
    rng = random.Random(20240501)
    reported: dict[int, int] = {}
    for _ in range(20):
        child = run_child(KILLED_WRITER, str(path))
        assert child.stdout is not None
        sid = int(child.stdout.readline().split()[1])
        lines = [child.stdout.readline() for _ in range(rng.randint(0, 30))]
        # A random extra moment, so the kill lands anywhere in the next write.
        time.sleep(rng.random() * 0.003)
        child.kill()
        child.wait()
        lines += child.stdout.read().splitlines(keepends=True)
        child.stdout.close()
        child.stderr.close()  # type: ignore[union-attr]
        # Each rep was printed after its commit; the last may be committed but not (fully) printed.
        done = [int(line.split()[1]) for line in lines if line.startswith("rep") and line.endswith("\n")]
        reported[sid] = max(done, default=0)
        with Journal.open(path) as journal:
            assert journal.integrity_ok()
            sessions = {s.id: s for s in journal.sessions()}
        assert sessions[sid].outcome is Recorded.INTERRUPTED
        for killed, printed in reported.items():
            stored = [r.rep for r in sessions[killed].reps]
            assert stored == list(range(1, len(stored) + 1))
            assert len(stored) >= printed


# -- schema and migrations --------------------------------------------------------------------


def test_a_new_journal_has_the_latest_schema_version(path):
    with Journal.open(path) as journal:
        assert journal.schema_version() == len(MIGRATIONS)


def test_an_older_journal_is_migrated_and_keeps_its_data(path, monkeypatch):
    with Journal.open(path) as journal:
        sid = one_session(journal, 2)
    extra = "ALTER TABLE sessions ADD COLUMN note TEXT"
    monkeypatch.setattr(journal_module, "MIGRATIONS", (*MIGRATIONS, extra))
    with Journal.open(path) as journal:
        assert journal.schema_version() == len(MIGRATIONS) + 1
        assert [s.id for s in journal.sessions()] == [sid]
        assert journal._conn.execute("SELECT note FROM sessions").fetchall() == [(None,)]


def test_a_failed_migration_leaves_the_old_version(path, monkeypatch):
    Journal.open(path).close()
    monkeypatch.setattr(journal_module, "MIGRATIONS", (*MIGRATIONS, "CREATE TABLE x (a); SELECT * FROM missing"))
    with pytest.raises(JournalUnavailable):
        Journal.open(path)
    monkeypatch.undo()
    with Journal.open(path) as journal:
        assert journal.schema_version() == len(MIGRATIONS)
        assert journal._conn.execute("SELECT name FROM sqlite_master WHERE name = 'x'").fetchall() == []


def test_a_journal_from_a_newer_voicecoach_is_refused_clearly(path):
    Journal.open(path).close()
    with sqlite3.connect(path) as conn:
        conn.execute(f"PRAGMA user_version = {len(MIGRATIONS) + 5}")
    with pytest.raises(JournalUnavailable, match=r"newer than this voicecoach knows.*upgrade voicecoach"):
        Journal.open(path)


# -- bad files --------------------------------------------------------------------------------


def test_a_file_that_is_not_a_database_is_moved_aside_and_a_new_journal_started(path, caplog):
    path.parent.mkdir(mode=0o700)
    path.write_bytes(b"this is not sqlite, it is a shopping list\n" * 200)
    with caplog.at_level(logging.WARNING, logger="voicecoach.training.journal"), Journal.open(path) as journal:
        assert journal.sessions() == []
        one_session(journal, 1)
    (aside,) = path.parent.glob("journal.sqlite3.corrupt-*")
    assert aside.read_bytes().startswith(b"this is not sqlite")
    (record,) = caplog.records
    assert "is corrupt" in record.getMessage()
    assert str(aside) in record.getMessage()


def test_a_damaged_database_is_moved_aside(path, caplog):
    with Journal.open(path) as journal:
        for _ in range(40):
            one_session(journal, 10)
        journal._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    data = bytearray(path.read_bytes())
    page = 4096
    assert len(data) > 4 * page
    # Overwrite the second page (the first table's b-tree root) with noise.
    data[page : 2 * page] = random.Random(1).randbytes(page)
    path.write_bytes(bytes(data))
    with caplog.at_level(logging.WARNING, logger="voicecoach.training.journal"), Journal.open(path) as journal:
        assert journal.sessions() == []
        assert journal.integrity_ok()
    assert len(list(path.parent.glob("journal.sqlite3.corrupt-*"))) == 1
    assert "is corrupt" in caplog.text


def test_a_new_journal_in_a_read_only_directory_is_unavailable(path):
    path.parent.mkdir(mode=0o700)
    with read_only(path.parent), pytest.raises(JournalUnavailable) as caught:
        Journal.open(path)
    message = str(caught.value)
    assert "cannot be written (its directory is read-only or not accessible)" in message
    assert "journal off" in message


def test_an_existing_journal_in_a_directory_turned_read_only_is_unavailable(path):
    with Journal.open(path) as journal:
        one_session(journal, 2)
    with read_only(path.parent), pytest.raises(JournalUnavailable, match="read-only"):
        Journal.open(path)
    with Journal.open(path) as journal:
        assert journal.sessions()[0].reps_done == 2


FULL_DISK_WRITER = """
import resource, sys
from datetime import UTC, datetime
from pathlib import Path
from voicecoach.training.journal import Journal, JournalUnavailable

path, limit, at_open = Path(sys.argv[1]), int(sys.argv[2]), sys.argv[3] == "at-open"
if at_open:
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
try:
    journal = Journal.open(path)
    sid = journal.start_session("strength", 10_000, 5, 5, datetime.now(UTC))
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    for rep in range(1, 100_000):
        journal.record_rep(sid, rep, 5.0, datetime.now(UTC))
        print("rep", rep, flush=True)
except JournalUnavailable as exc:
    print("off", exc, flush=True)
"""


def run_with_file_size_limit(path: Path, limit: int, when: str) -> list[str]:
    child = run_child(FULL_DISK_WRITER, str(path), str(limit), when)
    out, err = child.communicate(timeout=60)
    assert child.returncode == 0, err
    return out.splitlines()


def test_a_full_disk_while_recording_turns_the_journal_off_and_keeps_what_was_written(path):
    # RLIMIT_FSIZE makes every write past the limit fail (EFBIG), for root too; SQLite reports it as an I/O error.
    lines = run_with_file_size_limit(path, 64 * 1024, "after-open")
    assert lines[-1].startswith("off ")
    assert "cannot be written (writing to the disk failed: it may be full or failing)" in lines[-1]
    written = len(lines) - 1
    assert written > 0
    with Journal.open(path) as journal:
        assert journal.integrity_ok()
        (session,) = journal.sessions()
    assert session.reps_done == written
    assert session.outcome is Recorded.INTERRUPTED


def test_a_full_disk_at_open_is_unavailable(path):
    (line,) = run_with_file_size_limit(path, 0, "at-open")
    assert line.startswith("off ")
    assert "it may be full" in line


@pytest.fixture
def tiny_tmpfs(tmp_path: Path) -> Iterator[Path]:
    mount = tmp_path / "tiny"
    mount.mkdir()
    if shutil.which("mount") is None or (
        subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(mount)], capture_output=True).returncode
    ):
        pytest.skip("cannot mount a tmpfs here (needs root with CAP_SYS_ADMIN)")
    try:
        yield mount
    finally:
        subprocess.run(["umount", str(mount)], check=True)


def fill(directory: Path) -> None:
    """Write until the file system refuses (unbuffered, so nothing is left to fail at close)."""
    with open(directory / "filler", "wb", buffering=0) as filler:
        try:
            while True:
                filler.write(b"\0" * 4096)
        except OSError as exc:
            assert exc.errno == errno.ENOSPC


def test_a_really_full_tmpfs_turns_the_journal_off(tiny_tmpfs):
    path = tiny_tmpfs / "state" / "journal.sqlite3"
    with Journal.open(path) as journal:
        sid = journal.start_session("strength", 10, 5, 5, T0)
        journal.record_rep(sid, 1, 5.0, T0)
        fill(tiny_tmpfs)
        with pytest.raises(JournalUnavailable, match="the disk is full"):
            for rep in range(2, 1000):
                journal.record_rep(sid, rep, 5.0, T0)
    (tiny_tmpfs / "filler").unlink()
    with Journal.open(path) as journal:
        assert journal.integrity_ok()
        assert journal.sessions()[0].reps[0].rep == 1
