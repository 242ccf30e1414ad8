"""Configuration: layered TOML files, one clear message and exit 78 for every bad value, where each value came from."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tomllib
from dataclasses import fields
from datetime import time
from pathlib import Path

import pytest

from voicecoach import config
from voicecoach.cli import config as cli_config
from voicecoach.cli.main import main
from voicecoach.engine.programme import BOUNDS, STRENGTH
from voicecoach.training.progression import DEFAULT_RULES, Rules
from voicecoach.training.reminders import ReminderSettings

HOLD = f"use a whole number of seconds from {BOUNDS.hold_s[0]} to {BOUNDS.hold_s[1]}"
REPS = f"use a whole number of repetitions from {BOUNDS.reps[0]} to {BOUNDS.reps[1]}"
RATE_RANGE = f"from {config.RATE_WPM[0]} to {config.RATE_WPM[1]}"
IN_A_ROW = f"{REPS}, or 0 for the guide's 10 in a row"
TIMES = 'use a list of at most 8 different 24-hour times "HH:MM", e.g. ["08:00", "18:30"]'
QUIET = 'use a range "HH:MM-HH:MM" of 24-hour times, e.g. "21:30-07:30" (it may span midnight), or "" for none'
IN_QUIET = 'which is in the quiet hours, reminders.quiet_hours = "21:30-07:30" (default); use times outside'
NO_TIMES = "reminders.enabled = true needs reminders.times"


def whole(unit: str, low: int, high: int) -> str:
    return f"use a whole number of {unit} from {low} to {high}"


@pytest.fixture(autouse=True)
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """No real /etc or ~/.config file and no state override leaks into a test; returns the fake /etc file."""
    system = tmp_path / "etc" / "config.toml"
    monkeypatch.setattr(config, "SYSTEM_FILE", system)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    monkeypatch.delenv("VOICECOACH_STATE_DIR", raising=False)
    return system


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def user_path(tmp_path: Path) -> Path:
    return tmp_path / "xdg" / "voicecoach" / "config.toml"


UNKNOWN_FIELD = (
    "unknown key programme.strength.squeeze; the keys allowed here are programme.strength.hold, programme.strength.rest"
)

BAD = [
    ("colour = 'red'", "unknown key colour; the keys allowed here are language, state_dir, [audio]"),
    ("[audio]\nvolum = 0.5", "unknown key audio.volum (did you mean audio.volume?)"),
    ("[audio]\nvolume = 'loud'", 'audio.volume = "loud" is not allowed; use a number from 0.0 to 1.0'),
    ("[audio]\nvolume = 1.5", "audio.volume = 1.5 is not allowed; use a number from 0.0 to 1.0"),
    ("[audio]\nvolume = true", "audio.volume = true is not allowed"),
    ("[audio]\noutput_device = -1", "audio.output_device = -1 is not allowed; use a device name, an index"),
    ("[audio]\ninput_device = [1, 2]", "audio.input_device = [1, 2] is not allowed"),
    ("[audio]\ninput_device = {a = 1}", "audio.input_device = a table is not allowed"),
    ("[audio]\nnight_volume_db = -40", "audio.night_volume_db = -40 is not allowed; use a number from -30.0 to 0.0"),
    ("[audio]\nnight_volume_db = 3", "audio.night_volume_db = 3 is not allowed"),
    ("[speech]\ncounts = 'beeps'", 'speech.counts = "beeps" is not allowed; use one of "words", "ticks"'),
    ("audio = 3", "audio must be a table ([audio]) with keys input_device, output_device, volume"),
    ("language = 'de'", 'language = "de" is not allowed; use one of "sv", "en"'),
    ("state_dir = ''", 'state_dir = "" is not allowed; use a path'),
    ("[speech]\nrate = 20", f"speech.rate = 20 is not allowed; use a whole number of words a minute {RATE_RANGE}"),
    ("[speech]\nrate = 160.5", "speech.rate = 160.5 is not allowed; use a whole number"),
    ("[speech]\nvoice = 'sv; reboot'", "speech.voice = \"sv; reboot\" is not allowed; use an espeak-ng voice id"),
    ("[listen]\nsensitivity = 2", "listen.sensitivity = 2 is not allowed; use a number from 0.0 to 1.0"),
    ("[listen]\nvoice_required = 'yes'", 'listen.voice_required = "yes" is not allowed; use true or false'),
    ("[listen]\nmodel = 5", "listen.model = 5 is not allowed; use a path"),
    ("[programme.strength]\nhold = 500", f"programme.strength.hold = 500 is not allowed; {HOLD}"),
    ("[programme.styrka]\nreps = 0", f"programme.styrka.reps = 0 is not allowed; {REPS}"),
    ("[programme.strength]\nhold = '5'", f'programme.strength.hold = "5" is not allowed; {HOLD}'),
    ("[programme.strength]\nsqueeze = 3", UNKNOWN_FIELD),
    ("[programme.yoga]\nhold = 3", "programme.yoga is not an exercise; unknown exercise 'yoga': choose one of"),
    ("[programme.strength]\nhold = 3\n[programme.styrka]\nhold = 4", "are the same exercise; keep one of them"),
    ("programme = 3", "programme must be a table of exercises"),
    ("[audio\nvolume = 1", "is not valid TOML"),
    ("[progression]\ndays_to_move_on = 0", f"progression.days_to_move_on = 0 is not allowed; {whole('days', 1, 30)}"),
    ("[progression]\ndays_to_move_on = 31", "progression.days_to_move_on = 31 is not allowed"),
    ("[progression]\nin_a_row = 21", f"progression.in_a_row = 21 is not allowed; {IN_A_ROW}"),
    ("[progression]\nin_a_row = -1", f"progression.in_a_row = -1 is not allowed; {IN_A_ROW}"),
    ("[progression]\nendurance_step_s = 61", f"endurance_step_s = 61 is not allowed; {whole('seconds', 1, 60)}"),
    ("[progression]\nendurance_sessions_per_step = 2.5", f"per_step = 2.5 is not allowed; {whole('sessions', 1, 10)}"),
    ("[progression]\nsteady_months = 13", f"progression.steady_months = 13 is not allowed; {whole('months', 1, 12)}"),
    ("[progression]\nmax_gap_days = true", f"progression.max_gap_days = true is not allowed; {whole('days', 1, 30)}"),
    ("[progression]\nsymptom_check_every_months = '1'", f'months = "1" is not allowed; {whole("months", 1, 12)}'),
    ("[progression]\ndays_to_moveon = 3", "key progression.days_to_moveon (did you mean progression.days_to_move_on?)"),
    ("progression = 3", "progression must be a table ([progression]) with keys days_to_move_on, in_a_row, endurance"),
    ("[reminders]\nenabled = 'yes'", 'reminders.enabled = "yes" is not allowed; use true or false'),
    ("[reminders]\ntimes = '08:00'", f'reminders.times = "08:00" is not allowed; {TIMES}'),
    ("[reminders]\ntimes = ['8:00']", f'reminders.times = ["8:00"] is not allowed; {TIMES}'),
    ("[reminders]\ntimes = ['24:00']", f'reminders.times = ["24:00"] is not allowed; {TIMES}'),
    ("[reminders]\ntimes = ['08:00 pm']", f'reminders.times = ["08:00 pm"] is not allowed; {TIMES}'),
    ("[reminders]\ntimes = [800]", f"reminders.times = [800] is not allowed; {TIMES}"),
    ("[reminders]\ntimes = ['08:00', '12:00', '08:00']", f'["08:00", "12:00", "08:00"] is not allowed; {TIMES}'),
    ("[reminders]\ntimes = " + str([f"{h:02}:00" for h in range(8, 17)]), f"is not allowed; {TIMES}"),
    ("[reminders]\nquiet_hours = '22-07'", f'reminders.quiet_hours = "22-07" is not allowed; {QUIET}'),
    ("[reminders]\nquiet_hours = '22:00'", f'reminders.quiet_hours = "22:00" is not allowed; {QUIET}'),
    ("[reminders]\nquiet_hours = '22:00-22:00'", f'reminders.quiet_hours = "22:00-22:00" is not allowed; {QUIET}'),
    ("[reminders]\nquiet_hours = false", f"reminders.quiet_hours = false is not allowed; {QUIET}"),
    ("[reminders]\ntimes = ['12:00', '22:00']", f'reminders.times has "22:00", {IN_QUIET}'),
    ("[reminders]\ntimes = ['07:29']", f'reminders.times has "07:29", {IN_QUIET}'),
    ("[reminders]\nquiet_hours = '13:00-14:00'\ntimes = ['13:30']", 'has "13:30", which is in the quiet hours, '
     'reminders.quiet_hours = "13:00-14:00" (/'),
    ("[reminders]\nenabled = true", f'{NO_TIMES}, e.g. times = ["18:00"]; add the times of day to be reminded, or set'),
    ("[reminders]\nenabled = true\ntimes = []", NO_TIMES),
    ("[reminders]\ntime = ['08:00']", "unknown key reminders.time (did you mean reminders.times?); the keys allowed "
     "here are reminders.enabled, reminders.times, reminders.quiet_hours"),
    ("reminders = []", "reminders must be a table ([reminders]) with keys enabled, times, quiet_hours"),
]  # fmt: skip


@pytest.mark.parametrize(("text", "fragment"), BAD, ids=[t.splitlines()[-1][:30] for t, _ in BAD])
def test_bad_configuration_is_one_line_naming_the_file_and_exit_78(
    text: str, fragment: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path / "bad.toml", text)
    assert main(["config", "check", "--config", str(path)]) == 78
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1, captured.err
    assert lines[0].startswith(f"voicecoach: error: {path}")
    assert fragment in lines[0]


def test_missing_explicit_file_is_an_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "nope.toml"
    assert main(["config", "check", "--config", str(missing)]) == 78
    assert f"--config {missing}: the file does not exist" in capsys.readouterr().err


def test_directory_as_config_is_an_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["config", "check", "--config", str(tmp_path)]) == 78
    assert f"{tmp_path} is a directory" in capsys.readouterr().err


def test_not_utf8_is_an_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "latin1.toml"
    path.write_bytes('[speech]\nvoice = "sv"\n# r\xe4ksm\xf6rg\xe5s\n'.encode("latin-1"))
    assert main(["config", "check", "--config", str(path)]) == 78
    assert "is not UTF-8 text" in capsys.readouterr().err


def test_bad_system_file_is_named_even_with_a_good_explicit_file(
    isolated: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write(isolated, "[audio]\nvolume = 7")
    good = write(tmp_path / "good.toml", "language = 'en'")
    assert main(["config", "check", "--config", str(good)]) == 78
    assert f"{isolated}: audio.volume = 7 is not allowed" in capsys.readouterr().err


def test_bad_config_through_a_real_process_exits_78_without_traceback(tmp_path: Path) -> None:
    path = write(tmp_path / "bad.toml", "[listen]\nsensitivity = -1")
    env = {**os.environ, "XDG_CONFIG_HOME": str(tmp_path / "xdg")}
    done = subprocess.run(
        [sys.executable, "-m", "voicecoach", "config", "check", "--config", str(path)],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert done.returncode == 78
    assert done.stdout == ""
    assert "Traceback" not in done.stderr
    assert done.stderr.strip().splitlines() == [
        f"voicecoach: error: {path}: listen.sensitivity = -1 is not allowed; use a number from 0.0 to 1.0"
    ]


def test_check_names_the_files_it_read(isolated: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write(isolated, "language = 'sv'")
    explicit = write(tmp_path / "mine.toml", "[audio]\nvolume = 0.5")
    assert main(["config", "check", "--config", str(explicit)]) == 0
    assert capsys.readouterr().out.strip() == f"ok: {isolated}, --config {explicit}"


def test_no_file_at_all_is_fine_and_gives_the_defaults() -> None:
    cfg = config.load()
    assert cfg.files == ()
    assert set(cfg.origins.values()) == {config.DEFAULT}
    assert cfg.language == "sv"
    assert cfg.audio == config.AudioSettings()
    assert cfg.exercise("styrka") == STRENGTH


def test_precedence_system_then_user_then_explicit_then_flag_then_environment(
    isolated: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write(isolated, "language = 'en'\nstate_dir = '/srv/a'\n[audio]\nvolume = 0.1\n[speech]\nrate = 100")
    write(user_path(tmp_path), "language = 'sv'\nstate_dir = '/srv/b'\n[audio]\nvolume = 0.2")
    explicit = write(tmp_path / "explicit.toml", "state_dir = '/srv/c'\n[audio]\nvolume = 0.3")
    monkeypatch.setenv("VOICECOACH_STATE_DIR", str(tmp_path / "env-state"))

    cfg = config.load(explicit, {"language": "en", "audio.output_device": None})

    assert (cfg.speech.rate, cfg.origins["speech.rate"]) == (100, str(isolated))
    assert (cfg.audio.volume, cfg.origins["audio.volume"]) == (0.3, f"--config {explicit}")
    assert (cfg.language, cfg.origins["language"]) == ("en", "--lang")
    assert (cfg.state_dir, cfg.origins["state_dir"]) == (tmp_path / "env-state", "$VOICECOACH_STATE_DIR")
    # A flag that was not given (None) leaves the value where the files put it.
    assert cfg.origins["audio.output_device"] == config.DEFAULT
    assert cfg.files == (str(isolated), str(user_path(tmp_path)), f"--config {explicit}")


def test_user_file_overrides_system_file(isolated: Path, tmp_path: Path) -> None:
    write(isolated, "[listen]\nsensitivity = 0.2\nvoice_required = true")
    write(user_path(tmp_path), "[listen]\nsensitivity = 0.9")
    cfg = config.load()
    assert cfg.listen.sensitivity == 0.9
    assert cfg.origins["listen.sensitivity"] == str(user_path(tmp_path))
    assert cfg.listen.voice_required is True
    assert cfg.origins["listen.voice_required"] == str(isolated)


def test_bad_flag_value_names_the_flag() -> None:
    with pytest.raises(config.ConfigError, match=r'^--lang: language = "de" is not allowed; use one of "sv", "en"$'):
        config.load(None, {"language": "de"})


def test_flag_paths_are_relative_to_the_working_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert config.load(None, {"listen.model": "models/ko"}).listen.model == tmp_path / "models" / "ko"


def test_relative_paths_in_a_file_are_relative_to_that_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    explicit = write(tmp_path / "conf" / "c.toml", "state_dir = 'state'\n[listen]\nmodel = '../models/sv'")
    monkeypatch.chdir(tmp_path)
    cfg = config.load(explicit)
    assert cfg.state_dir == tmp_path / "conf" / "state"
    assert cfg.listen.model is not None
    assert cfg.listen.model.resolve() == (tmp_path / "models" / "sv").resolve()


def test_empty_strings_mean_the_default_device_and_model(tmp_path: Path) -> None:
    explicit = write(tmp_path / "c.toml", "[audio]\ninput_device = ''\noutput_device = 2\n[listen]\nmodel = ''")
    cfg = config.load(explicit)
    assert cfg.audio.input_device is None
    assert cfg.audio.output_device == 2
    assert cfg.listen.model is None


def test_programme_overrides_apply_to_that_exercise_only(tmp_path: Path) -> None:
    explicit = write(tmp_path / "c.toml", '[programme."uthållighet"]\nhold = 45\nreps = 3')
    cfg = config.load(explicit)
    endurance = cfg.exercise("endurance")
    assert (endurance.hold_s, endurance.reps) == (45, 3)
    assert cfg.origins["programme.endurance.hold"] == f"--config {explicit}"
    assert cfg.exercise("strength") == STRENGTH


def test_show_prints_toml_that_reads_back_to_the_same_configuration(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    explicit = write(
        tmp_path / "c.toml",
        "language = 'en'\n[audio]\noutput_device = 'USB Audio'\nvolume = 0.4\n[speech]\nvoice = 'en-gb+f3'\n"
        "[listen]\nvoice_required = true\n[programme.speed]\nreps = 12",
    )
    monkeypatch.setenv("VOICECOACH_STATE_DIR", str(tmp_path / "st"))
    assert main(["config", "show", "--config", str(explicit)]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0] == f"# files read: --config {explicit}"
    line = next(s for s in out.splitlines() if s.startswith("audio.volume"))
    assert line.endswith(f"# --config {explicit}")
    assert next(s for s in out.splitlines() if s.startswith("state_dir")).endswith("# $VOICECOACH_STATE_DIR")
    assert next(s for s in out.splitlines() if s.startswith("speech.rate")).endswith("# default")

    again = write(tmp_path / "again.toml", out)
    tomllib.loads(out)
    monkeypatch.delenv("VOICECOACH_STATE_DIR")
    assert config.load(again).values == config.load(explicit, {}).values | {"state_dir": tmp_path / "st"}


def test_run_flags_override_the_files_and_name_themselves(tmp_path: Path) -> None:
    explicit = write(tmp_path / "c.toml", "language = 'sv'\n[audio]\ninput_device = 'USB'\noutput_device = 'HDMI'")
    parser = argparse.ArgumentParser()
    cli_config.add_config_argument(parser)
    cli_config.add_override_arguments(parser)
    args = parser.parse_args(["--config", str(explicit), "--lang", "en", "--input-device", "2"])
    cfg = cli_config.load_from_args(args)
    assert (cfg.language, cfg.origins["language"]) == ("en", "--lang")
    assert (cfg.audio.input_device, cfg.origins["audio.input_device"]) == ("2", "--input-device")
    assert (cfg.audio.output_device, cfg.origins["audio.output_device"]) == ("HDMI", f"--config {explicit}")
    assert cfg.listen.model is None


# -- [progression] and [reminders] -------------------------------------------------------------------------------


def test_every_progression_rule_is_a_key_and_the_defaults_are_the_rules_defaults() -> None:
    cfg = config.load()
    keys = [k.removeprefix("progression.") for k in cfg.values if k.startswith("progression.")]
    assert keys == [f.name for f in fields(Rules)]
    assert cfg.rules == DEFAULT_RULES
    assert cfg.values["progression.in_a_row"] == 0
    assert cfg.reminders == ReminderSettings()
    assert cfg.reminders.enabled is False


def test_progression_rules_come_from_the_files(isolated: Path, tmp_path: Path) -> None:
    write(isolated, "[progression]\ndays_to_move_on = 5\nsteady_months = 6")
    explicit = write(tmp_path / "c.toml", "[progression]\ndays_to_move_on = 2\nin_a_row = 8\nendurance_step_s = 15")
    cfg = config.load(explicit)
    assert cfg.rules == Rules(days_to_move_on=2, in_a_row=8, endurance_step_s=15, steady_months=6)
    assert cfg.origins["progression.days_to_move_on"] == f"--config {explicit}"
    assert cfg.origins["progression.steady_months"] == str(isolated)
    assert cfg.origins["progression.max_gap_days"] == config.DEFAULT


def test_in_a_row_zero_means_the_exercise_s_own_set(isolated: Path, tmp_path: Path) -> None:
    write(isolated, "[progression]\nin_a_row = 6")
    explicit = write(tmp_path / "c.toml", "[progression]\nin_a_row = 0")
    assert config.load().rules.in_a_row == 6
    assert config.load(explicit).rules.in_a_row is None


def test_reminders_from_the_files(isolated: Path, tmp_path: Path) -> None:
    write(isolated, "[reminders]\nenabled = true\ntimes = ['08:00']")
    explicit = write(tmp_path / "c.toml", "[reminders]\ntimes = ['07:30', '21:29', '12:05']")
    cfg = config.load(explicit)
    # The quiet hours' own edges: 07:30 is their end, 21:29 the minute before they start.
    assert cfg.reminders == ReminderSettings(
        enabled=True, times=(time(7, 30), time(21, 29), time(12, 5)), quiet=(time(21, 30), time(7, 30))
    )
    assert cfg.origins["reminders.enabled"] == str(isolated)
    assert cfg.origins["reminders.times"] == f"--config {explicit}"


def test_no_quiet_hours_allows_any_time(tmp_path: Path) -> None:
    explicit = write(tmp_path / "c.toml", "[reminders]\nenabled = true\ntimes = ['03:00']\nquiet_hours = ''")
    reminders = config.load(explicit).reminders
    assert (reminders.times, reminders.quiet) == ((time(3, 0),), None)


def test_a_reminder_made_quiet_by_another_file_names_both(
    isolated: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write(isolated, "[reminders]\nquiet_hours = '11:00-13:00'")
    explicit = write(tmp_path / "c.toml", "[reminders]\nenabled = true\ntimes = ['12:00']")
    assert main(["config", "check", "--config", str(explicit)]) == 78
    line = capsys.readouterr().err.strip()
    assert line == (
        f'voicecoach: error: {explicit}: reminders.times has "12:00", which is in the quiet hours,'
        f' reminders.quiet_hours = "11:00-13:00" ({isolated}); use times outside the quiet hours,'
        " or change reminders.quiet_hours"
    )


def test_enabled_in_one_file_without_times_anywhere_names_that_file(
    isolated: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write(isolated, "[reminders]\nquiet_hours = ''")
    write(user_path(tmp_path), "[reminders]\nenabled = true")
    assert main(["config", "check"]) == 78
    assert capsys.readouterr().err.startswith(
        f"voicecoach: error: {user_path(tmp_path)}: reminders.enabled = true needs reminders.times"
    )


def test_show_prints_progression_and_reminders_as_toml_that_reads_back(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    explicit = write(
        tmp_path / "c.toml",
        "[progression]\nin_a_row = 7\nmax_gap_days = 10\n"
        "[reminders]\nenabled = true\ntimes = ['08:00', '18:30']\nquiet_hours = '22:00-06:45'",
    )
    assert main(["config", "show", "--config", str(explicit)]) == 0
    out = capsys.readouterr().out
    shown = {line.split(" = ")[0]: line for line in out.splitlines() if " = " in line}
    origin = f"# --config {explicit}"
    assert shown["progression.in_a_row"].split("#")[0].strip() == "progression.in_a_row = 7"
    assert shown["progression.in_a_row"].endswith(origin)
    assert shown["progression.days_to_move_on"].split("#")[0].strip() == "progression.days_to_move_on = 3"
    assert shown["progression.days_to_move_on"].endswith("# default")
    assert shown["reminders.times"].split("#")[0].strip() == 'reminders.times = ["08:00", "18:30"]'
    assert shown["reminders.times"].endswith(origin)
    assert shown["reminders.quiet_hours"].split("#")[0].strip() == 'reminders.quiet_hours = "22:00-06:45"'
    assert shown["reminders.enabled"].split("#")[0].strip() == "reminders.enabled = true"
    parsed = tomllib.loads(out)
    assert parsed["reminders"] == {"enabled": True, "times": ["08:00", "18:30"], "quiet_hours": "22:00-06:45"}
    assert parsed["progression"]["in_a_row"] == 7

    again = config.load(write(tmp_path / "again.toml", out))
    original = config.load(explicit)
    assert (again.rules, again.reminders, again.values) == (original.rules, original.reminders, original.values)


def test_show_of_the_defaults_reads_back_with_no_quiet_hours_too(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    explicit = write(tmp_path / "c.toml", "[reminders]\nquiet_hours = ''")
    assert main(["config", "show", "--config", str(explicit)]) == 0
    out = capsys.readouterr().out
    assert 'reminders.quiet_hours = ""' in out
    assert "reminders.times = []" in out
    again = config.load(write(tmp_path / "again.toml", out))
    assert again.reminders == ReminderSettings(quiet=None)
    assert again.rules == DEFAULT_RULES
