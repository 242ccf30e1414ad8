"""The daemon between sets: after a completed set it asks to move on, and a spoken "yes" (the Korean pack's
좋아요) moves the programme on in the journal; the volume changes while the question waits; progress and a snooze
through `ctl`, the path voice takes too.

Its own daemon (not test_daemon's shared one): its journal starts with three confident days of identification
and its configuration makes an identification set a single short repetition.
"""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from daemon_harness import Daemon, DaemonError
from pulse import PulseServer
from speech_corpus import KO_COMMANDS, phrase_wavs, require_ko_model, say_until
from test_daemon import HEARD_S, WATCHDOG_S, heard

from voicecoach.engine.programme import IDENTIFICATION, STRENGTH
from voicecoach.sound import volume
from voicecoach.training.journal import Journal
from voicecoach.training.progress_texts import load_phrases, suggestion_text
from voicecoach.training.progression import Suggestion, SuggestionKind

PHRASES = load_phrases("sv")
# The identification set's introduction is long; then one repetition, and the question.
ASKED_S = 90.0


def confident_days(state: Path) -> None:
    with Journal.open(state / "journal.sqlite3") as journal:
        for days_ago in (3, 2, 1):
            started = datetime.now(UTC) - timedelta(days=days_ago)
            e = IDENTIFICATION
            sid = journal.start_session(e.key, e.reps, e.hold_s, e.rest_s, started)
            for rep in range(1, e.reps + 1):
                journal.record_rep(sid, rep, e.hold_s, started + timedelta(seconds=10 * rep))
            journal.finish_session(sid, "completed", started + timedelta(minutes=3))


def journal_events(state: Path) -> list[tuple[str, str]]:
    with sqlite3.connect(f"file:{state / 'journal.sqlite3'}?mode=ro", uri=True) as conn:
        return conn.execute("SELECT kind, value FROM events ORDER BY id").fetchall()


@pytest.mark.audio
@pytest.mark.model
def test_after_a_set_the_step_forward_is_asked_and_a_spoken_yes_takes_it(pulse: PulseServer, tmp_path: Path) -> None:
    ko_model = require_ko_model()
    state = tmp_path / "state"
    confident_days(state)
    settings = tmp_path / "config.toml"
    # No quiet hours: the snooze is the same at any time of day the test runs.
    settings.write_text(
        '[programme.identification]\nreps = 1\nhold = 2\nrest = 1\n[reminders]\nquiet_hours = ""\n', encoding="utf-8"
    )
    env = {k: v for k, v in pulse.environ().items() if k != "PULSE_SOURCE"}
    args = ["--model", str(ko_model), "--commands", str(KO_COMMANDS), "--config", str(settings)]
    yes = phrase_wavs(tmp_path)["yes"]
    with Daemon(tmp_path / "daemon", args, env, WATCHDOG_S, state_dir=state) as d:
        d.wait_ready()
        logged = len(d.log_lines())
        # Spoken progress, and a snooze, through the control socket: their phrases are not in the Korean pack.
        d.ctl("progress")
        d.ctl("snooze", "30")
        d.wait_log(lambda line: "reminder snoozed until" in line, what="the snooze")
        d.ctl("start", "identification")
        question = suggestion_text(Suggestion(SuggestionKind.NEXT_EXERCISE, STRENGTH.key), IDENTIFICATION.key, PHRASES)
        d.wait_log(lambda line: line == f"INFO: asked: {question}", timeout=ASKED_S, what="the question")
        # Listened for once the question has been said.
        status = d.wait_status(lambda s: s["question"] is True, what="waiting for the answer")
        assert status["state"] == "idle"
        # The volume changed while it waits (at the loudest already, a step down; through `ctl`, as the Korean pack
        # has no volume phrase in this state), and the question still waits.
        d.ctl("quieter")
        quieter = d.status()
        assert (quieter["question"], quieter["volume_db"]) == (True, status["volume_db"] - volume.STEP_DB)

        def moved_on() -> list[tuple[str, str]]:
            d.wait_log(lambda line: line == "INFO: heard yes", timeout=HEARD_S, what="a heard yes")
            return journal_events(state)

        assert say_until(pulse.play, yes, moved_on, DaemonError) == [("advanced", STRENGTH.key)]
        assert heard(d, logged) == ["yes"]
        # The question is answered: another yes means nothing now.
        with pytest.raises(DaemonError, match="yes means nothing now"):
            d.ctl("yes")
