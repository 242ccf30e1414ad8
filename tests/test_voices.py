"""Voice fetch and list against a local HTTP server (never the internet), with a small fake Piper voice."""

from __future__ import annotations

import hashlib
import io
import json
import random
import re
from dataclasses import replace
from pathlib import Path

import pytest
from conftest import one_error_line
from http_mirror import Server, closed_port
from http_mirror import server as server  # the fixture: a local HTTP mirror

from voicecoach.cli.main import main
from voicecoach.download import DownloadError, RemoteFile
from voicecoach.voices import CATALOGUE, DEFAULT_VOICE, VoiceSpec, fetch, installed, is_voice

NST = CATALOGUE[DEFAULT_VOICE]
NAME = NST.name
CONFIG = {
    "audio": {"sample_rate": 22050, "quality": "medium"},
    "espeak": {"voice": "sv"},
    "language": {"code": "sv_SE"},
}


def voice_files(name: str = NAME, filler: int = 300_000) -> tuple[bytes, bytes]:
    """A model of random bytes (many chunks long) and a config as Piper's .onnx.json has it."""
    return random.Random(name).randbytes(filler), json.dumps(CONFIG).encode()


def _published(remote: RemoteFile, data: bytes, server: Server) -> RemoteFile:
    return replace(remote, size=len(data), md5=hashlib.md5(data).hexdigest(), url=server.url(remote.file_name))


def serve(server: Server, spec: VoiceSpec = NST, files: tuple[bytes, bytes] | None = None) -> VoiceSpec:
    """Put the voice's two files on the server; the spec with the fakes' sizes, checksums and URLs."""
    model, config = files or voice_files(spec.name)
    server.files[spec.model.file_name] = model
    server.files[spec.config.file_name] = config
    return replace(spec, model=_published(spec.model, model, server), config=_published(spec.config, config, server))


def staging(voices_dir: Path, name: str = NAME) -> Path:
    return voices_dir / f".{name}.part"


def install(voices_dir: Path, name: str = NAME, config: bytes | None = None) -> Path:
    model, default_config = voice_files(name, filler=2**20)
    directory = voices_dir / name
    directory.mkdir(parents=True)
    (directory / f"{name}.onnx").write_bytes(model)
    (directory / f"{name}.onnx.json").write_bytes(default_config if config is None else config)
    return directory


def assert_nothing_installed(voices_dir: Path, name: str = NAME) -> None:
    assert not (voices_dir / name).exists()
    assert installed(voices_dir) == []


def test_fetch_installs_both_files_in_the_voices_directory(server: Server, tmp_path: Path) -> None:
    spec = serve(server)
    voices_dir = tmp_path / "voices"

    target = fetch(spec, voices_dir)

    assert target == voices_dir / NAME
    assert sorted(p.name for p in target.iterdir()) == [f"{NAME}.onnx", f"{NAME}.onnx.json"]
    assert (target / f"{NAME}.onnx").read_bytes() == server.files[f"{NAME}.onnx"]
    assert list(voices_dir.iterdir()) == [target], "no staging directory is left"
    assert is_voice(voices_dir, NAME)


def test_a_cut_connection_keeps_what_came_hides_it_and_the_next_fetch_resumes(server: Server, tmp_path: Path) -> None:
    spec = serve(server)
    voices_dir = tmp_path / "voices"
    cut = spec.model.size // 3
    server.cut_after = cut

    with pytest.raises(DownloadError, match="run the same command again to resume"):
        fetch(spec, voices_dir)
    assert (staging(voices_dir) / f"{NAME}.onnx.part").stat().st_size == cut
    assert installed(voices_dir) == [], "a half-fetched voice is hidden from the list and the synthesizer"
    assert not is_voice(voices_dir, NAME)

    fetch(spec, voices_dir)

    assert server.ranges == [None, f"bytes={cut}-", None]
    assert server.sent == [cut, spec.model.size - cut, spec.config.size]
    assert is_voice(voices_dir, NAME)
    assert not staging(voices_dir).exists()


def test_a_wrong_checksum_of_the_config_installs_nothing_and_removes_only_that_download(
    server: Server, tmp_path: Path
) -> None:
    spec = serve(server)
    spec = replace(spec, config=replace(spec.config, md5="0" * 32))
    voices_dir = tmp_path / "voices"

    with pytest.raises(DownloadError, match=rf"{NAME}\.onnx\.json from .* is corrupt") as failure:
        fetch(spec, voices_dir)

    assert "removed" in str(failure.value) and "nothing was installed" in str(failure.value)
    assert sorted(p.name for p in staging(voices_dir).iterdir()) == [f"{NAME}.onnx.part"], "the good model is kept"
    assert_nothing_installed(voices_dir)


def test_a_server_serving_another_size_installs_nothing(server: Server, tmp_path: Path) -> None:
    spec = serve(server)
    spec = replace(spec, model=replace(spec.model, size=spec.model.size + 1))
    voices_dir = tmp_path / "voices"

    with pytest.raises(DownloadError, match=f"serves {spec.model.size - 1} bytes, but {NAME}.onnx is"):
        fetch(spec, voices_dir)

    assert_nothing_installed(voices_dir)


def test_a_missing_file_names_the_url_and_the_status(server: Server, tmp_path: Path) -> None:
    spec = serve(server)
    del server.files[f"{NAME}.onnx.json"]

    with pytest.raises(DownloadError, match="HTTP 404") as failure:
        fetch(spec, tmp_path / "voices")

    assert server.url(f"{NAME}.onnx.json") in str(failure.value)
    assert_nothing_installed(tmp_path / "voices")


def test_a_directory_mirror_replaces_both_official_urls(server: Server, tmp_path: Path) -> None:
    spec = serve(server)
    nowhere = f"http://127.0.0.1:{closed_port()}"
    spec = replace(spec, model=replace(spec.model, url=nowhere), config=replace(spec.config, url=nowhere))

    fetch(spec, tmp_path / "voices", mirror=f"{server.base}/")

    assert is_voice(tmp_path / "voices", NAME)


def test_the_official_urls_follow_the_hubs_layout() -> None:
    lisa = CATALOGUE["sv_SE-lisa-medium"]
    assert NST.model.url == (
        "https://huggingface.co/rhasspy/piper-voices/resolve/v1.0.0/sv/sv_SE/nst/medium/sv_SE-nst-medium.onnx"
    )
    assert lisa.config.url.endswith("/sv/sv_SE/lisa/medium/sv_SE-lisa-medium.onnx.json")
    assert NST.model.size == 63_104_526
    assert all(re.fullmatch(r"[0-9a-f]{32}", f.md5) for voice in CATALOGUE.values() for f in voice.files)


def test_progress_is_a_plain_line_every_10_percent_for_each_file(server: Server, tmp_path: Path) -> None:
    spec = serve(server)
    stream = io.StringIO()

    fetch(spec, tmp_path / "voices", stream=stream)

    text = stream.getvalue()
    assert re.findall(r"^downloading (\S+)", text, re.MULTILINE) == [f"{NAME}.onnx", f"{NAME}.onnx.json"]
    percents = [int(p) for p in re.findall(r"^downloaded (\d+)%", text, re.MULTILINE)]
    assert percents.count(100) == 2 and len(percents) <= 22


# -- the command line ------------------------------------------------------------------------------------------------


def configure(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(text)
    return path


def test_voice_fetch_from_a_mirror_installs_into_the_state_directory(
    server: Server, state_dir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    fake = serve(server)
    monkeypatch.setitem(CATALOGUE, NAME, fake)

    assert main(["voice", "fetch", "sv", "--url", server.base]) == 0

    captured = capsys.readouterr()
    # The configuration speaks with espeak-ng: how to change that is said, and nothing is rendered.
    assert captured.out.splitlines() == [
        f"installed {NAME} in {state_dir / 'voices' / NAME}",
        f'to speak with it, set [speech] engine = "piper" and voice = "{NAME}" (voicecoach config show)',
    ]
    assert "verifying the checksum" in captured.err
    assert is_voice(state_dir / "voices", NAME)


def test_the_official_size_is_checked_against_a_mirror(
    server: Server, state_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    model, config = voice_files()
    server.files.update({f"{NAME}.onnx": model, f"{NAME}.onnx.json": config})

    assert main(["voice", "fetch", "--url", server.base]) == 1

    line = one_error_line(capsys)
    assert f"serves {len(model)} bytes, but {NAME}.onnx is {NST.model.size} bytes" in line
    assert_nothing_installed(state_dir / "voices")


def test_an_unreachable_mirror_is_one_line_naming_the_url(state_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    mirror = f"http://127.0.0.1:{closed_port()}/piper"

    assert main(["voice", "fetch", "sv", "--voice", "sv_SE-alma-medium", "--url", mirror]) == 1

    line = one_error_line(capsys)
    assert f"{mirror}/sv_SE-alma-medium.onnx" in line and "--url" in line
    assert_nothing_installed(state_dir / "voices", "sv_SE-alma-medium")


@pytest.mark.parametrize(
    ("args", "problem"),
    [
        (["voice", "fetch", "sv", "--voice", "sv_SE-nts-medium"], "invalid choice: 'sv_SE-nts-medium'"),
        (["voice", "fetch", "en"], "invalid choice: 'en'"),
        (["voice", "fetch", "--url", "ftp://mirror.lan/"], "is not an http:// or https:// URL"),
    ],
)
def test_a_users_mistake_is_one_line_and_a_non_zero_exit(
    args: list[str], problem: str, state_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(args) != 0
    assert problem in one_error_line(capsys)


def test_an_installed_voice_is_not_fetched_again(state_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    install(state_dir / "voices")

    # An unreachable mirror proves no request is made.
    assert main(["voice", "fetch", "--url", f"http://127.0.0.1:{closed_port()}"]) == 0

    assert "already installed" in capsys.readouterr().err


def test_list_shows_language_rate_size_and_the_configured_voice(
    state_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    voices_dir = state_dir / "voices"
    install(voices_dir)
    install(voices_dir, "sv_SE-alma-medium", config=json.dumps({"audio": {"sample_rate": 16000}}).encode())
    install(voices_dir, "broken", config=b"{not json")
    (voices_dir / ".sv_SE-lisa-medium.part").mkdir()
    config = configure(tmp_path, '[speech]\nengine = "piper"\nvoice = "sv_SE-alma-medium"\n')

    assert main(["voice", "list", "--config", str(config)]) == 0

    captured = capsys.readouterr()
    lines = captured.out.splitlines()
    rows = {cols[0]: cols[1:] for cols in (re.split(r"\s{2,}", line.strip()) for line in lines[1:])}
    assert lines[0].split() == ["VOICE", "LANGUAGE", "RATE", "SIZE", "CONFIGURED"]
    assert rows[NAME] == ["sv_SE", "22050 Hz", "1.0 MiB"]
    assert rows["sv_SE-alma-medium"] == ["unknown", "16000 Hz", "1.0 MiB", "yes"]
    assert rows["broken"][:2] == ["unknown", "-"]
    assert set(rows) == {NAME, "sv_SE-alma-medium", "broken"}
    assert "broken.onnx.json is not a Piper voice config" in captured.err


def test_list_says_when_the_configured_voice_is_missing(
    state_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = configure(tmp_path, '[speech]\nengine = "piper"\n')

    assert main(["voice", "list", "--config", str(config)]) == 0

    err = capsys.readouterr().err
    assert "no voices in" in err
    assert f"voicecoach voice fetch sv --voice {NAME}" in err
