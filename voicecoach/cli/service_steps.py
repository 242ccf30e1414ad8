"""`voicecoach install-service`: the steps that install, enable and start the systemd unit, worked out from the
machine without changing it, so that --dry-run shows exactly what a real run does."""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from pathlib import Path

from voicecoach.errors import UserError
from voicecoach.listen import models

NAME = "voicecoach"
UNIT = f"{NAME}.service"
SERVICE_USER = NAME
# Where the units' own ExecStart= expects the checkout: elsewhere, a drop-in names the real executable.
SYSTEM_CHECKOUT = Path("/opt/voicecoach")
USER_CHECKOUT = "voicecoach"  # under the user's home (%h/voicecoach)
DROP_IN = "checkout.conf"
# What the system unit cannot see: ProtectHome=yes hides the first three, PrivateTmp=yes gives it its own /tmp.
HIDDEN = (Path("/home"), Path("/root"), Path("/run/user"), Path("/tmp"), Path("/var/tmp"))
# The user unit's state directory (its ReadWritePaths=), relative to the home.
USER_STATE = Path(".local/state/voicecoach")
USERADD = (
    "useradd",
    "--system",
    "--user-group",
    "--groups",
    "audio",
    "--home-dir",
    "/var/lib/voicecoach",
    "--shell",
    "/usr/sbin/nologin",
    SERVICE_USER,
)
STAGING_PREFIX = ".install-"  # hidden, so `voicecoach model list` and the daemon never take it for a model
DIR_MODE = 0o750  # the system unit's StateDirectoryMode=
FILE_MODE = 0o640


class ServiceError(UserError):
    """The service cannot be installed from here as asked; the message says what to do instead."""


@dataclass(frozen=True)
class Setup:
    """What the plan depends on. install-service finds it on the machine; tests make it up."""

    system: bool
    venv: Path  # the running voicecoach's virtualenv: its bin/voicecoach is what the service runs
    units: Path  # the checkout's systemd/ directory
    is_root: bool
    language: str
    user: str  # who runs it (under sudo, $SUDO_USER)
    home: Path  # that user's home: a user unit goes under it
    models_from: Path  # that user's models directory, copied from for the system service
    configured_model: bool = False  # the configuration names its own listen.model: nothing to copy
    service_user_exists: bool = False
    root: Path = Path("/")  # where /etc and /var/lib are; only tests move it
    dry_run: bool = False

    @property
    def executable(self) -> Path:
        return self.venv / "bin" / NAME


@dataclass(frozen=True)
class Command:
    argv: tuple[str, ...]
    # Set for a step the service works without: a failure prints this and the install goes on.
    if_it_fails: str | None = None

    def line(self) -> str:
        return f"$ {shlex.join(self.argv)}"


@dataclass(frozen=True)
class WriteFile:
    path: Path
    text: str
    source: Path | None = None  # the file this is a copy of; None for text made here
    mode: int = 0o644

    def line(self) -> str:
        if self.source is not None:
            return f"write {self.path} (mode {self.mode:04o}) from {self.source}"
        body = "; ".join(line for line in self.text.splitlines() if line.startswith("ExecStart=") and line[10:])
        return f"write {self.path} (mode {self.mode:04o}): {body}"


@dataclass(frozen=True)
class RemoveFile:
    path: Path
    why: str

    def line(self) -> str:
        return f"remove {self.path} ({self.why})"


@dataclass(frozen=True)
class CopyTree:
    source: Path
    target: Path  # replaced if it is there (a staging directory left by an interrupted run)

    def line(self) -> str:
        return f"copy {self.source} to {self.target} (directories {DIR_MODE:04o}, files {FILE_MODE:04o})"


@dataclass(frozen=True)
class Rename:
    source: Path
    target: Path

    def line(self) -> str:
        return f"rename {self.source} to {self.target}"


Step = Command | WriteFile | RemoveFile | CopyTree | Rename


@dataclass(frozen=True)
class Plan:
    steps: tuple[Step, ...]
    notes: tuple[str, ...]  # what is left to do by hand, printed after the steps
    check: str  # how to see the service running
    command: str  # the command that carries the plan out, for a dry run to name


def plan(setup: Setup) -> Plan:
    """The steps for setup; raises ServiceError when it cannot be installed from here as asked."""
    return _system(setup) if setup.system else _user(setup)


def _system(setup: Setup) -> Plan:
    command = f"sudo {setup.executable} install-service"
    if not setup.is_root and not setup.dry_run:
        raise ServiceError(f"installing the system service needs root: run {command} (or add --user)")
    # Where a link leads first: the service needs both the link and its target.
    for path in (setup.venv.resolve(), setup.venv):
        hidden = next((h for h in HIDDEN if path.is_relative_to(h)), None)
        if hidden is not None:
            where = path if path == setup.venv else f"{path} (where {setup.venv} leads)"
            raise ServiceError(
                f"the system service cannot see {where}: it hides {hidden} (ProtectHome=, PrivateTmp=); "
                f"clone the checkout to {SYSTEM_CHECKOUT}, run scripts/install there, then {SYSTEM_CHECKOUT}"
                "/.venv/bin/voicecoach install-service with sudo (or use --user for a service in your session)"
            )
    etc = setup.root / "etc/systemd/system"
    state = setup.root / "var/lib" / NAME
    steps: list[Step] = []
    if not setup.service_user_exists:
        steps.append(Command(USERADD))
    steps.append(_unit_copy(setup.units / UNIT, etc / UNIT))
    steps += _drop_in(setup, etc / f"{UNIT}.d", SYSTEM_CHECKOUT / ".venv" / "bin" / NAME)
    model_steps, notes = _model_copy(setup, state)
    steps += model_steps
    steps += [
        Command(("systemctl", "daemon-reload")),
        Command(("systemctl", "enable", NAME)),
        # restart, not start: a second run must bring up the unit, drop-in and model it has just written.
        Command(("systemctl", "restart", NAME)),
    ]
    check = f"check it with: systemctl status {NAME}; sudo {setup.executable} ctl status"
    return Plan(tuple(steps), notes, check, command)


def _user(setup: Setup) -> Plan:
    command = f"{setup.executable} install-service --user"
    if setup.is_root:
        raise ServiceError(
            "--user installs the service in the session of the user who runs it, and that is root here: "
            f"run {command} as yourself, without sudo (or leave out --user for the system service)"
        )
    units = setup.home / ".config/systemd/user"
    steps: list[Step] = [_unit_copy(setup.units / f"{NAME}-user.service", units / UNIT)]
    steps += _drop_in(setup, units / f"{UNIT}.d", setup.home / USER_CHECKOUT / ".venv" / "bin" / NAME)
    steps += [
        Command(("systemctl", "--user", "daemon-reload")),
        Command(("systemctl", "--user", "enable", NAME)),
        Command(("systemctl", "--user", "restart", NAME)),
        Command(
            ("loginctl", "enable-linger", setup.user),
            if_it_fails=(
                f"the coach runs while you are logged in; to start it at boot and keep it running after you log "
                f"out, run: sudo loginctl enable-linger {setup.user}"
            ),
        ),
    ]
    notes: tuple[str, ...] = ()
    spec = models.MODELS[setup.language]
    state = setup.home / USER_STATE
    if not setup.configured_model and not _has_model(state / "models" / spec.name):
        notes = (
            f"no {spec.name} speech model in {state / 'models'}, so voice control stays off until you run: "
            f"VOICECOACH_STATE_DIR={state} {setup.executable} model fetch {setup.language} "
            f"&& systemctl --user restart {NAME}",
        )
    check = f"check it with: systemctl --user status {NAME}; {setup.executable} ctl status"
    return Plan(tuple(steps), notes, check, command)


def _unit_copy(source: Path, target: Path) -> WriteFile:
    try:
        text = source.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ServiceError(
            f"{source} is missing: this voicecoach was installed without its checkout; run install-service "
            "from a clone of the repository, with the .venv that its scripts/install makes"
        ) from None
    return WriteFile(target, text, source=source)


def _drop_in(setup: Setup, directory: Path, default: Path) -> list[Step]:
    """A drop-in naming this checkout's executable when it is not where the unit expects it, else none."""
    path = directory / DROP_IN
    if setup.executable == default:
        # A drop-in from an install elsewhere would run the old checkout.
        return [RemoveFile(path, f"the checkout is at {default.parents[2]}")] if path.exists() else []
    executable = str(setup.executable)
    # systemd splits ExecStart= on spaces and expands % and $; such a path would need quoting the user never sees.
    if any(c.isspace() or c in "%$\"'\\" for c in executable):
        raise ServiceError(f"{executable} has a space or one of %$\"'\\ in it: move the checkout to a plainer path")
    text = (
        f"# Written by `voicecoach install-service`: this checkout is not at {default.parents[2]}.\n"
        f"[Service]\nExecStart=\nExecStart={executable} run\n"
    )
    return [WriteFile(path, text)]


def _model_copy(setup: Setup, state: Path) -> tuple[list[Step], tuple[str, ...]]:
    """Steps that give the system service the invoking user's speech model, or a note on how to fetch one."""
    spec = models.MODELS[setup.language]
    target = state / "models" / spec.name
    if setup.configured_model or _has_model(target):
        return [], ()
    if _exists(target):
        return [], (
            f"{target} is there but is not a whole model, so nothing was copied; remove it (sudo rm -r {target}) "
            f"and run install-service again",
        )
    source = setup.models_from / spec.name
    if not _has_model(source):
        return [], (
            f"no {spec.name} speech model in {setup.models_from} to copy, so voice control stays off until you "
            f"run: sudo -u {SERVICE_USER} VOICECOACH_STATE_DIR={state} {setup.executable} model fetch "
            f"{setup.language} && sudo systemctl restart {NAME}",
        )
    staging = target.with_name(STAGING_PREFIX + spec.name)
    owner = f"{SERVICE_USER}:{SERVICE_USER}"
    return [CopyTree(source, staging), Command(("chown", "-R", owner, str(state))), Rename(staging, target)], ()


# A dry run without root cannot look into the service's state directory: there it sees no model.
def _has_model(path: Path) -> bool:
    try:
        return models.is_model(path)
    except PermissionError:
        return False


def _exists(path: Path) -> bool:
    try:
        return path.exists()
    except PermissionError:
        return False
