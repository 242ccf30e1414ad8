"""`voicecoach commands`, and the errors of `recognize` and `listen` that need no model."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from voicecoach.cli.main import main
from voicecoach.engine.language import load_pack
from voicecoach.sound.clips import write_wav

KO_COMMANDS = Path(__file__).parent / "data" / "commands-ko.toml"


def test_commands_json_has_one_object_per_phrase(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["commands", "--json"]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [line["phrase"] for line in lines] == [c.phrase for c in load_pack("sv").commands]
    by_phrase = {line["phrase"]: line for line in lines}
    assert by_phrase["paus"] == {"phrase": "paus", "intent": "pause", "states": ["session"]}
    assert by_phrase["starta styrka"] == {
        "phrase": "starta styrka",
        "intent": "start",
        "states": ["idle"],
        "exercise": "strength",
    }
    assert by_phrase["påminn mig om trettio minuter"] == {
        "phrase": "påminn mig om trettio minuter",
        "intent": "snooze",
        "states": ["idle"],
        "minutes": 30,
    }


def test_commands_of_another_language_and_of_a_command_pack(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["commands", "--lang", "en", "--json"]) == 0
    english = {json.loads(line)["phrase"] for line in capsys.readouterr().out.splitlines()}
    assert {"pause", "resume", "how many left", "start strength"} <= english
    assert main(["commands", "--commands", str(KO_COMMANDS), "--json"]) == 0
    korean = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert {"phrase": "멈춤", "intent": "pause", "states": ["session"]} in korean


def test_recognize_without_a_model_says_how_to_get_one(
    state_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    wav = tmp_path / "quiet.wav"
    write_wav(wav, np.zeros(1600, dtype=np.float32), 16000)
    assert main(["recognize", str(wav)]) == 1
    error = capsys.readouterr().err
    assert "voicecoach model fetch sv" in error
    assert "Traceback" not in error


def test_recognize_refuses_an_unreadable_wav(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"not a wav file")
    assert main(["recognize", str(bad)]) == 2
    assert "cannot read" in capsys.readouterr().err


def test_a_command_pack_without_commands_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    empty = tmp_path / "empty.toml"
    empty.write_text('code = "xx"\n', encoding="utf-8")
    assert main(["commands", "--commands", str(empty)]) == 1
    assert "has no [[commands]]" in capsys.readouterr().err
