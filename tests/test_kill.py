"""The kill test: a live session, playing into the PulseAudio null sink, is killed with SIGKILL at random moments.

50 kills in all, spread over a few lanes that run side by side, each lane with its own state directory that its
runs share. After each kill, a copy of the files the kill left (the originals stay as they are, for the next start
to recover) must pass SQLite's integrity check and hold every repetition whose release cue the process printed.
The coach commits a repetition before it prints its release cue, so "printed" implies "committed", and at most one
repetition more is stored than printed: the one whose release was next. The next start must mark the killed
session interrupted, and no later run may change an earlier session's repetitions.

Kill points come from a seeded random generator (VOICECOACH_KILL_SEED overrides the seed) and are printed, so a
failure names the seed, the lane and the kill. A kill point is "t s after the start", or "t s after printed line
k" of the set's planned cues; the time it lands at varies from machine to machine, and no check depends on it.
"""

from __future__ import annotations

import os
import random
import shutil
import signal
import sqlite3
import subprocess
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import jack_lock
import pytest
from coach_command import planned_cues, voicecoach_command
from pulse import PulseServer

from voicecoach.engine.timeline import Cue, Phase
from voicecoach.training.journal import Journal, Recorded

pytestmark = pytest.mark.audio

# The densest set: a release cue every 4 s once the 7 s introduction is over.
SET = ["speed", "--reps", "10", "--hold", "1", "--rest", "1"]
KILLS = 50
# Lanes run side by side, each with its own journal: the set is real time, so this is what keeps the test short.
LANES = 3
SEED = int(os.environ.get("VOICECOACH_KILL_SEED", "20240501"))
# Kills wait for a printed cue planned at most this far into the set (the introduction and two repetitions).
WINDOW_S = 15.0
# A kill counted from the start lands within this many seconds: imports, opening the journal, opening the stream.
STARTUP_S = 2.0
# Shares of the kill points: counted from the start, at the moment a release cue is printed, anywhere in the window.
FROM_START, AT_RELEASE = 0.2, 0.3
# Only a guard against a hung process, never a measure of speed.
HANG_S = 90.0
JOURNAL = "journal.sqlite3"
# How the coach says PortAudio could not start (voicecoach/sound/portaudio.py).
STUCK = "PortAudio did not start"


@dataclass(frozen=True)
class KillPoint:
    """Kill delay_s after printed line `after` (an index into the planned cues), or after the start when None."""

    after: int | None
    delay_s: float

    def describe(self, planned: list[Cue]) -> str:
        if self.after is None:
            return f"{self.delay_s:.3f} s after the start"
        return f"{self.delay_s:.3f} s after line {self.after} ({planned[self.after].label()!r})"


@dataclass(frozen=True)
class Stored:
    """A session as the journal holds it: its outcome (None while open) and its repetition numbers in order."""

    outcome: str | None
    ended: bool
    reps: tuple[int, ...]


@dataclass
class Lane:
    number: int
    env: dict[str, str]
    journal: Path
    scratch: Path
    kills: int
    # What each session held when the run that wrote it was killed; later runs must leave it alone.
    sessions: dict[int, Stored]


def kill_point(rng: random.Random, planned: list[Cue]) -> KillPoint:
    anchors = [i for i, cue in enumerate(planned[:-1]) if cue.t <= WINDOW_S]
    roll = rng.random()
    if roll < FROM_START:
        return KillPoint(None, rng.uniform(0.0, STARTUP_S))
    if roll < FROM_START + AT_RELEASE:
        # Right after the release line is read: the sharpest test of "printed implies committed".
        return KillPoint(rng.choice([i for i in anchors if planned[i].phase == "release"]), 0.0)
    after = rng.choice(anchors)
    return KillPoint(after, rng.uniform(0.0, planned[after + 1].t - planned[after].t))


def stored_after_kill(journal: Path, scratch: Path) -> dict[int, Stored]:
    """The sessions in the files a kill left, read from a copy, so the next start still finds them as they were left.

    A plain sqlite3 connection, not Journal.open: that would move a corrupt file aside and start a new one, and mark
    the killed session interrupted itself, hiding whether the next start does.
    """
    shutil.rmtree(scratch, ignore_errors=True)
    scratch.mkdir()
    for suffix in ("", "-wal", "-journal"):
        source = journal.with_name(journal.name + suffix)
        if source.exists():
            shutil.copyfile(source, scratch / source.name)
    copy = scratch / journal.name
    if not copy.exists():
        return {}
    conn = sqlite3.connect(copy)
    try:
        check = conn.execute("PRAGMA integrity_check").fetchall()
        assert check == [("ok",)], f"the journal a kill left fails the integrity check: {check}"
        if conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'sessions'").fetchone() is None:
            return {}
        reps: dict[int, list[int]] = {}
        for sid, rep in conn.execute("SELECT session_id, rep FROM reps ORDER BY session_id, completed_at, rep"):
            reps.setdefault(sid, []).append(rep)
        return {
            sid: Stored(outcome, ended is not None, tuple(reps.get(sid, ())))
            for sid, outcome, ended in conn.execute("SELECT id, outcome, ended_at FROM sessions ORDER BY id")
        }
    finally:
        conn.close()


def corrupt_files(journal: Path) -> list[str]:
    return sorted(p.name for p in journal.parent.glob(f"{journal.name}.corrupt-*"))


@dataclass(frozen=True)
class Run:
    """What a killed run printed (whole lines only) and how it ended."""

    lines: list[str]
    returncode: int
    hung: bool
    stderr: str


def run_and_kill(lane: Lane, point: KillPoint) -> Run:
    with tempfile.TemporaryFile("w+") as stderr:
        process = subprocess.Popen(
            [*voicecoach_command(), "session", *SET],
            env=lane.env,
            text=True,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=stderr,
        )
        assert process.stdout is not None
        hung = threading.Event()

        def on_hang() -> None:
            hung.set()
            process.kill()

        watchdog = threading.Timer(HANG_S, on_hang)
        watchdog.start()
        try:
            lines: list[str] = []
            while point.after is not None and len(lines) <= point.after:
                line = process.stdout.readline()
                if not line:
                    break
                lines.append(line)
            time.sleep(point.delay_s)
            process.kill()
            process.wait()
            lines += process.stdout.read().splitlines(keepends=True)
        finally:
            watchdog.cancel()
            process.stdout.close()
        stderr.seek(0)
        return Run(
            [line[:-1] for line in lines if line.endswith("\n")], process.returncode, hung.is_set(), stderr.read()
        )


def check_kill(lane: Lane, planned: list[Cue], run: Run, where: str) -> str:
    """Check the journal a kill left against what the run printed; returns a line for the log."""
    assert not run.hung, f"{where}: the session hung; stderr:\n{run.stderr}"
    assert run.returncode == -signal.SIGKILL, f"{where}: the session ended by itself; stderr:\n{run.stderr}"
    said = [line.split(maxsplit=1)[1] for line in run.lines]
    assert said == [cue.label() for cue in planned[: len(said)]], f"{where}: not the planned cues; {run.stderr}"
    released = sum(1 for cue in planned[: len(said)] if cue.phase == "release")

    after = stored_after_kill(lane.journal, lane.scratch)
    assert corrupt_files(lane.journal) == [], f"{where}: a start found the journal corrupt"
    for sid, before in lane.sessions.items():
        now = after.get(sid)
        assert now is not None and now.reps == before.reps, f"{where}: session {sid} was {before}, now {now}"
        if said:
            # The run got as far as its first cue, so it opened the journal: every earlier session is marked.
            assert now.outcome == Recorded.INTERRUPTED and now.ended, f"{where}: session {sid} not marked: {now}"
        else:
            assert now.outcome in (None, Recorded.INTERRUPTED), f"{where}: session {sid} is {now}"

    new = sorted(set(after) - set(lane.sessions))
    # The session is written before the first cue is scheduled; a run killed earlier may or may not have one.
    assert len(new) <= 1 and (new or not said), f"{where}: new sessions {new} after printing {said}"
    if not new:
        return f"{len(said)} line(s) printed, no session started"
    sid = new[0]
    session = after[sid]
    assert session.outcome is None, f"{where}: session {sid} ended as {session.outcome} though it was killed"
    done = len(session.reps)
    assert session.reps == tuple(range(1, done + 1)), f"{where}: session {sid} holds reps {session.reps}"
    # Committed before printed: every printed release is stored, and the only extra one is the release due next.
    next_release = len(said) < len(planned) and planned[len(said)].phase == "release"
    assert done == released or (done == released + 1 and next_release), (
        f"{where}: {released} release(s) printed but session {sid} holds reps {session.reps}; stderr:\n{run.stderr}"
    )
    lane.sessions[sid] = session
    return f"{len(said)} line(s) printed, session {sid} holds {done} rep(s)"


def run_lane(lane: Lane, planned: list[Cue], failed: threading.Event) -> None:
    rng = random.Random(f"{SEED}/{lane.number}")
    try:
        for kill in range(1, lane.kills + 1):
            if failed.is_set():
                return
            point = kill_point(rng, planned)
            where = f"seed {SEED}, lane {lane.number}, kill {kill} ({point.describe(planned)})"
            run = run_and_kill(lane, point)
            if STUCK in run.stderr:
                # A kill in this lane or another, as a session started, left JACK's lock held (tests/jack_lock.py):
                # the coach said so, removed it and exited, as it should. The same kill is tried once more.
                print(f"{where}: {jack_lock.release(lane.env) or 'PortAudio was stuck'}; again", flush=True)
                run = run_and_kill(lane, point)
            print(f"{where}: {check_kill(lane, planned, run, where)}", flush=True)
    except BaseException:
        failed.set()
        raise


def plan(lane: Lane) -> list[Cue]:
    """The planned cues. Planning renders every clip into the lane's cache, so its runs start without rendering."""
    return [
        Cue(float(str(c["t"])), Phase(c["phase"]), None if c["rep"] is None else int(str(c["rep"])), str(c["text"]))
        for c in planned_cues(SET, lane.env)
    ]


@pytest.fixture
def lanes(pulse: PulseServer, tmp_path: Path) -> list[Lane]:
    result = []
    for number in range(LANES):
        state = tmp_path / f"lane{number}" / "state"
        env = {**pulse.environ(), "VOICECOACH_STATE_DIR": str(state)}
        kills = KILLS // LANES + (number < KILLS % LANES)
        result.append(Lane(number, env, state / JOURNAL, tmp_path / f"lane{number}" / "copy", kills, {}))
    return result


def test_sigkill_at_random_moments_keeps_every_reported_repetition(lanes: list[Lane]) -> None:
    assert sum(lane.kills for lane in lanes) == KILLS
    plans = [plan(lane) for lane in lanes]
    failed = threading.Event()
    try:
        with ThreadPoolExecutor(max_workers=LANES) as pool:
            futures = [pool.submit(run_lane, lane, cues, failed) for lane, cues in zip(lanes, plans, strict=True)]
            for future in futures:
                future.result()
    finally:
        # The last kill of a lane may have left JACK's lock held, for every audio test after this one.
        print(jack_lock.release(lanes[0].env) or "PortAudio starts", flush=True)

    stored_reps = 0
    for lane in lanes:
        # The last kill's session is marked by the next start, here the test's own.
        with Journal.open(lane.journal) as journal:
            assert journal.integrity_ok()
            sessions = {s.id: s for s in journal.sessions()}
        assert corrupt_files(lane.journal) == []
        assert sessions.keys() == lane.sessions.keys()
        for sid, session in sessions.items():
            assert session.outcome is Recorded.INTERRUPTED and session.ended_at is not None, session
            assert tuple(r.rep for r in session.reps) == lane.sessions[sid].reps
        stored_reps += sum(len(s.reps) for s in sessions.values())
    # A kill test that never killed a session with repetitions in it would prove little.
    assert stored_reps > 0
