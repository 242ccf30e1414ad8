"""`voicecoach history` and `voicecoach progress`: output in local time, the CSV export, accepting a step, errors."""

from __future__ import annotations

import csv
import json
import stat
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from conftest import one_error_line
from test_journal import read_only
from test_journal_damage import made_read_only as made_read_only  # the fixture: immutable, or a ro mount

from voicecoach import config, paths
from voicecoach.cli.main import main
from voicecoach.engine.programme import ENDURANCE, IDENTIFICATION, STRENGTH
from voicecoach.training.journal import Journal

STOCKHOLM = ZoneInfo("Europe/Stockholm")


@pytest.fixture
def journal(state_dir, monkeypatch, tmp_path):
    """A journal in the test's state directory, with the local zone set to Stockholm and no configuration file."""
    monkeypatch.setenv("TZ", "Europe/Stockholm")
    monkeypatch.setattr(config, "SYSTEM_FILE", tmp_path / "etc" / "config.toml")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    with Journal.open(paths.journal_path(state_dir)) as journal:
        yield journal


def record(journal: Journal, exercise, started: datetime, reps: int, outcome: str | None = "completed") -> int:
    sid = journal.start_session(exercise.key, exercise.reps, exercise.hold_s, exercise.rest_s, started)
    for rep in range(1, reps + 1):
        journal.record_rep(sid, rep, exercise.hold_s + 0.04, started + timedelta(seconds=10 * rep))
    if outcome is not None:
        journal.finish_session(sid, outcome, started + timedelta(minutes=3))
    return sid


def out_lines(capsys) -> list[str]:
    return capsys.readouterr().out.splitlines()


# -- history ----------------------------------------------------------------------------------


def test_history_of_an_empty_journal_says_so(journal, capsys):
    assert main(["history"]) == 0
    assert out_lines(capsys) == ["no sessions in the journal yet"]


def test_history_shows_one_row_per_session_in_local_time(journal, capsys):
    # 06:30 UTC in January is 07:30 in Stockholm; 06:30 UTC in July is 08:30.
    record(journal, STRENGTH, datetime(2024, 1, 15, 6, 30, tzinfo=UTC), 10)
    record(journal, STRENGTH, datetime(2024, 7, 15, 6, 30, tzinfo=UTC), 4, "stopped")
    record(journal, IDENTIFICATION, datetime(2024, 7, 16, 6, 30, tzinfo=UTC), 6, "could_not_finish")
    record(journal, IDENTIFICATION, datetime(2024, 7, 17, 6, 30, tzinfo=UTC), 2, outcome=None)
    journal.close()
    assert main(["history"]) == 0
    header, *rows = out_lines(capsys)
    assert header.split() == ["date", "exercise", "reps", "hold", "outcome"]
    assert [row.split()[:2] for row in rows] == [
        ["2024-01-15", "07:30"],
        ["2024-07-15", "08:30"],
        ["2024-07-16", "08:30"],
        ["2024-07-17", "08:30"],
    ]
    assert "strength (styrka)" in rows[0]
    assert rows[0].split()[-4:] == ["10/10", "5", "s", "completed"]
    assert rows[1].endswith("stopped")
    assert rows[2].endswith("could not finish")
    # Closed without finishing, so the next open marked it.
    assert rows[3].endswith("interrupted")


def test_history_since_takes_a_local_date(journal, capsys):
    # 23:30 UTC on the 14th is already the 15th in Stockholm.
    record(journal, STRENGTH, datetime(2024, 1, 14, 22, 30, tzinfo=UTC), 10)
    late = datetime(2024, 1, 14, 23, 30, tzinfo=UTC)
    record(journal, STRENGTH, late, 10)
    assert main(["history", "--since", "2024-01-15", "--json"]) == 0
    (line,) = out_lines(capsys)
    assert json.loads(line)["started"] == late.astimezone(STOCKHOLM).isoformat()


def test_history_since_a_date_with_nothing_after_it(journal, capsys):
    record(journal, STRENGTH, datetime(2024, 1, 14, 8, tzinfo=UTC), 10)
    assert main(["history", "--since", "2025-01-01"]) == 0
    assert out_lines(capsys) == ["no sessions since 2025-01-01"]


def test_history_json_has_one_object_per_session(journal, capsys):
    started = datetime(2024, 3, 1, 7, 0, tzinfo=UTC)
    record(journal, STRENGTH, started, 3, "stopped")
    assert main(["history", "--json"]) == 0
    (line,) = out_lines(capsys)
    assert json.loads(line) == {
        "started": "2024-03-01T08:00:00+01:00",
        "ended": "2024-03-01T08:03:00+01:00",
        "exercise": STRENGTH.key,
        "reps_done": 3,
        "planned_reps": STRENGTH.reps,
        "hold_s": STRENGTH.hold_s,
        "rest_s": STRENGTH.rest_s,
        "holds": [round(STRENGTH.hold_s + 0.04, 1)] * 3,
        "outcome": "stopped",
    }


def test_history_exports_a_private_csv_file(journal, capsys, tmp_path):
    record(journal, STRENGTH, datetime(2024, 3, 1, 7, 0, tzinfo=UTC), 2)
    record(journal, IDENTIFICATION, datetime(2024, 3, 2, 7, 0, tzinfo=UTC), 10)
    target = tmp_path / "history.csv"
    assert main(["history", "--export", "csv", str(target)]) == 0
    assert f"wrote 2 sessions to {target}" in capsys.readouterr().err
    with open(target, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert [(r["started"], r["exercise"], r["reps_done"], r["outcome"]) for r in rows] == [
        ("2024-03-01T08:00:00+01:00", STRENGTH.key, "2", "completed"),
        ("2024-03-02T08:00:00+01:00", IDENTIFICATION.key, "10", "completed"),
    ]
    assert rows[0]["holds"] == " ".join([str(round(STRENGTH.hold_s + 0.04, 1))] * 2)
    assert stat.S_IMODE(target.stat().st_mode) == 0o600


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["history", "--since", "2024-13-01"], "argument --since: '2024-13-01' is not a date: use YYYY-MM-DD"),
        (["history", "--since", "1/5/2024"], "'1/5/2024' is not a date: use YYYY-MM-DD, e.g. 2024-05-01"),
        (["history", "--since", "igår"], "'igår' is not a date"),
        (["history", "--export", "xlsx", "out.xlsx"], "cannot export as 'xlsx': the format is csv"),
        (["history", "--export", "csv"], "argument --export: expected 2 arguments"),
        (["history", "--export", "csv", "/nonexistent-dir/h.csv"], "cannot write /nonexistent-dir/h.csv"),
        (["history", "--json", "--export", "csv", "h.csv"], "not allowed with argument --json"),
        (["progress", "--since", "2024-01-01"], "unrecognized arguments: --since"),
    ],
)
def test_bad_history_and_progress_arguments_get_one_clear_line(args, fragment, journal, capsys):
    assert main(args) == 2
    assert fragment in one_error_line(capsys)


def test_accepting_a_step_in_an_unwritable_journal_is_one_clear_line(state_dir, capsys):
    state_dir.mkdir(mode=0o700)
    with read_only(state_dir):
        assert main(["progress", "--accept"]) == 1
    line = one_error_line(capsys)
    assert "journal.sqlite3 cannot be written" in line
    assert "make" in line
    assert "writable" in line


def test_history_export_and_progress_read_a_read_only_state_directory(
    journal, state_dir, capsys, made_read_only, tmp_path
):
    """A state directory that cannot be written (a card the kernel made read-only, ReadOnlyPaths=) is still read."""
    for n in (3, 2, 1):
        record(journal, IDENTIFICATION, days_ago(n), 10)
    journal.close()
    export = tmp_path / "export.csv"
    with made_read_only(paths.journal_path(state_dir).parent):
        assert main(["history"]) == 0
        assert len(out_lines(capsys)) == 1 + 3
        assert main(["history", "--json"]) == 0
        assert len(out_lines(capsys)) == 3
        assert main(["history", "--export", "csv", str(export)]) == 0
        assert main(["progress"]) == 0
        assert "suggestion:    move on to strength (styrka)" in out_lines(capsys)
        assert main(["progress", "--json"]) == 0
        assert json.loads(capsys.readouterr().out)["suggestion"]["exercise"] == STRENGTH.key
        assert main(["progress", "--accept"]) == 1
        assert "cannot be written (its directory is read-only" in one_error_line(capsys)
    with export.open(encoding="utf-8") as f:
        assert len(list(csv.DictReader(f))) == 3


# -- progress ---------------------------------------------------------------------------------


def days_ago(n: int) -> datetime:
    return (datetime.now(STOCKHOLM) - timedelta(days=n)).replace(hour=12, minute=0)


def test_progress_of_a_new_journal_starts_at_the_first_exercise(journal, capsys):
    assert main(["progress"]) == 0
    report = dict(line.split(":", 1) for line in out_lines(capsys))
    assert report["phase"].strip() == "learning"
    assert report["exercise"].strip() == "identification (identifiering), 1 of 4"
    assert f"strength (styrka) after 3 days with {IDENTIFICATION.reps} in a row" in report["next step"]
    assert report["endurance"].strip().startswith("hold 30 s (goal 120 s)")
    assert "2 more today" in report["due today"]
    assert "suggestion" not in report


def test_progress_json_has_the_whole_picture(journal, capsys):
    record(journal, IDENTIFICATION, days_ago(1), 10)
    assert main(["progress", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["exercise"] == IDENTIFICATION.key
    assert data["confident_days"] == 1
    assert data["next_session"]["exercise"] == IDENTIFICATION.key
    assert data["summary"]["streak_days"] == 1
    assert data["suggestion"] is None
    assert data["regular_since"] == days_ago(1).date().isoformat()


def test_progress_accept_moves_on_after_three_confident_days(journal, capsys):
    for n in (3, 2, 1):
        record(journal, IDENTIFICATION, days_ago(n), 10)
    assert main(["progress"]) == 0
    assert "suggestion:    move on to strength (styrka)" in out_lines(capsys)
    assert main(["progress", "--accept"]) == 0
    lines = out_lines(capsys)
    assert lines[0] == "accepted: now learning strength (styrka)"
    assert "exercise:      strength (styrka), 2 of 4" in lines
    assert main(["progress", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["exercise"] == STRENGTH.key


def test_progress_accept_with_nothing_to_accept_is_a_clear_error(journal, capsys):
    record(journal, IDENTIFICATION, days_ago(1), 10)
    assert main(["progress", "--accept"]) == 1
    line = one_error_line(capsys)
    assert "there is no step to accept yet" in line
    assert "(1 so far)" in line


def test_progress_follows_the_configured_rules(journal, capsys, tmp_path):
    for n in (2, 1):
        record(journal, IDENTIFICATION, days_ago(n), 10)
    assert main(["progress", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["suggestion"] is None
    rules = tmp_path / "rules.toml"
    rules.write_text("[progression]\ndays_to_move_on = 2\nin_a_row = 8\n", encoding="utf-8")
    assert main(["progress", "--config", str(rules)]) == 0
    lines = out_lines(capsys)
    assert "suggestion:    move on to strength (styrka)" in lines
    assert main(["progress", "--config", str(rules), "--accept"]) == 0
    assert out_lines(capsys)[0] == "accepted: now learning strength (styrka)"
    assert main(["progress", "--config", str(rules)]) == 0
    assert "after 2 days with 8 in a row" in dict(line.split(":", 1) for line in out_lines(capsys))["next step"]


def test_progress_reads_the_user_configuration_file(journal, capsys, tmp_path):
    user = tmp_path / "xdg" / "voicecoach" / "config.toml"
    user.parent.mkdir(parents=True)
    user.write_text("[progression]\ndays_to_move_on = 4\n", encoding="utf-8")
    assert main(["progress", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["days_to_move_on"] == 4


def test_progress_with_a_bad_configuration_is_exit_78(journal, capsys, tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("[progression]\nsteady_months = 0\n", encoding="utf-8")
    assert main(["progress", "--config", str(bad)]) == 78
    assert "progression.steady_months = 0 is not allowed" in one_error_line(capsys)


def test_progress_says_how_often_the_symptom_question_comes(journal, capsys, tmp_path):
    # Regular training for more than the guide's three months makes the question due.
    for n in range(120, 0, -5):
        record(journal, IDENTIFICATION, days_ago(n), 10)
    assert main(["progress"]) == 0
    assert "symptom check: due - have the symptoms improved? (asked at most once a month)" in out_lines(capsys)
    rules = tmp_path / "rules.toml"
    rules.write_text("[progression]\nsymptom_check_every_months = 2\n", encoding="utf-8")
    assert main(["progress", "--config", str(rules)]) == 0
    assert "symptom check: due - have the symptoms improved? (asked at most every 2 months)" in out_lines(capsys)


# -- session next -----------------------------------------------------------------------------


def test_session_next_plays_the_hold_the_configured_steps_reached(journal, capsys, tmp_path):
    journal.record_event("advanced", ENDURANCE.key, datetime.now(UTC) - timedelta(days=3))
    for days in (2, 1):
        record(journal, ENDURANCE, datetime.now(UTC) - timedelta(days=days), ENDURANCE.reps)
    journal.close()
    steps = tmp_path / "steps.toml"
    steps.write_text("[progression]\nendurance_step_s = 25\n", encoding="utf-8")

    def planned_hold(*extra: str) -> int:
        assert main(["session", "next", "--timeline", *extra]) == 0
        cues = [json.loads(line) for line in out_lines(capsys)]
        squeeze, release = (next(c["t"] for c in cues if c["phase"] == p) for p in ("hold", "release"))
        return round(release - squeeze)

    assert planned_hold() == ENDURANCE.hold_s + 10
    assert planned_hold("--config", str(steps)) == ENDURANCE.hold_s + 25


def test_progress_plans_the_configured_set(journal, capsys, tmp_path):
    journal.close()
    fewer = tmp_path / "fewer.toml"
    fewer.write_text("[programme.identification]\nreps = 6\n", encoding="utf-8")
    due = "due today:     identification (identifiering), {} x {} s: 2 more today (0 of 2+ done today)"
    assert main(["progress"]) == 0
    assert due.format(IDENTIFICATION.reps, IDENTIFICATION.hold_s) in out_lines(capsys)
    assert main(["progress", "--config", str(fewer)]) == 0
    assert due.format(6, IDENTIFICATION.hold_s) in out_lines(capsys)
