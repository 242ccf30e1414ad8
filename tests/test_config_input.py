"""Configuration input that is hostile or odd: nesting deep enough to exhaust the parser, special files in the place
of a file, a reload of such a file by the running daemon, and sets the progression can never move on from."""

from __future__ import annotations

import os
import resource
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import one_error_line
from daemon_harness import Daemon
from test_config import isolated as isolated  # the fixture: no real /etc or ~/.config file
from test_config import write

from voicecoach.cli.main import main

DEEP = "x = " + "[" * 500 + "]" * 500 + "\n"
# Enough for the command's imports; an unbounded read of /dev/zero runs into it at once.
ADDRESS_SPACE = 1 << 30
# Only guards against a hang; nothing is measured against it.
HANG_S = 60


def check_in_a_process(path: Path, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    """`voicecoach config check --config path` in its own process, with its address space capped."""

    def cap() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (ADDRESS_SPACE, ADDRESS_SPACE))

    env = {**os.environ, "XDG_CONFIG_HOME": str(tmp_path / "xdg"), "VOICECOACH_STATE_DIR": str(tmp_path / "state")}
    try:
        return subprocess.run(
            [sys.executable, "-m", "voicecoach", "config", "check", "--config", str(path)],
            capture_output=True,
            text=True,
            env=env,
            preexec_fn=cap,
            timeout=HANG_S,
        )
    except subprocess.TimeoutExpired:
        raise AssertionError(f"config check --config {path} did not finish") from None


def test_arrays_nested_too_deeply_are_one_line_and_exit_78(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path / "deep.toml", DEEP)
    assert main(["config", "check", "--config", str(path)]) == 78
    line = one_error_line(capsys)
    assert line.startswith(f"voicecoach: error: {path} ")
    assert "nested too deeply" in line


def test_dev_zero_is_refused_without_reading_it(tmp_path: Path) -> None:
    done = check_in_a_process(Path("/dev/zero"), tmp_path)
    assert done.returncode == 78, done.stderr
    assert done.stderr.splitlines() == [
        "voicecoach: error: /dev/zero is not a regular file; the configuration must be a TOML file"
    ]


def test_a_fifo_is_refused_without_waiting_for_a_writer(tmp_path: Path) -> None:
    fifo = tmp_path / "config.toml"
    os.mkfifo(fifo)
    done = check_in_a_process(fifo, tmp_path)
    assert done.returncode == 78, done.stderr
    assert done.stderr.splitlines() == [
        f"voicecoach: error: {fifo} is not a regular file; the configuration must be a TOML file"
    ]


def test_a_file_too_large_for_a_configuration_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "huge.toml"
    with path.open("wb") as f:
        f.truncate(100 << 20)
    assert main(["config", "check", "--config", str(path)]) == 78
    assert "is larger than 1 MiB" in one_error_line(capsys)


# -- a reload that fails keeps the running configuration, and says READY=1 again ---------------------------------------


def reload_and_wait(d: Daemon) -> None:
    """SIGHUP, then RELOADING=1 and READY=1 after it."""
    start = len(d.messages())
    os.kill(d.pid, signal.SIGHUP)
    index, _ = d.wait_message(lambda m: m.fields.get("RELOADING") == "1", start, what="RELOADING=1")
    d.wait_message(lambda m: m.fields.get("READY") == "1", index + 1, what="READY=1 after the reload")


def replace_with_fifo(path: Path) -> None:
    path.unlink()
    os.mkfifo(path)


@pytest.mark.parametrize(
    ("spoil", "fragment"),
    [
        (lambda path: write(path, DEEP), "nested too deeply"),
        (replace_with_fifo, "is not a regular file"),
    ],
    ids=["nested 500 deep", "a fifo"],
)
def test_a_failed_reload_keeps_the_running_configuration_and_says_ready(spoil, fragment: str, tmp_path: Path) -> None:
    settings = write(tmp_path / "config.toml", "[programme.speed]\nreps = 3\n")
    args = ["--model", str(tmp_path / "no-model"), "--config", str(settings)]
    with Daemon(tmp_path / "daemon", args) as d:
        d.wait_ready()
        spoil(settings)
        logged = len(d.log_lines())
        reload_and_wait(d)
        errors = [line for line in d.log_lines()[logged:] if line.startswith("ERROR: ")]
        assert len(errors) == 1, d.log()
        assert errors[0].startswith(f"ERROR: reload refused, keeping the running configuration: {settings} ")
        assert fragment in errors[0]
        assert "Traceback" not in d.log()
        d.ctl("start", "speed")
        assert d.status()["reps"] == 3
        d.ctl("stop")


# -- config check: a configured set the progression never counts ---------------------------------------------------


def warnings_of(text: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> list[str]:
    """`config check` of a file holding text: it passes, and these are the warnings it printed."""
    path = write(tmp_path / "config.toml", text)
    assert main(["config", "check", "--config", str(path)]) == 0
    out = capsys.readouterr()
    assert out.out.startswith("ok: ")
    return out.err.splitlines()


def test_a_set_shorter_than_the_guide_s_ten_in_a_row_is_warned_of(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (line,) = warnings_of("[programme.strength]\nreps = 8\n", tmp_path, capsys)
    assert line == (
        f"voicecoach: warning: programme.strength.reps = 8 (--config {tmp_path / 'config.toml'}) is fewer than the"
        " guide's 10 in a row that moving on to speed waits for, so such a set never counts:"
        " make it 10 or more, or set progression.in_a_row to 8 or less"
    )


def test_an_in_a_row_above_the_configured_sets_is_warned_of_for_each_exercise_it_holds_back(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    lines = warnings_of("[progression]\nin_a_row = 12\n[programme.speed]\nreps = 12\n", tmp_path, capsys)
    assert [line.split(" (", 1)[0] for line in lines] == [
        "voicecoach: warning: programme.identification.reps = 10",
        "voicecoach: warning: programme.strength.reps = 10",
    ]
    assert "(the default) is fewer than the 12 in a row of progression.in_a_row = 12 (--config" in lines[0]
    assert lines[0].endswith("make it 12 or more, or set progression.in_a_row to 10 or less")


def test_a_hold_shorter_than_the_guide_s_is_warned_of(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (line,) = warnings_of("[programme.identification]\nhold = 1\n", tmp_path, capsys)
    assert "programme.identification.hold = 1 (--config" in line
    assert "is shorter than the 2 s a set must hold to count towards moving on to strength" in line


def test_an_endurance_set_too_short_for_the_hold_to_rise_is_warned_of(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (line,) = warnings_of("[programme.endurance]\nreps = 1\n", tmp_path, capsys)
    assert "programme.endurance.reps = 1 (--config" in line
    assert "is fewer than the 2 complete repetitions the endurance hold waits for before it rises" in line


@pytest.mark.parametrize(
    "text",
    [
        "[programme.strength]\nreps = 8\n[progression]\nin_a_row = 8\n",
        "[programme.strength]\nreps = 12\nhold = 7\n[programme.endurance]\nreps = 3\n",
        "[programme.endurance]\nhold = 10\n",
    ],
)
def test_sets_the_progression_counts_give_no_warning(
    text: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert warnings_of(text, tmp_path, capsys) == []
