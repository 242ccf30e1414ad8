"""`voicecoach install-service`: the plan for each case, and the command run against fake system tools in tmp dirs.

Nothing here touches the machine: /etc and /var/lib are moved under tmp_path (Setup.root), the home too, and the
external commands are shell scripts on a $PATH that holds nothing else; each appends its command line to a log.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import pwd
import stat
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import one_error_line

from voicecoach.cli import install_service as cli_service
from voicecoach.cli.main import main
from voicecoach.cli.service_steps import (
    USERADD,
    Command,
    CopyTree,
    Plan,
    RemoveFile,
    Rename,
    ServiceError,
    Setup,
    WriteFile,
    plan,
)
from voicecoach.daemon import control
from voicecoach.daemon.control import ControlServer, DaemonStatus, Request
from voicecoach.listen import models

UNITS = Path(__file__).resolve().parents[1] / "systemd"
MODEL = models.MODELS["sv"].name
OPT_VENV = Path("/opt/voicecoach/.venv")
SRV_VENV = Path("/srv/coach/.venv")
RELOAD_ENABLE_RESTART = [
    ("systemctl", "daemon-reload"),
    ("systemctl", "enable", "voicecoach"),
    ("systemctl", "restart", "voicecoach"),
]


def make_model(models_dir: Path, name: str = MODEL) -> Path:
    """A directory models.is_model accepts: an acoustic model and a decoding graph."""
    model = models_dir / name
    (model / "am").mkdir(parents=True)
    (model / "graph").mkdir()
    (model / "am" / "final.mdl").write_bytes(b"acoustic")
    (model / "graph" / "HCLG.fst").write_bytes(b"graph")
    return model


@pytest.fixture
def system(tmp_path: Path) -> Setup:
    """sudo voicecoach install-service, from /srv/coach, by a user with no model, on a machine without the user."""
    return Setup(
        system=True,
        venv=SRV_VENV,
        units=UNITS,
        is_root=True,
        language="sv",
        user="pi",
        home=tmp_path / "home" / "pi",
        models_from=tmp_path / "home" / "pi" / ".local/state/voicecoach/models",
        root=tmp_path / "root",
    )


@pytest.fixture
def user(system: Setup) -> Setup:
    return dataclasses.replace(system, system=False, is_root=False, venv=system.home / "voicecoach" / ".venv")


def commands(p: Plan) -> list[tuple[str, ...]]:
    return [s.argv for s in p.steps if isinstance(s, Command)]


def files(p: Plan) -> dict[Path, WriteFile]:
    return {s.path: s for s in p.steps if isinstance(s, WriteFile)}


# -- the plan --------------------------------------------------------------------------------------------------------


def test_system_plan_at_opt_creates_the_user_installs_the_unit_copies_the_model_and_starts_it(system: Setup) -> None:
    make_model(system.models_from)
    p = plan(dataclasses.replace(system, venv=OPT_VENV))
    etc = system.root / "etc/systemd/system"
    state = system.root / "var/lib/voicecoach"
    staging = state / "models" / f".install-{MODEL}"
    assert [type(s) for s in p.steps] == [Command, WriteFile, CopyTree, Command, Rename, Command, Command, Command]
    assert commands(p) == [USERADD, ("chown", "-R", "voicecoach:voicecoach", str(state)), *RELOAD_ENABLE_RESTART]
    unit = files(p)[etc / "voicecoach.service"]
    assert (unit.text, unit.mode) == ((UNITS / "voicecoach.service").read_text(), 0o644)
    assert CopyTree(system.models_from / MODEL, staging) in p.steps
    assert Rename(staging, state / "models" / MODEL) in p.steps
    assert p.notes == ()
    assert "systemctl status voicecoach" in p.check
    assert f"{OPT_VENV}/bin/voicecoach ctl status" in p.check


def test_system_plan_elsewhere_adds_a_drop_in_and_skips_an_existing_user(system: Setup) -> None:
    p = plan(dataclasses.replace(system, service_user_exists=True))
    assert USERADD not in commands(p)
    drop_in = files(p)[system.root / "etc/systemd/system/voicecoach.service.d/checkout.conf"]
    assert drop_in.mode == 0o644
    assert drop_in.text.splitlines()[1:] == ["[Service]", "ExecStart=", f"ExecStart={SRV_VENV}/bin/voicecoach run"]
    assert commands(p)[-3:] == RELOAD_ENABLE_RESTART


def test_system_plan_at_opt_removes_a_drop_in_left_by_an_install_elsewhere(system: Setup) -> None:
    stale = system.root / "etc/systemd/system/voicecoach.service.d/checkout.conf"
    stale.parent.mkdir(parents=True)
    stale.write_text("[Service]\nExecStart=\nExecStart=/srv/old/.venv/bin/voicecoach run\n")
    p = plan(dataclasses.replace(system, venv=OPT_VENV))
    removed = [s for s in p.steps if isinstance(s, RemoveFile)]
    assert removed == [RemoveFile(stale, "the checkout is at /opt/voicecoach")]
    assert stale.parent not in {path.parent for path in files(p)}


@pytest.mark.parametrize("venv", ["/home/pi/voicecoach/.venv", "/root/voicecoach/.venv", "/tmp/voicecoach/.venv"])
def test_system_plan_refuses_a_checkout_the_service_cannot_see(system: Setup, venv: str) -> None:
    with pytest.raises(ServiceError, match=r"cannot see .*clone the checkout to /opt/voicecoach"):
        plan(dataclasses.replace(system, venv=Path(venv)))


def test_system_plan_refuses_a_checkout_linked_from_home(system: Setup, tmp_path: Path) -> None:
    link = tmp_path / "opt-voicecoach"
    link.symlink_to("/home/pi/voicecoach")
    with pytest.raises(
        ServiceError, match=r"cannot see /home/pi/voicecoach/\.venv \(where .*opt-voicecoach.* hides /home"
    ):
        plan(dataclasses.replace(system, venv=link / ".venv"))


def test_system_plan_without_a_model_anywhere_says_how_to_fetch_one(system: Setup) -> None:
    p = plan(system)
    assert not [s for s in p.steps if isinstance(s, CopyTree | Rename)]
    assert all(argv[0] != "chown" for argv in commands(p))
    (note,) = p.notes
    state = system.root / "var/lib/voicecoach"
    assert f"sudo -u voicecoach VOICECOACH_STATE_DIR={state} {SRV_VENV}/bin/voicecoach model fetch sv" in note
    assert str(system.models_from) in note


def test_system_plan_copies_the_configured_languages_model(system: Setup) -> None:
    make_model(system.models_from)  # Swedish only
    english = plan(dataclasses.replace(system, language="en"))
    assert not [s for s in english.steps if isinstance(s, CopyTree)]
    assert "model fetch en" in english.notes[0]
    make_model(system.models_from, models.MODELS["en"].name)
    (copy,) = [s for s in plan(dataclasses.replace(system, language="en")).steps if isinstance(s, CopyTree)]
    assert copy.source == system.models_from / models.MODELS["en"].name


def test_system_plan_copies_nothing_when_the_service_has_the_model_or_the_configuration_names_one(
    system: Setup,
) -> None:
    make_model(system.models_from)
    assert plan(dataclasses.replace(system, configured_model=True)).notes == ()
    assert not [s for s in plan(dataclasses.replace(system, configured_model=True)).steps if isinstance(s, CopyTree)]
    make_model(system.root / "var/lib/voicecoach/models")
    p = plan(system)
    assert (p.notes, [s for s in p.steps if isinstance(s, CopyTree)]) == ((), [])


def test_system_plan_leaves_a_broken_model_of_the_service_alone(system: Setup) -> None:
    make_model(system.models_from)
    broken = system.root / "var/lib/voicecoach/models" / MODEL
    broken.mkdir(parents=True)
    (broken / "README").write_text("half a model")
    p = plan(system)
    assert not [s for s in p.steps if isinstance(s, CopyTree)]
    assert f"sudo rm -r {broken}" in p.notes[0]


def test_system_plan_needs_root_except_for_a_dry_run(system: Setup) -> None:
    with pytest.raises(ServiceError, match=r"needs root: run sudo /srv/coach/\.venv/bin/voicecoach install-service"):
        plan(dataclasses.replace(system, is_root=False))
    assert plan(dataclasses.replace(system, is_root=False, dry_run=True)).steps == plan(system).steps


def test_a_voicecoach_without_its_checkout_is_sent_to_a_clone(system: Setup, tmp_path: Path) -> None:
    with pytest.raises(ServiceError, match=r"voicecoach\.service is missing.*from a clone"):
        plan(dataclasses.replace(system, units=tmp_path / "site-packages" / "systemd"))


def test_a_checkout_path_with_a_space_is_refused(system: Setup) -> None:
    with pytest.raises(ServiceError, match="has a space"):
        plan(dataclasses.replace(system, venv=Path("/srv/voice coach/.venv")))


def test_user_plan_installs_the_user_unit_and_lingers(user: Setup) -> None:
    p = plan(user)
    unit = files(p)[user.home / ".config/systemd/user/voicecoach.service"]
    assert unit.text == (UNITS / "voicecoach-user.service").read_text()
    assert len(files(p)) == 1, "no drop-in at ~/voicecoach"
    assert commands(p) == [
        ("systemctl", "--user", "daemon-reload"),
        ("systemctl", "--user", "enable", "voicecoach"),
        ("systemctl", "--user", "restart", "voicecoach"),
        ("loginctl", "enable-linger", "pi"),
    ]
    linger = p.steps[-1]
    assert isinstance(linger, Command)
    assert linger.if_it_fails is not None
    assert "sudo loginctl enable-linger pi" in linger.if_it_fails
    assert "systemctl --user status voicecoach" in p.check


def test_user_plan_elsewhere_adds_a_drop_in(user: Setup) -> None:
    p = plan(dataclasses.replace(user, venv=SRV_VENV))
    drop_in = files(p)[user.home / ".config/systemd/user/voicecoach.service.d/checkout.conf"]
    assert f"ExecStart=\nExecStart={SRV_VENV}/bin/voicecoach run\n" in drop_in.text


def test_user_plan_notes_a_missing_model_where_the_user_unit_looks(user: Setup) -> None:
    state = user.home / ".local/state/voicecoach"
    (note,) = plan(user).notes
    assert f"VOICECOACH_STATE_DIR={state} {user.venv}/bin/voicecoach model fetch sv" in note
    make_model(state / "models")
    assert plan(user).notes == ()


def test_user_plan_refuses_root(user: Setup) -> None:
    with pytest.raises(ServiceError, match=r"that is root here.*without sudo"):
        plan(dataclasses.replace(user, is_root=True))


# -- what the machine tells find_setup -------------------------------------------------------------------------------


def test_find_setup_takes_this_venv_and_checkout(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("VOICECOACH_STATE_DIR", str(tmp_path / "state"))
    if sys.prefix == sys.base_prefix:
        pytest.skip("the tests do not run in a virtualenv")
    setup = cli_service.find_setup(system=True, dry_run=True)
    assert (setup.venv, setup.units) == (Path(sys.prefix), UNITS)
    assert setup.models_from == tmp_path / "state" / "models"
    assert setup.is_root == (os.geteuid() == 0)


def test_under_sudo_the_invoking_account_is_sudo_user() -> None:
    nobody = pwd.getpwnam("nobody")
    assert cli_service.invoking_account({"SUDO_USER": "nobody"}, 0).pw_name == "nobody"
    # Not root: $SUDO_USER names who ran sudo before, not who runs this.
    assert cli_service.invoking_account({"SUDO_USER": "root"}, nobody.pw_uid).pw_name == "nobody"
    assert cli_service.invoking_account({}, 0).pw_name == "root"


# -- the command, against fake system tools --------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def runtime_dirs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Where the system and the user service's control sockets would be: under tmp_path, never a real coach's."""
    monkeypatch.setattr(control, "SYSTEM_RUNTIME_DIR", tmp_path / "run" / "voicecoach")
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path / "run" / "user"))
    return tmp_path / "run"


@contextlib.contextmanager
def coach_at(path: Path, status: DaemonStatus) -> Iterator[None]:
    """A control socket at path, answered on a thread of its own as a coach in that state answers `status`."""
    started = threading.Event()
    stopping: list[tuple[asyncio.AbstractEventLoop, asyncio.Event]] = []

    async def serve() -> None:
        requests: asyncio.Queue[Request] = asyncio.Queue()
        stop = asyncio.Event()
        stopping.append((asyncio.get_running_loop(), stop))
        async with ControlServer(path, requests):
            started.set()
            while not stop.is_set():
                with contextlib.suppress(TimeoutError):
                    request = await asyncio.wait_for(requests.get(), 0.1)
                    request.reply(status.as_reply())

    thread = threading.Thread(target=asyncio.run, args=(serve(),))
    thread.start()
    started.wait(10)
    try:
        yield
    finally:
        loop, stop = stopping[0]
        loop.call_soon_threadsafe(stop.set)
        thread.join(10)


MID_SET = DaemonStatus("session", True, True, True, exercise="strength", rep=3, reps=10, reps_done=2)
IDLE = DaemonStatus("idle", True, True, True)


@pytest.fixture
def strict_umask() -> Iterator[None]:
    """root's umask may be 0077 under sudo: the modes must come from install-service, not from the umask."""
    old = os.umask(0o077)
    yield
    os.umask(old)


@pytest.fixture
def fake_bin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A $PATH holding only fake systemctl, useradd, chown and loginctl, each logging its command line."""
    directory = tmp_path / "bin"
    directory.mkdir()
    for name in ("systemctl", "useradd", "chown", "loginctl"):
        fake_tool(directory, name)
    monkeypatch.setenv("PATH", str(directory))
    return directory


def fake_tool(directory: Path, name: str, status: int = 0, stderr: str = "") -> None:
    script = directory / name
    lines = [f'echo "{name} $*" >> "{directory / "log"}"']
    lines += [f'echo "{line}" >&2' for line in stderr.splitlines()]
    script.write_text("#!/bin/sh\n" + "\n".join(lines) + f"\nexit {status}\n")
    script.chmod(0o755)


def logged(fake_bin: Path) -> list[str]:
    log = fake_bin / "log"
    return log.read_text().splitlines() if log.exists() else []


def use_setup(monkeypatch: pytest.MonkeyPatch, setup: Setup) -> None:
    def find(system: bool, dry_run: bool) -> Setup:
        return dataclasses.replace(setup, system=system, dry_run=dry_run)

    monkeypatch.setattr(cli_service, "find_setup", find)


def tree(root: Path) -> dict[str, int]:
    return {str(p.relative_to(root)): stat.S_IMODE(p.lstat().st_mode) for p in sorted(root.rglob("*"))}


def test_dry_run_prints_every_step_and_changes_nothing(
    system: Setup, fake_bin: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    make_model(system.models_from)
    use_setup(monkeypatch, system)
    before = tree(system.root.parent)
    assert main(["install-service", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert tree(system.root.parent) == before
    assert logged(fake_bin) == []
    for step in plan(system).steps:
        assert step.line() in out
    assert "$ " + " ".join(USERADD) in out
    assert f"    ExecStart={SRV_VENV}/bin/voicecoach run" in out
    assert "installed" not in out


def test_real_run_installs_in_order_with_the_right_files_and_modes(
    system: Setup,
    fake_bin: Path,
    strict_umask: None,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    make_model(system.models_from)
    use_setup(monkeypatch, system)
    steps = plan(system).steps
    assert main(["install-service"]) == 0
    state = system.root / "var/lib/voicecoach"
    assert logged(fake_bin) == [
        " ".join(USERADD),
        f"chown -R voicecoach:voicecoach {state}",
        "systemctl daemon-reload",
        "systemctl enable voicecoach",
        "systemctl restart voicecoach",
    ]
    etc = system.root / "etc/systemd/system"
    assert (etc / "voicecoach.service").read_text() == (UNITS / "voicecoach.service").read_text()
    drop_in = etc / "voicecoach.service.d/checkout.conf"
    assert drop_in.read_text().endswith(f"[Service]\nExecStart=\nExecStart={SRV_VENV}/bin/voicecoach run\n")
    modes = tree(system.root)
    assert modes["etc/systemd/system/voicecoach.service"] == 0o644
    assert modes["etc/systemd/system/voicecoach.service.d/checkout.conf"] == 0o644
    model = f"var/lib/voicecoach/models/{MODEL}"
    assert {k: v for k, v in modes.items() if k.startswith("var/lib/voicecoach")} == {
        "var/lib/voicecoach": 0o750,
        "var/lib/voicecoach/models": 0o750,
        model: 0o750,
        f"{model}/am": 0o750,
        f"{model}/am/final.mdl": 0o640,
        f"{model}/graph": 0o750,
        f"{model}/graph/HCLG.fst": 0o640,
    }
    out = capsys.readouterr().out.splitlines()
    assert out[:-1] == [step.line() for step in steps]
    assert out[-1].startswith("installed and started; check it with: systemctl status voicecoach")


def test_second_run_is_fine_and_copies_nothing_again(
    system: Setup, fake_bin: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    make_model(system.models_from)
    use_setup(monkeypatch, system)
    assert main(["install-service"]) == 0
    first = tree(system.root)
    (fake_bin / "log").unlink()
    use_setup(monkeypatch, dataclasses.replace(system, service_user_exists=True))
    assert main(["install-service"]) == 0
    assert logged(fake_bin) == [" ".join(c) for c in RELOAD_ENABLE_RESTART]
    assert tree(system.root) == first


def test_user_run_installs_the_user_unit_and_survives_a_refused_linger(
    user: Setup, fake_bin: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    fake_tool(fake_bin, "loginctl", 1, "Could not enable linger: Access denied")
    use_setup(monkeypatch, dataclasses.replace(user, venv=SRV_VENV))
    assert main(["install-service", "--user"]) == 0
    assert logged(fake_bin) == [
        "systemctl --user daemon-reload",
        "systemctl --user enable voicecoach",
        "systemctl --user restart voicecoach",
        "loginctl enable-linger pi",
    ]
    units = user.home / ".config/systemd/user"
    assert (units / "voicecoach.service").read_text() == (UNITS / "voicecoach-user.service").read_text()
    assert f"ExecStart={SRV_VENV}/bin/voicecoach run" in (units / "voicecoach.service.d/checkout.conf").read_text()
    captured = capsys.readouterr()
    (warning,) = captured.err.splitlines()
    assert "'loginctl enable-linger pi' failed with exit status 1: Could not enable linger: Access denied" in warning
    assert "sudo loginctl enable-linger pi" in warning
    assert captured.out.splitlines()[-1].startswith("installed and started; check it with: systemctl --user status")


def test_a_failing_command_stops_the_install_with_one_line(
    system: Setup, fake_bin: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    stderr = "Warning: something first.\nFailed to reload daemon: Access denied"
    fake_tool(fake_bin, "systemctl", 5, stderr)
    use_setup(monkeypatch, dataclasses.replace(system, service_user_exists=True))
    assert main(["install-service"]) == 1
    line = one_error_line(capsys)
    assert line == (
        "voicecoach: error: 'systemctl daemon-reload' failed with exit status 5: Failed to reload daemon: Access denied"
    )
    assert logged(fake_bin) == ["systemctl daemon-reload"], "nothing after the failing command runs"


def test_not_root_in_system_mode_is_refused_before_anything_changes(
    system: Setup, fake_bin: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    use_setup(monkeypatch, dataclasses.replace(system, is_root=False))
    assert main(["install-service"]) == 1
    assert "needs root: run sudo" in one_error_line(capsys)
    assert (logged(fake_bin), system.root.exists()) == ([], False)


def test_without_systemctl_it_says_systemd_is_missing(
    system: Setup, fake_bin: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    (fake_bin / "systemctl").unlink()
    use_setup(monkeypatch, system)
    assert main(["install-service", "--dry-run"]) == 1
    line = one_error_line(capsys)
    assert "does not run systemd" in line
    assert "voicecoach run" in line
    assert (logged(fake_bin), system.root.exists()) == ([], False)


def test_a_missing_tool_is_named(
    system: Setup, fake_bin: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    (fake_bin / "useradd").unlink()
    use_setup(monkeypatch, system)
    assert main(["install-service"]) == 1
    assert "useradd is not installed" in one_error_line(capsys)


def test_a_running_set_is_not_cut_without_now(
    system: Setup,
    fake_bin: Path,
    runtime_dirs: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    use_setup(monkeypatch, dataclasses.replace(system, service_user_exists=True))
    with coach_at(runtime_dirs / "voicecoach" / control.SOCKET_NAME, MID_SET):
        assert main(["install-service"]) == 1
        assert one_error_line(capsys) == (
            "voicecoach: error: the coach is in the middle of a set (strength, repetition 3 of 10), and installing "
            "restarts the service, which cuts it; run install-service again when the set is over, or with --now "
            "to cut it"
        )
        assert (logged(fake_bin), system.root.exists()) == ([], False)
        assert main(["install-service", "--now"]) == 0
    assert logged(fake_bin)[-1] == "systemctl restart voicecoach"


def test_a_user_service_mid_set_is_asked_at_its_own_socket(
    user: Setup,
    fake_bin: Path,
    runtime_dirs: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    use_setup(monkeypatch, dataclasses.replace(user, venv=SRV_VENV))
    with coach_at(runtime_dirs / "user" / "voicecoach" / control.SOCKET_NAME, MID_SET):
        assert main(["install-service", "--user"]) == 1
    assert "the coach is in the middle of a set" in one_error_line(capsys)
    assert logged(fake_bin) == []


def test_an_idle_or_stopped_coach_is_simply_restarted(
    system: Setup, fake_bin: Path, runtime_dirs: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    use_setup(monkeypatch, dataclasses.replace(system, service_user_exists=True))
    with coach_at(runtime_dirs / "voicecoach" / control.SOCKET_NAME, IDLE):
        assert main(["install-service"]) == 0
    assert logged(fake_bin) == [" ".join(c) for c in RELOAD_ENABLE_RESTART]
    # No socket at all: the service is not running, and there is no set to cut.
    (fake_bin / "log").unlink()
    assert main(["install-service"]) == 0
    assert logged(fake_bin) == [" ".join(c) for c in RELOAD_ENABLE_RESTART]
