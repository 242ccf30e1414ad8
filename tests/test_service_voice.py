"""install-service and the configured Piper voice: copied into the system service's state directory beside the speech
model (one chown, then both renamed into place), or a note on how to fetch it; the user service only gets the note."""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

import pytest
from test_service import MODEL, logged, make_model, tree, use_setup
from test_service import fake_bin as fake_bin  # the fixtures this module shares
from test_service import runtime_dirs as runtime_dirs  # autouse: no real coach's control socket
from test_service import strict_umask as strict_umask
from test_service import system as system
from test_service import user as user
from test_voices import install

from voicecoach import config
from voicecoach.cli import install_service as cli_service
from voicecoach.cli.main import main
from voicecoach.cli.service_steps import USER_STATE, Command, CopyTree, Rename, Setup, plan

NST = "sv_SE-nst-medium"
ALMA = "sv_SE-alma-medium"


@pytest.fixture
def piper(system: Setup) -> Setup:
    """The system setup of a user who speaks with the alma voice and has fetched the speech model."""
    make_model(system.models_from)
    return dataclasses.replace(system, voice=ALMA)


def copies(setup: Setup) -> list[object]:
    return [
        s
        for s in plan(setup).steps
        if isinstance(s, CopyTree | Rename) or (isinstance(s, Command) and s.argv[0] == "chown")
    ]


def test_system_plan_copies_the_voice_beside_the_model_with_one_chown(piper: Setup) -> None:
    install(piper.voices_from, ALMA)
    state = piper.root / "var/lib/voicecoach"
    model_staging = state / "models" / f".install-{MODEL}"
    voice_staging = state / "voices" / f".install-{ALMA}"

    assert copies(piper) == [
        CopyTree(piper.models_from / MODEL, model_staging),
        CopyTree(piper.models_from.parent / "voices" / ALMA, voice_staging),
        Command(("chown", "-R", "voicecoach:voicecoach", str(state))),
        Rename(model_staging, state / "models" / MODEL),
        Rename(voice_staging, state / "voices" / ALMA),
    ]
    assert plan(piper).notes == ()


def test_system_plan_without_the_voice_says_how_to_fetch_it_for_the_service(piper: Setup) -> None:
    state = piper.root / "var/lib/voicecoach"
    p = plan(piper)
    (note,) = p.notes
    assert f"no {ALMA} voice in {piper.voices_from} to copy, so the coach speaks with espeak-ng" in note
    assert f"sudo -u voicecoach VOICECOACH_STATE_DIR={state} {piper.executable} voice fetch sv --voice {ALMA}" in note
    assert [type(s) for s in copies(piper)] == [CopyTree, Command, Rename], "the model is copied all the same"


def test_system_plan_copies_no_voice_for_espeak_or_one_the_service_has(piper: Setup) -> None:
    install(piper.voices_from, ALMA)
    assert [type(s) for s in copies(dataclasses.replace(piper, voice=None))] == [CopyTree, Command, Rename]
    install(piper.root / "var/lib/voicecoach/voices", ALMA)
    assert CopyTree(piper.voices_from / ALMA, piper.root / f"var/lib/voicecoach/voices/.install-{ALMA}") not in copies(
        piper
    )


def test_system_plan_leaves_a_broken_voice_of_the_service_alone(piper: Setup) -> None:
    install(piper.voices_from, ALMA)
    broken = piper.root / "var/lib/voicecoach/voices" / ALMA
    broken.mkdir(parents=True)
    (broken / f"{ALMA}.onnx").write_bytes(b"half a voice")
    (note,) = plan(piper).notes
    assert "is not a whole voice" in note and f"sudo rm -r {broken}" in note


def test_user_plan_notes_a_missing_voice_where_the_user_unit_looks(user: Setup) -> None:
    state = user.home / USER_STATE
    make_model(state / "models")
    setup = dataclasses.replace(user, voice=NST)
    (note,) = plan(setup).notes
    assert f"VOICECOACH_STATE_DIR={state} {user.venv}/bin/voicecoach voice fetch sv --voice {NST}" in note
    assert "systemctl --user restart voicecoach" in note
    install(state / "voices", NST)
    assert plan(setup).notes == ()


def test_find_setup_takes_the_configured_piper_voice(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("VOICECOACH_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setattr(config, "SYSTEM_FILE", tmp_path / "etc.toml")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    (tmp_path / "xdg" / "voicecoach").mkdir(parents=True)
    (tmp_path / "xdg" / "voicecoach" / "config.toml").write_text('[speech]\nengine = "piper"\n')
    if sys.prefix == sys.base_prefix:
        pytest.skip("the tests do not run in a virtualenv")
    setup = cli_service.find_setup(system=True, dry_run=True)
    assert setup.voice == NST
    assert setup.voices_from == tmp_path / "state" / "voices"


def test_real_run_copies_the_voice_with_the_services_modes(
    piper: Setup, fake_bin: Path, strict_umask: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    install(piper.voices_from, ALMA)
    use_setup(monkeypatch, piper)
    assert main(["install-service"]) == 0
    state = piper.root / "var/lib/voicecoach"
    assert f"chown -R voicecoach:voicecoach {state}" in logged(fake_bin)
    modes = tree(state)
    assert {k: v for k, v in modes.items() if k.startswith("voices")} == {
        "voices": 0o750,
        f"voices/{ALMA}": 0o750,
        f"voices/{ALMA}/{ALMA}.onnx": 0o640,
        f"voices/{ALMA}/{ALMA}.onnx.json": 0o640,
    }
    assert (state / "voices" / ALMA / f"{ALMA}.onnx").read_bytes() == (
        piper.voices_from / ALMA / f"{ALMA}.onnx"
    ).read_bytes()
