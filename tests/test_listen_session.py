"""`voicecoach session EXERCISE --listen`: a set in the terminal under voice control, and the errors a user can
make with it. The live test speaks a Korean command (the one real model installable here) into the virtual
microphone of the `pulse` fixture while the set plays into its virtual speaker."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import one_error_line
from live_session import LiveSession
from pulse import PulseServer
from speech_corpus import KO_COMMANDS, phrase_wavs, require_ko_model, say_until

from voicecoach import config
from voicecoach.cli.main import main
from voicecoach.sound import audio
from voicecoach.sound.audio import Device
from voicecoach.training.journal import Journal

# Hang guards only; nothing is measured against them. The first repetition comes after the model has loaded
# and every phrase of the set has been rendered into an empty clip cache.
FIRST_REP_S = 180.0
# How long one try waits for a spoken command to be heard before saying it again: ample for a decode.
HEARD_S = 10.0
EXIT_S = 30.0


@pytest.fixture(autouse=True)
def no_config_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """--listen reads the configuration's [listen] settings: no file of this machine's may leak in."""
    monkeypatch.setattr(config, "SYSTEM_FILE", tmp_path / "etc" / "config.toml")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))


@pytest.fixture
def any_device(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every device name is found (a device never opened): for errors that must come before any audio plays."""
    monkeypatch.setattr(audio, "resolve_device", lambda _spec, _kind="output": Device(0, "fake", 1, 1, 48000))


@pytest.mark.parametrize("mode", [["--render", "set.wav"], ["--timeline"]])
def test_listen_with_render_or_timeline_is_a_usage_error(mode: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["session", "styrka", "--listen", *mode]) == 2
    assert f"argument {mode[0]}: not allowed with argument --listen" in one_error_line(capsys)


def test_voice_options_without_listen_are_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["session", "styrka", "--model", "m", "--input-device", "mic"]) == 2
    line = one_error_line(capsys)
    assert "--model and --input-device need --listen" in line
    assert main(["session", "styrka", "--explain"]) == 2
    assert "--explain needs --listen" in one_error_line(capsys)


@pytest.mark.usefixtures("any_device")
@pytest.mark.parametrize("given", [True, False], ids=["--model", "installed"])
def test_listen_without_a_model_says_how_to_get_one_before_the_set_starts(
    given: bool, state_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    model = tmp_path / "no-model"
    args = ["--model", str(model)] if given else []
    assert main(["session", "styrka", "--listen", *args]) == 1
    line = one_error_line(capsys)
    where = model if given else state_dir / "models" / "vosk-model-small-sv-rhasspy-0.15"
    assert f"no speech model in {where}" in line
    assert "voicecoach model fetch sv" in line and "--model" in line
    assert capsys.readouterr().out == ""
    with Journal.open(state_dir / "journal.sqlite3") as journal:
        assert journal.sessions() == []


@pytest.mark.model
@pytest.mark.usefixtures("any_device", "state_dir")
def test_a_command_word_the_model_lacks_is_named(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pack = tmp_path / "commands.toml"
    text = KO_COMMANDS.read_text(encoding="utf-8")
    assert 'phrases = ["정지", "끝내자"]' in text
    pack.write_text(text.replace('phrases = ["정지", "끝내자"]', 'phrases = ["정지", "knipa"]'), encoding="utf-8")
    args = ["--model", str(require_ko_model()), "--commands", str(pack)]
    assert main(["session", "styrka", "--listen", *args]) == config.ConfigError.exit_code
    line = one_error_line(capsys)
    assert "'knipa'" in line and str(pack) in line


@pytest.mark.audio
@pytest.mark.usefixtures("state_dir")
def test_an_unknown_microphone_is_named_before_the_model_loads(
    pulse: PulseServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["--model", str(tmp_path / "no-model"), "--device", "pulse", "--input-device", "no-such-mic"]
    assert main(["session", "styrka", "--listen", *args]) == 1
    line = one_error_line(capsys)
    assert "'no-such-mic' is not an input device" in line and "voicecoach devices" in line


@pytest.mark.audio
@pytest.mark.model
def test_a_spoken_stop_ends_the_set_and_the_journal_records_it_stopped(
    pulse: PulseServer, live: Callable[..., LiveSession], tmp_path: Path
) -> None:
    model = require_ko_model()
    stop = phrase_wavs(tmp_path)["stop"]
    state = tmp_path / "state"
    env = {**pulse.environ(), "VOICECOACH_STATE_DIR": str(state), "XDG_CONFIG_HOME": str(tmp_path / "xdg")}
    # The ALSA `pulse` device records the server's PULSE_SOURCE, the virtual microphone's monitor, and plays
    # into PULSE_SINK, the virtual speaker.
    devices = ["--input-device", "pulse", "--device", "pulse"]
    session = live(
        ["session", "speed", "--listen", "--model", str(model), "--commands", str(KO_COMMANDS), *devices], env
    )
    # A repetition is journalled as it is released.
    session.wait_line(lambda line: "release 1: " in line, FIRST_REP_S, "the first repetition")

    def heard_stop() -> str:
        # A try heard as another command (a pause, say) is tried again: only the stop ends the set.
        return session.wait_line(lambda line: "heard: 정지" in line, HEARD_S, "the stop heard")

    say_until(pulse.play, stop, heard_stop, TimeoutError)
    try:
        code = session.process.wait(EXIT_S)
    except subprocess.TimeoutExpired:
        raise AssertionError(f"still running {EXIT_S:.0f} s after the stop was heard: {session.explain()}") from None
    assert code == 0, session.explain()
    heard = [line.split(maxsplit=1)[1] for line in session.lines if "heard: " in line]
    assert heard[-1] == "heard: 정지", session.explain()
    stderr = session.stderr()
    assert "listening on pulse" in stderr and "set stopped" in stderr and "Traceback" not in stderr, stderr
    with Journal.open(state / "journal.sqlite3") as journal:
        [record] = journal.sessions()
    assert (record.exercise, str(record.outcome)) == ("speed", "stopped")
    assert record.reps and record.reps[0].rep == 1
