"""state_dir set in the configuration, and no $VOICECOACH_STATE_DIR (issue 11): every command that opens the
journal, the clip cache or the models opens the daemon's, <state_dir>/journal.sqlite3, clips/ and models/, and
never the default location ($XDG_STATE_HOME/voicecoach)."""

from __future__ import annotations

import io
import json
import os
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from conftest import one_error_line
from daemon_harness import Daemon
from pulse import PulseServer
from test_daemon_conversation import confident_days, journal_events
from test_models import NAME, closed_port, model_zip

from voicecoach import config
from voicecoach.cli import install_service as cli_service
from voicecoach.cli.main import main
from voicecoach.engine.language import load_pack
from voicecoach.engine.programme import IDENTIFICATION, STRENGTH, with_overrides
from voicecoach.engine.session import Session
from voicecoach.sound.clips import ClipCache, write_wav

SV = load_pack("sv")
RATE_WPM = 200  # not the default 160: a clip rendered at the default rate is not the configured one


class Places:
    """The configured state directory, and the default one that must stay untouched."""

    def __init__(self, root: Path) -> None:
        self.state = root / "configured-state"
        self.default = root / "default-state"
        self.config_home = root / "xdg-config"

    @property
    def journal(self) -> Path:
        # Where the daemon writes it (daemon/run.py: the configuration's state_dir).
        return self.state / "journal.sqlite3"

    def write_config(self, extra: str = "") -> Path:
        path = self.config_home / "voicecoach" / "config.toml"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"state_dir = {json.dumps(str(self.state))}\n{extra}", encoding="utf-8")
        return path

    def environ(self, base: dict[str, str]) -> dict[str, str]:
        env = {k: v for k, v in base.items() if k != "VOICECOACH_STATE_DIR"}
        return {**env, "XDG_STATE_HOME": str(self.default), "XDG_CONFIG_HOME": str(self.config_home)}

    def assert_default_untouched(self) -> None:
        assert not self.default.exists(), (
            f"something was written to the default location: {list(self.default.rglob('*'))}"
        )


@pytest.fixture
def places(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Places]:
    """state_dir in the user's config.toml (no --config), no $VOICECOACH_STATE_DIR, no system file."""
    where = Places(tmp_path)
    where.write_config(f"[speech]\nrate = {RATE_WPM}\n")
    for name, value in where.environ({}).items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("VOICECOACH_STATE_DIR", raising=False)
    monkeypatch.setenv("TZ", "Europe/Stockholm")
    monkeypatch.setattr(config, "SYSTEM_FILE", tmp_path / "etc" / "config.toml")
    yield where
    where.assert_default_untouched()


def configured_clip(places: Places, text: str) -> Path:
    """Where the daemon's clip cache keeps a phrase: its state directory, its [speech] rate, the pack's voice."""
    return ClipCache(places.state / "clips", SV.voice, RATE_WPM, 22050).path_for(text)


# -- the journal ----------------------------------------------------------------------------------------------------


def test_history_reads_the_configured_journal(places: Places, capsys: pytest.CaptureFixture[str]) -> None:
    confident_days(places.state)
    assert main(["history", "--json"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["exercise"] for r in rows] == [IDENTIFICATION.key] * 3


def test_progress_reads_and_accept_writes_the_configured_journal(
    places: Places, capsys: pytest.CaptureFixture[str]
) -> None:
    confident_days(places.state)
    assert main(["progress", "--accept"]) == 0
    assert capsys.readouterr().out.startswith("accepted: now learning strength (styrka)")
    assert journal_events(places.state) == [("advanced", "strength")]


@pytest.mark.speech
def test_session_next_reads_the_configured_journal_and_speaks_at_the_configured_rate(
    places: Places, capsys: pytest.CaptureFixture[str]
) -> None:
    confident_days(places.state)
    assert main(["progress", "--accept"]) == 0
    capsys.readouterr()
    assert main(["session", "next", "--reps", "1", "--timeline"]) == 0
    cues = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    # The exercise due is strength, as the configured journal says; a journal read elsewhere would say identification.
    strength = Session(with_overrides(STRENGTH, reps=1), SV, lambda _t: 1.0).start(0.0).cues[0].text
    assert cues[0]["text"] == strength
    assert configured_clip(places, cues[0]["text"]).exists()


@pytest.mark.speech
def test_session_takes_the_configured_language(places: Places, capsys: pytest.CaptureFixture[str]) -> None:
    places.write_config('language = "en"\n')
    assert main(["session", "strength", "--reps", "1", "--timeline"]) == 0
    texts = [json.loads(line)["text"] for line in capsys.readouterr().out.splitlines()]
    assert "Release slowly" in texts


@pytest.mark.audio
@pytest.mark.speech
def test_say_renders_into_the_configured_clip_cache(pulse: PulseServer, places: Places) -> None:
    assert main(["say", "hej", "då"]) == 0
    assert configured_clip(places, "hej då").exists()


# -- the models -----------------------------------------------------------------------------------------------------


def install_fake_model(places: Places) -> Path:
    with zipfile.ZipFile(io.BytesIO(model_zip(NAME))) as archive:
        archive.extractall(places.state / "models")
    return places.state / "models" / NAME


def test_model_list_and_fetch_look_in_the_configured_models(places: Places, capsys: pytest.CaptureFixture[str]) -> None:
    install_fake_model(places)
    assert main(["model", "list"]) == 0
    assert NAME in capsys.readouterr().out
    # An unreachable mirror: the model is found installed, so nothing is asked of it.
    assert main(["model", "fetch", "sv", "--url", f"http://127.0.0.1:{closed_port()}"]) == 0
    assert f"already installed in {places.state / 'models'}" in capsys.readouterr().err


def no_model_in(places: Places) -> str:
    return f"no speech model in {places.state / 'models' / NAME}"


def quiet_wav(tmp_path: Path) -> Path:
    path = tmp_path / "quiet.wav"
    write_wav(path, np.zeros(1600, dtype=np.float32), 16000)
    return path


def test_recognize_looks_for_the_model_in_the_configured_state(
    places: Places, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["recognize", str(quiet_wav(tmp_path))]) == 1
    assert no_model_in(places) in one_error_line(capsys)


@pytest.mark.audio
def test_listen_looks_for_the_model_in_the_configured_state(
    pulse: PulseServer, places: Places, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["listen"]) == 1
    assert no_model_in(places) in one_error_line(capsys)


def test_install_service_copies_the_models_of_the_configured_state(places: Places) -> None:
    if sys.prefix == sys.base_prefix:
        pytest.skip("the tests do not run in a virtualenv")
    setup = cli_service.find_setup(system=True, dry_run=True)
    assert setup.models_from == places.state / "models"


# -- the daemon and the commands together ---------------------------------------------------------------------------


@pytest.mark.audio
def test_a_set_the_daemon_records_is_what_history_shows(
    pulse: PulseServer, places: Places, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The real `voicecoach run`, told its state directory by the configuration alone (the same file, given with
    --config: the harness gives the daemon an empty XDG_CONFIG_HOME)."""
    settings = places.write_config()
    env = places.environ(pulse.environ())
    root = tmp_path / "daemon"
    args = ["--config", str(settings), "--model", str(root / "no-model")]
    with Daemon(root, args, env, state_dir=places.state, state_from_env=False) as d:
        d.wait_ready()
        d.ctl("start", "speed")
        d.ctl("stop")
        d.wait_status(lambda s: s["state"] == "idle", what="idle after stop")
        assert d.terminate() == 0
    assert places.journal.exists() and (places.state / "clips").is_dir()
    assert main(["history", "--json"]) == 0
    [row] = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert row["exercise"] == "speed" and row["outcome"] == "stopped"
    assert os.environ.get("VOICECOACH_STATE_DIR") is None
