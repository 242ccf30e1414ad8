"""The bedside phrases by voice, through the real daemon and the Korean test model (tests/data/commands-ko.toml):
her volume a step up in the middle of a hold, how to count, and the leak diary, a leak recorded and taken back, and
one recorded by voice that the symptom check then reads.

Each test has its own daemon: a set that one of them leaves, or her level, must not reach the next.
"""

from __future__ import annotations

import json
import time
import tomllib
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from daemon_harness import Daemon, DaemonError
from pulse import PulseServer
from speech_corpus import KO_COMMANDS, VOICE_TRIES, phrase_wavs, require_ko_model, say_until
from test_daemon import FIRST_REP_S, HEARD_S, MIC_SETTLES_S, WATCHDOG_S, heard

from voicecoach.cli.main import main
from voicecoach.config import TICKS, WORDS
from voicecoach.engine.programme import STRENGTH
from voicecoach.sound import counts, volume
from voicecoach.training import diary
from voicecoach.training.journal import Journal
from voicecoach.training.progression import EventKind

pytestmark = [pytest.mark.audio, pytest.mark.model]

SPOKEN = {"louder": "음량 키워", "leak": "소변 누출", "undo": "지워"}
# No quiet hours: the day's level and no night, whatever the hour the tests run at. A strength set long enough
# to say a command in the middle of its first hold.
SETTINGS = '[reminders]\nquiet_hours = ""\n[programme.strength]\nreps = 2\nhold = 10\nrest = 3\n'
# A hold that outlasts every try of a command said in it (say_until: VOICE_TRIES plays, HEARD_S after each): with
# the 10 s one, a first try missed let the hold end before the second was heard, and the set had moved on by itself.
LONG_HOLD = SETTINGS.replace("hold = 10", f"hold = {round(VOICE_TRIES * (HEARD_S + 5))}")


@pytest.fixture(scope="module")
def spoken(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return phrase_wavs(tmp_path_factory.mktemp("bedside"), SPOKEN)


def only(intent: str, directory: Path) -> Path:
    """A command pack holding the Korean pack's one command for intent, for a test of what it does once heard."""
    commands = tomllib.loads(KO_COMMANDS.read_text(encoding="utf-8"))["commands"]
    command = next(c for c in commands if c["intent"] == intent)
    phrases, states = json.dumps(command["phrases"], ensure_ascii=False), json.dumps(command["states"])
    path = directory / f"commands-{intent}.toml"
    path.write_text(f'[[commands]]\nintent = "{intent}"\nphrases = {phrases}\nstates = {states}\n', encoding="utf-8")
    return path


def daemon(
    pulse: PulseServer, tmp_path: Path, state: Path, settings: str = SETTINGS, commands: Path = KO_COMMANDS
) -> Daemon:
    config = tmp_path / "config.toml"
    config.write_text(settings, encoding="utf-8")
    args = ["--model", str(require_ko_model()), "--commands", str(commands), "--config", str(config)]
    # Without PULSE_SOURCE the recording follows the default source, as a real microphone's does (test_daemon).
    env = {k: v for k, v in pulse.environ().items() if k != "PULSE_SOURCE"}
    return Daemon(tmp_path / "daemon", args, env, WATCHDOG_S, state_dir=state)


def ready(d: Daemon) -> None:
    """Ready, with what is said between sets rendered, and the microphone past its warm-up."""
    d.wait_ready()
    d.wait_rendered()
    time.sleep(MIC_SETTLES_S)


def say_and_wait_log(d: Daemon, pulse: PulseServer, wav: Path, line: str) -> None:
    """Say wav into the microphone until the daemon logs line, at most VOICE_TRIES times."""
    say_until(pulse.play, wav, lambda: d.wait_log(lambda text: text == line, HEARD_S, line), DaemonError)


def test_louder_said_in_a_hold_turns_the_level_up_a_step_and_keeps_it(
    pulse: PulseServer, tmp_path: Path, spoken: dict[str, Path]
) -> None:
    state = tmp_path / "state"
    state.mkdir()
    volume.save(state, volume.Levels(-12.0, None))
    # Louder alone: what it does once heard is the test, and how well it is heard among the others is
    # test_spoken_commands_are_recognised's and benchmarks/listening.py's. In the whole pack a CI run (d43835b) had
    # her "음량 키워" over the counting decoded as "넘겨" (next): the set moved on, and the test failed on the model.
    with daemon(pulse, tmp_path, state, LONG_HOLD, only("louder", tmp_path)) as d:
        ready(d)
        d.ctl("start", "strength")
        d.wait_status(lambda s: s["rep"] == 1 and s["reps_done"] == 0, timeout=FIRST_REP_S, what="the first hold")
        logged = len(d.log_lines())
        say_until(
            pulse.play,
            spoken["louder"],
            lambda: d.wait_status(lambda s: s["volume_db"] == -9.0, timeout=HEARD_S, what="a step louder"),
            DaemonError,
        )
        status = d.status()
        # Said in the hold: the set goes on where it was.
        assert (status["state"], status["rep"]) == ("session", 1)
        assert heard(d, logged) == ["louder"]
        d.ctl("stop")
    assert volume.load(state) == volume.Levels(-9.0, None)


def test_quiet_counting_is_kept_across_a_restart(pulse: PulseServer, tmp_path: Path) -> None:
    # Through `ctl`: the Korean test pack has no phrase for it (tests/data/commands-ko.toml says why).
    state = tmp_path / "state"
    with daemon(pulse, tmp_path, state) as d:
        ready(d)
        assert d.status()["counts"] == WORDS
        d.ctl("count-ticks")
        assert d.status()["counts"] == TICKS
    assert counts.load(state, WORDS) == TICKS
    # Over [speech] counts = "words" (the default) it holds; a configuration changed since is what counts.
    assert counts.load(state, TICKS) == TICKS
    with daemon(pulse, tmp_path, state) as d:
        ready(d)
        assert d.status()["counts"] == TICKS


def test_a_leak_said_is_recorded_and_taken_back_by_voice(
    pulse: PulseServer, tmp_path: Path, spoken: dict[str, Path], monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    state = tmp_path / "state"
    with daemon(pulse, tmp_path, state) as d:
        ready(d)
        say_and_wait_log(d, pulse, spoken["leak"], f"INFO: diary: {diary.DiaryKind.LEAK}")
        # Idle phrases count only after a quiet moment (listener.IDLE_QUIET_BEFORE_S), and "Noterat." is said.
        d.wait_status(lambda s: s["speaking_s"] == 0, what="quiet after 'Noterat.'")
        say_and_wait_log(d, pulse, spoken["undo"], f"INFO: diary: {diary.DiaryKind.UNDO}")
    monkeypatch.setenv("VOICECOACH_STATE_DIR", str(state))
    capsys.readouterr()
    assert main(["diary", "--json"]) == 0
    assert [json.loads(line) for line in capsys.readouterr().out.splitlines()] == []


def regular_strength_since(state: Path, months_ago: int) -> None:
    """Strength every other day from months_ago months back to yesterday, the step to speed declined today, and a
    leak diary kept from twelve weeks back: a leak every other day in its first four weeks."""
    now = datetime.now(UTC)
    start = now - timedelta(days=31 * months_ago + 2)
    with Journal.open(state / "journal.sqlite3") as journal:
        journal.record_event(EventKind.ADVANCED, STRENGTH.key, start)
        day = start
        while day < now - timedelta(days=1):
            sid = journal.start_session(STRENGTH.key, 1, 2, 1, day)
            journal.record_rep(sid, 1, 2, day + timedelta(seconds=10))
            journal.finish_session(sid, "completed", day + timedelta(minutes=1))
            day += timedelta(days=2)
        journal.record_event(EventKind.DECLINED, "next_exercise", now - timedelta(hours=1))
        first = now - timedelta(weeks=12)
        for d in range(0, 28, 2):
            journal.record_event(diary.DiaryKind.LEAK, diary.RECORDED, first + timedelta(days=d))


def test_the_symptom_check_reads_a_diary_kept_by_voice(
    pulse: PulseServer, tmp_path: Path, spoken: dict[str, Path]
) -> None:
    state = tmp_path / "state"
    state.mkdir()
    regular_strength_since(state, 3)
    short = '[reminders]\nquiet_hours = ""\n[programme.strength]\nreps = 1\nhold = 2\nrest = 1\n'
    with daemon(pulse, tmp_path, state, short) as d:
        ready(d)
        # One leak in the last four weeks against fourteen in the first: fallen by far more than half.
        say_and_wait_log(d, pulse, spoken["leak"], f"INFO: diary: {diary.DiaryKind.LEAK}")
        d.ctl("start", "strength")
        d.wait_log(
            lambda line: line == "INFO: the symptom check, from the leak diary: improved",
            timeout=FIRST_REP_S,
            what="the symptom check answered by the diary",
        )
        assert not any(line.startswith("INFO: asked:") for line in d.log_lines())
    with Journal.open(state / "journal.sqlite3") as journal:
        checks = [e.value for e in journal.events() if e.kind == EventKind.SYMPTOM_CHECK]
    assert checks == ["improved"]
