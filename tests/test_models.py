"""Model fetch and list against a local HTTP server (never the internet), with a small fake model zip."""

from __future__ import annotations

import hashlib
import io
import random
import re
import subprocess
import sys
import zipfile
from dataclasses import replace
from pathlib import Path

import pytest
from http_mirror import Server, closed_port
from http_mirror import server as server  # the fixture: a local HTTP mirror

from voicecoach.cli.main import main
from voicecoach.download import DownloadError
from voicecoach.listen.models import MODELS, ModelError, ModelSpec, fetch, is_model, source_url

SV = MODELS["sv"]
NAME = SV.name
REPO = Path(__file__).resolve().parents[1]


def model_zip(name: str, runtime_graph: bool = True, filler: int = 300_000) -> bytes:
    """A zip laid out like a vosk model; the stored random filler makes the download span many chunks."""
    rng = random.Random(name)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
        archive.writestr(f"{name}/am/final.mdl", rng.randbytes(filler))
        archive.writestr(f"{name}/conf/model.conf", "--min-active=200\n")
        archive.writestr(f"{name}/graph/words.txt", "<eps> 0\npaus 1\n")
        graphs = ("HCLr.fst", "Gr.fst") if runtime_graph else ("HCLG.fst",)
        for graph in graphs:
            archive.writestr(f"{name}/graph/{graph}", rng.randbytes(1000))
    return buffer.getvalue()


def serve(server: Server, data: bytes, spec: ModelSpec = SV) -> ModelSpec:
    """Put `data` on the server under the spec's file name; the spec with the fake's size, md5 and URL."""
    server.files[spec.file_name] = data
    return replace(spec, size=len(data), md5=hashlib.md5(data).hexdigest(), url=server.url(spec.file_name))


def partial(models_dir: Path, spec: ModelSpec = SV) -> Path:
    return models_dir / ".partial" / f"{spec.file_name}.part"


def seed_partial(models_dir: Path, content: bytes) -> Path:
    part = partial(models_dir)
    part.parent.mkdir(parents=True)
    part.write_bytes(content)
    return part


def assert_nothing_installed(models_dir: Path) -> None:
    """No model, no staging directory and no corrupt partial: the models dir is empty or gone."""
    assert not models_dir.exists() or list(models_dir.iterdir()) == []


def list_rows(capsys: pytest.CaptureFixture[str], models_dir: Path) -> dict[str, list[str]]:
    assert main(["model", "list", "--dir", str(models_dir)]) == 0
    lines = capsys.readouterr().out.splitlines()
    return {cols[0]: cols[1:] for cols in (re.split(r"\s{2,}", line.strip()) for line in lines[1:])}


def test_fetch_installs_the_model_and_list_shows_it(
    server: Server, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = model_zip(NAME)
    spec = serve(server, data)
    models_dir = tmp_path / "models"

    installed = fetch(spec, models_dir)

    assert installed == models_dir / NAME and is_model(installed)
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        assert (installed / "am" / "final.mdl").read_bytes() == archive.read(f"{NAME}/am/final.mdl")
    assert list(models_dir.iterdir()) == [installed], "no partial download or staging directory is left"
    assert server.ranges == [None]
    rows = list_rows(capsys, models_dir)
    assert rows[NAME][:2] == ["sv", "runtime grammar"]


def test_list_reports_language_mode_and_size(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    models_dir = tmp_path / "models"
    for name, runtime in ((MODELS["en"].name, False), ("vosk-model-small-ko-0.22", True)):
        with zipfile.ZipFile(io.BytesIO(model_zip(name, runtime, filler=2**20))) as archive:
            archive.extractall(models_dir)
    (models_dir / "notes").mkdir()
    (models_dir / ".partial").mkdir()

    rows = list_rows(capsys, models_dir)

    assert set(rows) == {MODELS["en"].name, "vosk-model-small-ko-0.22", "notes"}
    assert rows[MODELS["en"].name][:2] == ["en", "static graph"]
    assert rows["vosk-model-small-ko-0.22"][:2] == ["unknown", "runtime grammar"]
    assert rows["notes"][:2] == ["unknown", "not a vosk model"]
    assert rows[MODELS["en"].name][2].startswith("1.0 MiB")


def test_list_of_an_empty_models_dir_says_how_to_fetch(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["model", "list", "--dir", str(tmp_path / "none")]) == 0
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "voicecoach model fetch" in captured.err


def test_a_dropped_connection_keeps_the_partial_and_the_next_fetch_asks_only_for_the_rest(
    server: Server, tmp_path: Path
) -> None:
    data = model_zip(NAME)
    spec = serve(server, data)
    models_dir = tmp_path / "models"
    cut = len(data) // 3
    server.cut_after = cut

    with pytest.raises(DownloadError, match="resume") as failure:
        fetch(spec, models_dir)
    assert "nothing was installed" in str(failure.value)
    assert partial(models_dir).stat().st_size == cut
    assert not (models_dir / NAME).exists()

    fetch(spec, models_dir)

    assert server.ranges == [None, f"bytes={cut}-"]
    assert server.sent == [cut, len(data) - cut]
    assert is_model(models_dir / NAME)
    assert not partial(models_dir).exists()


@pytest.mark.parametrize("fraction", [0.001, 0.5, 0.999])
def test_a_partial_left_behind_is_resumed(server: Server, tmp_path: Path, fraction: float) -> None:
    data = model_zip(NAME)
    spec = serve(server, data)
    models_dir = tmp_path / "models"
    have = int(len(data) * fraction)
    seed_partial(models_dir, data[:have])

    fetch(spec, models_dir)

    assert server.ranges == [f"bytes={have}-"]
    assert server.sent == [len(data) - have]
    assert is_model(models_dir / NAME)


def test_a_complete_partial_is_verified_and_installed_without_asking_the_server(server: Server, tmp_path: Path) -> None:
    data = model_zip(NAME)
    spec = serve(server, data)
    models_dir = tmp_path / "models"
    seed_partial(models_dir, data)

    fetch(spec, models_dir)

    assert server.ranges == []
    assert is_model(models_dir / NAME)


def test_a_server_that_ignores_range_is_downloaded_again_from_the_start(server: Server, tmp_path: Path) -> None:
    data = model_zip(NAME)
    spec = serve(server, data)
    models_dir = tmp_path / "models"
    # Garbage in the partial proves the restart rewrote it rather than appending the whole file to it.
    seed_partial(models_dir, b"\0" * 5000)
    server.honour_range = False

    fetch(spec, models_dir)

    assert server.ranges == ["bytes=5000-"]
    assert server.sent == [len(data)]
    assert is_model(models_dir / NAME)


def test_a_wrong_checksum_installs_nothing_and_removes_the_download(server: Server, tmp_path: Path) -> None:
    spec = replace(serve(server, model_zip(NAME)), md5="0" * 32)
    models_dir = tmp_path / "models"

    with pytest.raises(DownloadError, match="corrupt") as failure:
        fetch(spec, models_dir)

    message = str(failure.value)
    assert "removed" in message and "nothing was installed" in message
    assert_nothing_installed(models_dir)


def test_a_server_serving_another_size_installs_nothing_and_removes_the_partial(server: Server, tmp_path: Path) -> None:
    data = model_zip(NAME)
    spec = replace(serve(server, data), size=len(data) + 1)
    models_dir = tmp_path / "models"
    seed_partial(models_dir, data[:1000])

    with pytest.raises(DownloadError, match=f"serves {len(data)} bytes"):
        fetch(spec, models_dir)

    assert_nothing_installed(models_dir)


def test_a_partial_longer_than_the_served_file_is_removed(server: Server, tmp_path: Path) -> None:
    data = model_zip(NAME)
    spec = replace(serve(server, data), size=len(data) + 5000)
    models_dir = tmp_path / "models"
    seed_partial(models_dir, data + b"\0" * 10)

    with pytest.raises(DownloadError, match="cannot continue"):
        fetch(spec, models_dir)

    assert server.ranges == [f"bytes={len(data) + 10}-"]
    assert_nothing_installed(models_dir)


def test_the_official_size_is_checked_against_a_mirror(
    server: Server, state_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    server.files[SV.file_name] = model_zip(NAME)
    models_dir = state_dir / "models"

    assert main(["model", "fetch", "sv", "--url", server.base]) == 1

    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("voicecoach: error:")
    assert f"but {NAME} is {SV.size} bytes" in err
    assert_nothing_installed(models_dir)


def _flip_byte(data: bytes, at: int) -> bytes:
    """Damage one byte of stored file data: the zip still opens, but extracting that member fails its CRC."""
    return data[:at] + bytes([data[at] ^ 0xFF]) + data[at + 1 :]


@pytest.mark.parametrize(
    ("data", "problem"),
    [
        (b"this is no zip file " * 500, "not a readable zip"),
        (model_zip(NAME)[:-200], "not a readable zip"),
        (_flip_byte(model_zip(NAME), 5000), "Bad CRC-32"),
    ],
    ids=["not-a-zip", "truncated", "bad-crc"],
)
def test_an_unreadable_archive_with_the_right_checksum_installs_nothing(
    server: Server, tmp_path: Path, data: bytes, problem: str
) -> None:
    spec = serve(server, data)
    models_dir = tmp_path / "models"

    with pytest.raises(DownloadError, match=problem):
        fetch(spec, models_dir)

    assert_nothing_installed(models_dir)


def test_an_archive_without_a_model_installs_nothing(server: Server, tmp_path: Path) -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr(f"{NAME}/README", "no model here")
        archive.writestr(f"{NAME}/graph/HCLG.fst", "graph without an acoustic model")
    spec = serve(server, buffer.getvalue())
    models_dir = tmp_path / "models"

    with pytest.raises(DownloadError, match="holds no vosk model"):
        fetch(spec, models_dir)

    assert_nothing_installed(models_dir)


def test_an_archive_reaching_outside_its_folder_is_refused(server: Server, tmp_path: Path) -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("../escaped.txt", "outside")
    spec = serve(server, buffer.getvalue())
    models_dir = tmp_path / "models"

    with pytest.raises(DownloadError, match="outside its folder"):
        fetch(spec, models_dir)

    assert not (tmp_path / "escaped.txt").exists()
    assert_nothing_installed(models_dir)


def test_a_model_that_unpacks_into_the_top_level_is_found(server: Server, tmp_path: Path) -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("am/final.mdl", "acoustic")
        archive.writestr("graph/HCLG.fst", "graph")
    spec = serve(server, buffer.getvalue())

    installed = fetch(spec, tmp_path / "models")

    assert (installed / "am" / "final.mdl").read_text() == "acoustic"


def test_a_missing_file_names_the_url_and_the_status(server: Server, tmp_path: Path) -> None:
    spec = replace(SV, url=server.url("gone.zip"))

    with pytest.raises(DownloadError, match="HTTP 404") as failure:
        fetch(spec, tmp_path / "models")

    assert server.url("gone.zip") in str(failure.value)
    assert not (tmp_path / "models" / NAME).exists()


def test_mirror_urls() -> None:
    assert source_url(SV, None) == SV.url
    assert source_url(SV, "http://mirror.lan/vosk/") == f"http://mirror.lan/vosk/{SV.file_name}"
    assert source_url(SV, "http://mirror.lan/vosk") == f"http://mirror.lan/vosk/{SV.file_name}"
    assert source_url(SV, "http://mirror.lan/renamed.zip") == "http://mirror.lan/renamed.zip"


def test_a_mirror_replaces_the_official_url(server: Server, tmp_path: Path) -> None:
    spec = replace(serve(server, model_zip(NAME)), url=f"http://127.0.0.1:{closed_port()}/{SV.file_name}")

    fetch(spec, tmp_path / "models", mirror=server.base)

    assert is_model(tmp_path / "models" / NAME)


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_is_a_redrawn_bar_on_a_terminal(server: Server, tmp_path: Path) -> None:
    spec = serve(server, model_zip(NAME))
    stream = _Terminal()

    fetch(spec, tmp_path / "models", stream=stream)

    text = stream.getvalue()
    bars = re.findall(r"\r\[[#.]+\]\s+(\d+)%", text)
    assert len(bars) > 2 and bars[-1] == "100"
    assert [int(b) for b in bars] == sorted(int(b) for b in bars)


def test_progress_elsewhere_is_a_few_plain_lines(server: Server, tmp_path: Path) -> None:
    spec = serve(server, model_zip(NAME))
    stream = io.StringIO()

    fetch(spec, tmp_path / "models", stream=stream)

    text = stream.getvalue()
    assert "\r" not in text
    percents = [int(p) for p in re.findall(r"^downloaded (\d+)%", text, re.MULTILINE)]
    assert percents[-1] == 100 and len(percents) <= 11


def test_an_installed_model_is_not_fetched_again(state_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with zipfile.ZipFile(io.BytesIO(model_zip(NAME))) as archive:
        archive.extractall(state_dir / "models")

    # An unreachable mirror proves no request is made.
    assert main(["model", "fetch", "sv", "--url", f"http://127.0.0.1:{closed_port()}"]) == 0

    assert "already installed" in capsys.readouterr().err


def test_a_directory_in_the_way_is_reported(tmp_path: Path) -> None:
    (tmp_path / "models" / NAME).mkdir(parents=True)

    with pytest.raises(ModelError, match="already exists"):
        fetch(SV, tmp_path / "models")


def test_an_unknown_language_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["model", "fetch", "xx"]) == 2
    assert "invalid choice" in capsys.readouterr().err


def test_an_unreachable_url_is_one_line_naming_it(state_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    mirror = f"http://127.0.0.1:{closed_port()}/vosk"

    assert main(["model", "fetch", "sv", "--url", mirror]) == 1

    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.count("\n") == 1
    assert f"{mirror}/{SV.file_name}" in captured.err and "--url" in captured.err
    assert "Traceback" not in captured.err
    assert_nothing_installed(state_dir / "models")


def test_an_unreachable_url_from_a_real_process(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{closed_port()}/{MODELS['en'].file_name}"
    script = "import sys; from voicecoach.cli.main import main; sys.exit(main(sys.argv[1:]))"
    args = ["model", "fetch", "en", "--url", url, "--dir", str(tmp_path / "models")]

    done = subprocess.run([sys.executable, "-c", script, *args], capture_output=True, text=True, cwd=REPO, check=False)

    assert done.returncode == 1
    assert done.stdout == ""
    assert done.stderr.count("\n") == 1 and url in done.stderr
    assert "Traceback" not in done.stderr
