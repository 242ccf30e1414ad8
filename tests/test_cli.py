"""Every user error of the foundation's CLI: one line on stderr naming the problem and the fix, non-zero exit."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import one_error_line

from voicecoach.cli.main import main


def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "voicecoach", *args],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        timeout=120,
    )


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["session", "jogging"], "unknown exercise 'jogging': choose one of identification"),
        (["session", "styrka", "--hold", "-3"], "hold of -3 is out of range: use 1 to 180 seconds"),
        (["session", "styrka", "--hold", "100000"], "hold of 100000 is out of range"),
        (["session", "styrka", "--rest", "0"], "rest of 0 is out of range"),
        (["session", "styrka", "--reps", "500"], "reps of 500 is out of range: use 1 to 20 repetitions"),
        (["session", "styrka", "--hold", "fem"], "'fem' is not a whole number"),
        (["session", "styrka", "--hold", "2.5"], "'2.5' is not a whole number"),
        (["session", "styrka", "--lang", "fi"], "invalid choice: 'fi' (choose from 'sv', 'en')"),
        (["session"], "required: exercise"),
        (["sessions", "styrka"], "invalid choice: 'sessions'"),
        (["session", "styrka", "--render", "/nonexistent-dir/x.wav"], "the directory /nonexistent-dir does not exist"),
        (["session", "styrka", "--render", "/"], "it is a directory"),
    ],
)
def test_bad_input_gets_one_clear_line_and_a_nonzero_exit(args, fragment, capsys, state_dir):
    code = main(args)
    assert code == 2
    assert fragment in one_error_line(capsys)


def test_unwritable_render_path_is_refused_before_rendering(capsys, state_dir, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    assert main(["session", "styrka", "--render", str(blocker / "x.wav")]) == 2
    assert "does not exist" in one_error_line(capsys)
    assert not (state_dir / "clips").exists(), "nothing should be rendered for a render that cannot be saved"


@pytest.mark.audio
def test_missing_output_device_is_named(pulse, capsys, state_dir):
    code = main(["session", "styrka", "--device", "no-such-speaker"])
    assert code == 1
    line = one_error_line(capsys)
    assert "'no-such-speaker'" in line and "voicecoach devices" in line


def test_errors_from_a_subprocess_have_no_traceback(tmp_path):
    result = run_cli("session", "styrka", "--hold", "0", env={"VOICECOACH_STATE_DIR": str(tmp_path)})
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert result.stderr.startswith("voicecoach: error: hold of 0")


@pytest.mark.speech
def test_missing_espeak_ng_says_how_to_install_it(tmp_path):
    """Hides the real libespeak-ng in a private mount namespace, as if the package were not installed."""
    import ctypes.util

    unshare = shutil.which("unshare")
    name = ctypes.util.find_library("espeak-ng")
    candidates = [p for p in Path("/usr/lib").rglob(name or "libespeak-ng.so.1")] if name else []
    if os.geteuid() != 0 or unshare is None or not candidates:
        pytest.skip("needs root, unshare and an installed libespeak-ng to hide")
    hide = " && ".join(f"mount --bind /dev/null {p}" for p in candidates)
    cmd = f"{hide} && exec {sys.executable} -m voicecoach session styrka --timeline"
    result = subprocess.run(
        [unshare, "--mount", "sh", "-c", cmd],
        capture_output=True,
        text=True,
        env={**os.environ, "VOICECOACH_STATE_DIR": str(tmp_path)},
        timeout=60,
    )
    if "mount" in result.stderr and "permission denied" in result.stderr.lower():
        pytest.skip("this sandbox does not allow mount namespaces")
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    assert "sudo apt-get install espeak-ng" in result.stderr
    assert result.stdout == ""


@pytest.mark.speech
def test_timeline_is_json_lines_with_the_documented_fields(capsys, state_dir):
    assert main(["session", "snabbhet", "--reps", "2", "--timeline"]) == 0
    lines = capsys.readouterr().out.splitlines()
    cues = [json.loads(line) for line in lines]
    assert all(set(c) == {"t", "phase", "rep", "text"} for c in cues)
    assert {c["phase"] for c in cues} == {"intro", "hold", "release", "rest", "done"}
    assert cues[0]["t"] == 0.0 and cues[0]["rep"] is None


def test_a_set_has_the_configured_numbers_and_the_command_line_wins(capsys, state_dir, tmp_path):
    settings = tmp_path / "config.toml"
    settings.write_text("[programme.speed]\nreps = 4\nrest = 6\n", encoding="utf-8")

    def reps_and_intro(*extra: str) -> tuple[int, str]:
        assert main(["session", "snabbhet", "--timeline", "--config", str(settings), *extra]) == 0
        cues = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
        return sum(c["phase"] == "release" for c in cues), cues[0]["text"]

    reps, intro = reps_and_intro()
    assert reps == 4 and "vila sex sekunder" in intro
    reps, intro = reps_and_intro("--reps", "2")
    assert reps == 2 and "vila sex sekunder" in intro


@pytest.mark.speech
def test_english_timeline_speaks_english(capsys, state_dir):
    assert main(["session", "strength", "--lang", "en", "--reps", "1", "--timeline"]) == 0
    texts = [json.loads(line)["text"] for line in capsys.readouterr().out.splitlines()]
    assert texts[1:4] == ["One of one", "Squeeze", "one"]
    assert "Release slowly" in texts


@pytest.mark.speech
def test_a_pack_file_is_spoken_instead_of_the_language(capsys, state_dir):
    pack = Path(__file__).parent / "data" / "narration-ko.toml"
    assert main(["session", "strength", "--pack", str(pack), "--reps", "1", "--timeline"]) == 0
    texts = [json.loads(line)["text"] for line in capsys.readouterr().out.splitlines()]
    assert texts[1:4] == ["하나 번 중 첫 번째", "조여요", "하나"]


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        (None, "speech.pack: cannot read language pack"),
        ("code = 'xx'\n", "missing 'name'"),
        ("not toml [", "is not valid TOML"),
    ],
)
def test_a_pack_file_that_cannot_be_spoken_is_one_line_and_exit_78(content, fragment, capsys, state_dir, tmp_path):
    pack = tmp_path / "pack.toml"
    if content is not None:
        pack.write_text(content)
    assert main(["session", "styrka", "--pack", str(pack), "--timeline"]) == 78
    line = one_error_line(capsys)
    assert "speech.pack" in line and fragment in line
