"""Command-line input that used to end in a traceback: bytes that are not UTF-8, URLs that are not URLs, a WAV
whose header says 0 Hz, and a model archive whose links would lead its files elsewhere. Each is one line and a
non-zero exit."""

from __future__ import annotations

import io
import os
import socket
import stat
import struct
import subprocess
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from coach_command import voicecoach_command
from conftest import one_error_line
from http_mirror import server as server  # the fixture: a local HTTP mirror
from pulse import PulseServer
from test_models import NAME, assert_nothing_installed, model_zip, partial, serve

from voicecoach.cli.main import main
from voicecoach.config import DEFAULT_RATE_WPM
from voicecoach.download import DownloadError
from voicecoach.engine.language import load_pack
from voicecoach.listen.models import fetch
from voicecoach.sound.clips import ClipCache

NOT_UTF8 = b"\xff\xfe"


def run(args: list[str | bytes], env: dict[str, str], tmp_path: Path) -> subprocess.CompletedProcess[str]:
    """The installed `voicecoach` with raw bytes in its arguments, as a shell passes them."""
    env = {**env, "VOICECOACH_STATE_DIR": str(tmp_path / "state"), "XDG_CONFIG_HOME": str(tmp_path / "xdg")}
    return subprocess.run([*voicecoach_command(), *args], capture_output=True, text=True, env=env, timeout=120)


def assert_one_line(done: subprocess.CompletedProcess[str], fragment: str) -> None:
    assert done.returncode != 0
    assert done.stderr.splitlines() == [done.stderr.strip()], done.stderr
    assert done.stderr.startswith("voicecoach: error: ")
    assert fragment in done.stderr


@pytest.mark.audio
def test_say_with_text_that_is_not_utf8(pulse: PulseServer, tmp_path: Path) -> None:
    done = run(["say", NOT_UTF8], pulse.environ(), tmp_path)
    assert_one_line(done, "the text is not UTF-8")
    assert done.returncode == 2


@pytest.fixture
def listening_socket(tmp_path: Path) -> Iterator[Path]:
    """A control socket that accepts connections (the daemon's place), so a request gets as far as sending."""
    path = tmp_path / "control.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.bind(str(path))
        sock.listen(4)
        yield path


def test_ctl_say_with_text_that_is_not_utf8(listening_socket: Path, tmp_path: Path) -> None:
    done = run(["ctl", "--socket", str(listening_socket), "say", NOT_UTF8], dict(os.environ), tmp_path)
    assert_one_line(done, "the text is not UTF-8")
    assert done.returncode == 2


@pytest.mark.parametrize("url", ["not a url", "http://[::1", "ftp://mirror.example/vosk", "http:///vosk"])
def test_model_fetch_with_a_url_that_is_not_one(url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    models_dir = tmp_path / "models"
    assert main(["model", "fetch", "sv", "--url", url, "--dir", str(models_dir)]) == 1
    line = one_error_line(capsys)
    assert f"--url {url!r} is not an http:// or https:// URL" in line
    assert_nothing_installed(models_dir)


def zero_hertz_wav(path: Path) -> Path:
    """A 16-bit mono WAV of a loud hum whose header gives a sample rate (and byte rate) of 0."""
    data = struct.pack("<2h", 8000, -8000) * 800
    header = b"RIFF" + struct.pack("<I", 36 + len(data)) + b"WAVE"
    header += b"fmt " + struct.pack("<IHHIIHH", 16, 1, 1, 0, 0, 2, 16) + b"data" + struct.pack("<I", len(data))
    path.write_bytes(header + data)
    return path


@pytest.mark.parametrize("where", ["file", "echo"])
def test_recognize_a_wav_of_0_hz(where: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = zero_hertz_wav(tmp_path / "zero.wav")
    args = ["recognize", str(bad)] if where == "file" else ["recognize", str(tmp_path / "x.wav"), "--echo", str(bad)]
    assert main(args) == 2
    line = one_error_line(capsys)
    assert f"cannot read {bad} (its header gives a sample rate of 0 Hz): give a 16-bit PCM WAV" in line


@pytest.mark.speech
def test_a_cached_clip_whose_header_says_0_hz_is_rendered_again(tmp_path: Path) -> None:
    clips = ClipCache(tmp_path / "clips", load_pack("sv").voice, DEFAULT_RATE_WPM, 48000)
    zero_hertz_wav(clips.path_for("hej"))
    assert clips.duration("hej") > 0.1


# -- a model archive that is bad in its links --------------------------------------------------------------------


def link_then_file_under_it(target: str) -> bytes:
    """A model zip with a symbolic link entry, then a file that would go through the link."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(model_zip(NAME))) as good, zipfile.ZipFile(buffer, "w") as archive:
        link = zipfile.ZipInfo(f"{NAME}/am")
        link.external_attr = (stat.S_IFLNK | 0o777) << 16
        archive.writestr(link, target)
        for member in good.infolist():
            archive.writestr(member, good.read(member))
    return buffer.getvalue()


def file_then_file_under_it() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr(f"{NAME}/am", "a file")
        archive.writestr(f"{NAME}/am/final.mdl", "acoustic")
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("data", "problem"),
    [
        (link_then_file_under_it("/tmp"), f"has a symbolic link, {NAME}/am"),
        (link_then_file_under_it("elsewhere"), f"has a symbolic link, {NAME}/am"),
        (file_then_file_under_it(), f"has {NAME}/am both as a file and as a folder"),
    ],
    ids=["link-outside", "link-inside", "file-as-folder"],
)
def test_an_archive_bad_in_its_links_is_refused_and_the_partial_removed(
    data: bytes, problem: str, server, tmp_path: Path
) -> None:
    spec = serve(server, data)
    models_dir = tmp_path / "models"
    with pytest.raises(DownloadError) as caught:
        fetch(spec, models_dir)
    message = str(caught.value)
    assert problem in message
    assert "the download was removed" in message
    assert "--dir" not in message
    assert not partial(models_dir).exists()
    assert_nothing_installed(models_dir)


def test_devices_where_portaudio_finds_none_says_so(tmp_path: Path) -> None:
    """No sound card and no sound server: `voicecoach devices` printed nothing and exited 0, as if it had not run."""
    if Path("/dev/snd").exists():
        pytest.skip("this machine has sound cards, which PortAudio lists without a sound server")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PULSE_", "PIPEWIRE_"))}
    env |= {"PULSE_SERVER": f"unix:{tmp_path / 'no-server'}", "XDG_RUNTIME_DIR": str(tmp_path)}
    done = run(["devices"], env, tmp_path)
    assert_one_line(done, "PortAudio found no audio device")
