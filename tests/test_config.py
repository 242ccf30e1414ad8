"""Configuration: layered TOML files, one clear message and exit 78 for every bad value, where each value came from."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from voicecoach import cli_config, config
from voicecoach.cli import main
from voicecoach.programme import BOUNDS, STRENGTH

HOLD = f"use a whole number of seconds from {BOUNDS.hold_s[0]} to {BOUNDS.hold_s[1]}"
REPS = f"use a whole number of repetitions from {BOUNDS.reps[0]} to {BOUNDS.reps[1]}"
RATE_RANGE = f"from {config.RATE_WPM[0]} to {config.RATE_WPM[1]}"


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
    ("[audio]\ninput_device = [1, 2]", "audio.input_device = a list is not allowed"),
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
