"""The systemd units: the contract the daemon relies on, a clean `systemd-analyze verify`, and exposure <= 2.0.

systemd-analyze runs offline here (no running systemd needed). Without it these tests skip, unless
VOICECOACH_REQUIRE_AUDIO=1 (scripts/test), where a skip would hide a regression and so fails instead.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from voicecoach.config import ConfigError

UNITS = Path(__file__).resolve().parents[1] / "systemd"
SYSTEM_UNIT = UNITS / "voicecoach.service"
USER_UNIT = UNITS / "voicecoach-user.service"
SYSTEM_EXEC = "/opt/voicecoach/.venv/bin/voicecoach"
USER_EXEC = "%h/voicecoach/.venv/bin/voicecoach"
MAX_EXPOSURE = 2.0


def directives(path: Path) -> dict[str, list[str]]:
    """Key -> every value it is given (systemd allows repeats), ignoring comments and section headers."""
    found: dict[str, list[str]] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.startswith(("#", ";", "[")):
            key, _, value = line.partition("=")
            found.setdefault(key.strip(), []).append(value.strip())
    return found


@pytest.fixture(scope="module")
def analyze() -> str:
    tool = shutil.which("systemd-analyze")
    if tool is None:
        if os.environ.get("VOICECOACH_REQUIRE_AUDIO") == "1":
            pytest.fail("systemd-analyze is missing: install systemd (scripts/install --test)")
        pytest.skip("systemd-analyze is not installed")
    return tool


@pytest.fixture
def user_env(tmp_path: Path) -> dict[str, str]:
    """A user manager needs $XDG_RUNTIME_DIR even offline; a private one keeps the real session out of it."""
    runtime = tmp_path / "runtime"
    runtime.mkdir(mode=0o700)
    return {**os.environ, "XDG_RUNTIME_DIR": str(runtime)}


def run(args: list[str], env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, capture_output=True, text=True, env=env, timeout=120)


def exposure(output: str, unit: str) -> float:
    match = re.search(rf"Overall exposure level for {re.escape(unit)}: (\d+\.\d+)", output)
    assert match, output
    return float(match.group(1))


def with_stub(unit: Path, exec_path: str, tmp_path: Path) -> Path:
    """The unit with its ExecStart binary swapped for an executable stub, under the same unit name.

    verify checks that ExecStart's binary exists; the real one is only there once installed. Only that path changes.
    """
    stub = tmp_path / "bin" / "voicecoach"
    stub.parent.mkdir()
    stub.write_text("#!/bin/sh\nexit 0\n")
    stub.chmod(0o755)
    text = unit.read_text(encoding="utf-8")
    assert text.count(f"ExecStart={exec_path} ") == 1
    copy = tmp_path / "units" / "voicecoach.service"
    copy.parent.mkdir()
    copy.write_text(text.replace(f"ExecStart={exec_path} ", f"ExecStart={stub} "), encoding="utf-8")
    return copy


def test_system_unit_exposure_is_at_most_2(analyze: str) -> None:
    done = run([analyze, "security", "--offline=yes", str(SYSTEM_UNIT)])
    assert done.returncode == 0, done.stderr
    assert exposure(done.stdout, SYSTEM_UNIT.name) <= MAX_EXPOSURE


def test_user_unit_exposure_is_at_most_2(analyze: str, user_env: dict[str, str]) -> None:
    done = run([analyze, "--user", "security", "--offline=yes", str(USER_UNIT)], user_env)
    assert done.returncode == 0, done.stderr
    assert exposure(done.stdout, USER_UNIT.name) <= MAX_EXPOSURE


def test_system_unit_verifies_clean(analyze: str, tmp_path: Path) -> None:
    done = run([analyze, "verify", str(with_stub(SYSTEM_UNIT, SYSTEM_EXEC, tmp_path))])
    assert (done.returncode, done.stdout + done.stderr) == (0, "")


def test_user_unit_verifies_clean(analyze: str, tmp_path: Path, user_env: dict[str, str]) -> None:
    done = run([analyze, "--user", "verify", str(with_stub(USER_UNIT, USER_EXEC, tmp_path))], user_env)
    assert (done.returncode, done.stdout + done.stderr) == (0, "")


def test_unmodified_system_unit_lacks_nothing_but_the_installed_binary(analyze: str) -> None:
    done = run([analyze, "verify", str(SYSTEM_UNIT)])
    complaints = [line for line in (done.stdout + done.stderr).splitlines() if SYSTEM_EXEC not in line]
    assert complaints == []


@pytest.mark.parametrize("unit", [SYSTEM_UNIT, USER_UNIT], ids=["system", "user"])
def test_both_units_keep_the_daemon_contract(unit: Path) -> None:
    d = directives(unit)
    assert d["Type"] == ["notify"]
    assert d["NotifyAccess"] == ["main"]
    assert int(d["WatchdogSec"][0]) > 0
    assert d["Restart"] == ["on-failure"]
    assert str(ConfigError.exit_code) in d["RestartPreventExitStatus"][0].split()
    assert d["ExecReload"] == ["/bin/kill -HUP $MAINPID"]
    assert d["ExecStart"][0].endswith("/.venv/bin/voicecoach run")
    assert d["RuntimeDirectory"] == ["voicecoach"]
    # Only local sockets: no TCP listener, and no way to open one.
    assert d["RestrictAddressFamilies"] == ["AF_UNIX"]
    assert d["PrivateNetwork"] == ["yes"]
    # sounddevice's cffi callback needs write+execute memory.
    assert "MemoryDenyWriteExecute" not in d


def test_system_unit_reaches_only_the_sound_cards_as_its_own_user() -> None:
    d = directives(SYSTEM_UNIT)
    assert d["ExecStart"] == [f"{SYSTEM_EXEC} run"]
    assert d["User"] == ["voicecoach"]
    assert d["SupplementaryGroups"] == ["audio"]
    assert d["DevicePolicy"] == ["closed"]
    assert d["DeviceAllow"] == ["char-alsa rw"]
    assert d.get("PrivateDevices", ["no"]) == ["no"]
    assert d["StateDirectory"] == ["voicecoach"]
    assert "VOICECOACH_STATE_DIR=%S/voicecoach" in d["Environment"]
    assert d["CapabilityBoundingSet"] == [""]


def test_user_unit_uses_the_sound_server_not_the_hardware() -> None:
    d = directives(USER_UNIT)
    assert d["PrivateUsers"] == ["yes"]
    assert d["PrivateDevices"] == ["yes"]
    assert "DeviceAllow" not in d
    # The user's own state directory, the one `voicecoach model fetch` fills when run by hand.
    assert d["ReadWritePaths"] == ["%h/.local/state/voicecoach"]
    assert not any(v.startswith("VOICECOACH_STATE_DIR=") for v in d.get("Environment", []))
