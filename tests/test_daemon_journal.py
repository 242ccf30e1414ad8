"""The real daemon while another process holds the journal's write lock for a while in the middle of a set (a real
second SQLite connection in a write transaction, as a sqlite3 shell or a backup holds it): the set goes on, every
repetition is written once the lock is free, the session ends as it did, and the log names the lock, not the disk.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from daemon_harness import Daemon
from pulse import PulseServer
from test_daemon import FIRST_REP_S, WATCHDOG_S
from test_journal_queue import stored, write_lock

REPS = 6


def reps_done(at_least: int) -> Callable[[dict[str, object]], bool]:
    return lambda status: status["state"] == "session" and int(status.get("reps_done") or 0) >= at_least


@pytest.mark.audio
def test_a_journal_locked_mid_set_loses_no_repetition(pulse: PulseServer, tmp_path: Path) -> None:
    settings = tmp_path / "config.toml"
    settings.write_text(f"[programme.speed]\nreps = {REPS}\nhold = 1\nrest = 1\n", encoding="utf-8")
    args = ["--model", str(tmp_path / "no-model"), "--config", str(settings)]
    with Daemon(tmp_path / "daemon", args, pulse.environ(), WATCHDOG_S) as d:
        d.wait_ready()
        journal = d.state_dir / "journal.sqlite3"
        d.ctl("start", "speed")
        d.wait_status(reps_done(1), timeout=FIRST_REP_S, what="the first repetition")
        with write_lock(journal):
            # The set goes on under the lock, and the control socket answers all along.
            d.wait_status(reps_done(3), timeout=FIRST_REP_S, what="two more repetitions under the lock")
            d.wait_log(lambda line: "is busy: another program holds its write lock" in line, what="the busy line")
            ((_, outcome, written),) = stored(journal)
            assert outcome is None and len(written) < 3
        d.wait_status(lambda s: s["state"] == "idle", timeout=FIRST_REP_S, what="the end of the set")
        d.wait_log(lambda line: "is free again" in line, what="the held entries written")
        assert stored(journal) == [(1, "completed", list(range(1, REPS + 1)))]
        journal_lines = [line for line in d.log_lines() if "journal" in line]
        assert not [line for line in journal_lines if "disk" in line or "journal off" in line], journal_lines
        assert "Traceback" not in d.log()
