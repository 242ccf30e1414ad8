"""`voicecoach install-service [--user] [--dry-run]`: install, enable and start the systemd unit in one step."""

from __future__ import annotations

import argparse
import os
import pwd
import shlex
import shutil
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

import voicecoach
from voicecoach import config, paths, voices
from voicecoach.cli import service_steps as service
from voicecoach.cli.service_steps import DIR_MODE, FILE_MODE, NAME, ServiceError, Setup, Step
from voicecoach.daemon import control
from voicecoach.intents import Intent, Name


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("install-service", help="install, enable and start the systemd service")
    parser.set_defaults(func=cmd_install_service)
    parser.add_argument(
        "--user", action="store_true", help="a service in your own session (where PipeWire or PulseAudio plays)"
    )
    parser.add_argument("--dry-run", action="store_true", help="print the steps and change nothing")
    parser.add_argument("--now", action="store_true", help="restart the service even if that cuts a running set")


def cmd_install_service(args: argparse.Namespace) -> int:
    if shutil.which("systemctl") is None:
        raise ServiceError(
            "this machine does not run systemd (no systemctl), so there is no service to install; "
            f"run the coach in the foreground with: {NAME} run"
        )
    plan = service.plan(find_setup(system=not args.user, dry_run=args.dry_run))
    if args.dry_run:
        print(f"dry run, nothing is changed; {plan.command} would:")
        for step in plan.steps:
            print(step.line())
            if isinstance(step, service.WriteFile) and step.source is None:
                print("".join(f"    {line}\n" for line in step.text.splitlines()), end="")
    else:
        if not args.now:
            _refuse_mid_set(service_socket(system=not args.user))
        for step in plan.steps:
            print(step.line(), flush=True)
            _carry_out(step)
    for note in plan.notes:
        print(f"note: {note}")
    if not args.dry_run:
        print(f"installed and started; {plan.check}")
    return 0


def service_socket(system: bool) -> Path | None:
    """Where the installed service's control socket is (its RuntimeDirectory=), if this process can tell."""
    if system:
        return control.SYSTEM_RUNTIME_DIR / control.SOCKET_NAME
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    return Path(runtime) / NAME / control.SOCKET_NAME if runtime else None


def _refuse_mid_set(path: Path | None) -> None:
    """Installing restarts the service: asked over its control socket, a coach in the middle of a set is not cut
    without --now. A service that is not running, or cannot be asked, has no set to cut that we know of."""
    if path is None or not path.exists():
        return
    try:
        status = control.DaemonStatus.from_reply(control.request(Intent(Name.STATUS), path))
    except control.ControlError as exc:
        print(f"voicecoach: warning: cannot ask the running coach whether a set is running: {exc}", file=sys.stderr)
        return
    if status.state == "session":
        running = status.describe().splitlines()[0].removeprefix("state: session ")
        raise ServiceError(
            f"the coach is in the middle of a set {running}, and installing restarts the service, which cuts it; "
            "run install-service again when the set is over, or with --now to cut it"
        )


def find_setup(system: bool, dry_run: bool) -> Setup:
    """This machine as the plan needs it: which checkout runs, who asks, and what is installed already."""
    venv = Path(sys.prefix)
    if sys.prefix == sys.base_prefix or not (venv / "bin" / NAME).is_file():
        raise ServiceError(
            f"run install-service as <checkout>/.venv/bin/{NAME}, the one scripts/install makes, "
            "so that the service runs that checkout"
        )
    cfg = config.load()
    account = invoking_account(os.environ, os.geteuid())
    # Under sudo, the model and voice to copy are the ones the user fetched, not root's: unless the configuration or
    # $VOICECOACH_STATE_DIR names the state directory, those in the default one in the user's home.
    if cfg.origins["state_dir"] != config.DEFAULT or account.pw_uid == os.geteuid():
        models_from = paths.models_dir(cfg.state_dir)
    else:
        models_from = paths.models_dir(Path(account.pw_dir) / service.USER_STATE)
    return Setup(
        system=system,
        venv=venv,
        units=Path(voicecoach.__file__).parent.parent / "systemd",
        is_root=os.geteuid() == 0,
        language=cfg.language,
        user=account.pw_name,
        home=Path(account.pw_dir),
        models_from=models_from,
        configured_model=cfg.listen.model is not None,
        voice=voices.configured(cfg.speech.engine, cfg.speech.voice),
        service_user_exists=_user_exists(service.SERVICE_USER),
        dry_run=dry_run,
    )


def invoking_account(environ: Mapping[str, str], euid: int) -> pwd.struct_passwd:
    """The user who asked: under sudo, $SUDO_USER; otherwise whoever runs this."""
    name = environ.get("SUDO_USER")
    if euid == 0 and name:
        try:
            return pwd.getpwnam(name)
        except KeyError:
            pass
    return pwd.getpwuid(euid)


def _user_exists(name: str) -> bool:
    try:
        pwd.getpwnam(name)
    except KeyError:
        return False
    return True


def run_command(argv: Sequence[str]) -> subprocess.CompletedProcess[str]:
    """Every external command goes through here, found on $PATH (tests put fakes there)."""
    return subprocess.run(list(argv), capture_output=True, text=True, check=False)


def _carry_out(step: Step) -> None:
    if isinstance(step, service.Command):
        _run(step)
        return
    try:
        match step:
            case service.WriteFile():
                step.path.parent.mkdir(parents=True, exist_ok=True)
                staged = step.path.with_name(f".{step.path.name}.new")
                staged.write_text(step.text, encoding="utf-8")
                staged.chmod(step.mode)
                os.replace(staged, step.path)
            case service.RemoveFile():
                step.path.unlink(missing_ok=True)
            case service.CopyTree():
                _copy(step.source, step.target)
            case service.Rename():
                os.rename(step.source, step.target)
    except OSError as exc:
        raise ServiceError(f"{step.line()} failed: {exc.strerror or exc}") from None


def _copy(source: Path, target: Path) -> None:
    if target.exists():
        shutil.rmtree(target)  # left by an interrupted run
    missing = [d for d in (target.parent, *target.parent.parents) if not d.exists()]
    for directory in reversed(missing):
        directory.mkdir()
        directory.chmod(DIR_MODE)
    shutil.copytree(source, target, copy_function=shutil.copyfile)
    for path in (target, *target.rglob("*")):
        path.chmod(DIR_MODE if path.is_dir() else FILE_MODE)


def _run(step: service.Command) -> None:
    command = shlex.join(step.argv)
    try:
        done = run_command(step.argv)
    except FileNotFoundError:
        raise ServiceError(
            f"{step.argv[0]} is not installed, so '{command}' cannot run; install it and try again"
        ) from None
    if done.returncode == 0:
        return
    lines = done.stderr.strip().splitlines()
    failure = f"'{command}' failed with exit status {done.returncode}: {lines[-1] if lines else 'no message'}"
    if step.if_it_fails is None:
        raise ServiceError(failure)
    print(f"voicecoach: warning: {failure}; {step.if_it_fails}", file=sys.stderr)
