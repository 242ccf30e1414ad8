"""speech.engine and speech.voice: checked each on its own and against each other, shown, and a Piper voice that is
not installed warned of (the daemon falls back to espeak-ng, so it is no error)."""

from __future__ import annotations

from pathlib import Path

import pytest
from test_config import isolated as isolated  # the fixture: no real /etc or ~/.config file
from test_config import write
from test_voices import install

from voicecoach import config
from voicecoach.cli.main import main


@pytest.fixture
def state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("VOICECOACH_STATE_DIR", str(tmp_path / "state"))
    return tmp_path / "state"


def check(tmp_path: Path, capsys: pytest.CaptureFixture[str], speech: str) -> tuple[int, str]:
    path = write(tmp_path / "coach.toml", f"[speech]\n{speech}\n")
    code = main(["config", "check", "--config", str(path)])
    return code, capsys.readouterr().err


def one_error_line_of(err: str) -> str:
    (line,) = err.strip().splitlines()
    assert line.startswith("voicecoach: error: ")
    return line


def test_the_engine_is_espeak_by_default_and_piper_can_be_chosen(tmp_path: Path, state: Path) -> None:
    assert config.load().speech.engine == "espeak"
    path = write(tmp_path / "coach.toml", '[speech]\nengine = "piper"\nvoice = "sv_SE-alma-medium"\n')
    speech = config.load(path).speech
    assert (speech.engine, speech.voice) == ("piper", "sv_SE-alma-medium")


def test_an_unknown_engine_is_one_line_naming_the_choices(
    tmp_path: Path, state: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, err = check(tmp_path, capsys, 'engine = "pipr"')
    assert code == 78
    assert 'speech.engine = "pipr" is not allowed; use one of "espeak", "piper"' in one_error_line_of(err)


def test_a_piper_voice_that_is_not_installed_is_a_warning_with_the_fetch_command(
    tmp_path: Path, state: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, err = check(tmp_path, capsys, 'engine = "piper"\nvoice = "sv_SE-lisa-medium"')
    assert code == 0
    assert err.startswith("voicecoach: warning: the configured voice sv_SE-lisa-medium is not installed")
    assert "speaks with espeak-ng; fetch it with: voicecoach voice fetch sv --voice sv_SE-lisa-medium" in err


def test_an_installed_piper_voice_checks_clean(tmp_path: Path, state: Path, capsys: pytest.CaptureFixture[str]) -> None:
    install(state / "voices", "sv_SE-nst-medium")
    code, err = check(tmp_path, capsys, 'engine = "piper"')  # the empty voice is sv_SE-nst-medium
    assert (code, err) == (0, "")


def test_an_own_voice_that_is_installed_is_accepted(tmp_path: Path, state: Path) -> None:
    install(state / "voices", "sv_SE-own-high")
    path = write(tmp_path / "coach.toml", '[speech]\nengine = "piper"\nvoice = "sv_SE-own-high"\n')
    assert config.load(path).speech.voice == "sv_SE-own-high"


def test_a_piper_voice_neither_known_nor_installed_is_refused(
    tmp_path: Path, state: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, err = check(tmp_path, capsys, 'engine = "piper"\nvoice = "sv_SE-nts-medium"')
    assert code == 78
    line = one_error_line_of(err)
    assert 'coach.toml: speech.voice = "sv_SE-nts-medium" is neither a Piper voice voicecoach can fetch' in line
    assert f"nor one installed in {state / 'voices'}" in line


def test_a_piper_voice_with_the_espeak_engine_names_both_files(
    tmp_path: Path, state: Path, isolated: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write(isolated, '[speech]\nengine = "espeak"\n')
    code, err = check(tmp_path, capsys, 'voice = "sv_SE-nst-medium"')
    assert code == 78
    line = one_error_line_of(err)
    assert f'is a Piper voice, but speech.engine = "espeak" ({isolated}); set engine = "piper"' in line


def test_an_espeak_voice_is_still_an_espeak_voice(
    tmp_path: Path, state: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert check(tmp_path, capsys, 'voice = "en-gb+f3"') == (0, "")


def test_show_prints_the_engine_and_which_voice_an_empty_one_means(
    tmp_path: Path, state: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path / "coach.toml", '[speech]\nengine = "piper"\n')
    assert main(["config", "show", "--config", str(path)]) == 0
    out = capsys.readouterr().out
    shown = {line.split(" = ")[0]: line for line in out.splitlines() if line.startswith("speech.")}
    assert shown["speech.engine"].endswith(f"# --config {path}")
    assert shown["speech.voice"].endswith("# default: sv_SE-nst-medium")
