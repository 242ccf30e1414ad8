"""`voicecoach install-service`: the steps that install, enable and start the systemd unit, worked out from the
machine without changing it, so that --dry-run shows exactly what a real run does."""

from __future__ import annotations

import shlex
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from voicecoach import paths, voices
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
    voice: str | None = None  # the Piper voice the configuration speaks with; None with espeak-ng
    service_user_exists: bool = False
    root: Path = Path("/")  # where /etc and /var/lib are; only tests move it
    dry_run: bool = False

    @property
    def executable(self) -> Path:
        return self.venv / "bin" / NAME

    @property
    def voices_from(self) -> Path:
        """That user's voices directory: beside the models, in the same state directory."""
        return paths.voices_dir(self.models_from.parent)


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
    copy_steps, notes = _state_copies(setup, state)
    steps += copy_steps
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
    state = setup.home / USER_STATE
    restart = f"systemctl --user restart {NAME}"
    notes = tuple(
        _fetch_note(item, item.target.parent, f"VOICECOACH_STATE_DIR={state} {setup.executable}", restart)
        for item in _state_items(setup, state)
        if not _has(item, item.target)
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


@dataclass(frozen=True)
class _StateItem:
    """Something the service needs in its state directory: the speech model, or the configured Piper voice."""

    kind: str  # "speech model" or "voice", in messages
    name: str
    target: Path  # where the service looks for it
    source: Path  # where the invoking user has it, for the system service to copy
    whole: Callable[[Path], bool]  # whether a directory holds all of it
    fetch: str | None  # the voicecoach subcommand that installs it; None for a voice voicecoach cannot fetch
    without: str  # what the coach does until it is there


def _state_items(setup: Setup, state: Path) -> list[_StateItem]:
    items = []
    if not setup.configured_model:
        spec = models.MODELS[setup.language]
        items.append(
            _StateItem(
                "speech model",
                spec.name,
                paths.models_dir(state) / spec.name,
                setup.models_from / spec.name,
                models.is_model,
                f"model fetch {setup.language}",
                "voice control stays off",
            )
        )
    if setup.voice is not None:
        items.append(
            _StateItem(
                "voice",
                setup.voice,
                paths.voices_dir(state) / setup.voice,
                setup.voices_from / setup.voice,
                lambda path: voices.is_voice(path.parent, path.name),
                voices.fetch_command(setup.voice),
                "the coach speaks with espeak-ng",
            )
        )
    return items


def _state_copies(setup: Setup, state: Path) -> tuple[list[Step], tuple[str, ...]]:
    """Steps that give the system service the invoking user's speech model and Piper voice, or notes on how to
    fetch them. Each is copied under a hidden name, and renamed into place once the copy is whole and chowned."""
    copies: list[Step] = []
    renames: list[Step] = []
    notes: list[str] = []
    command = f"sudo -u {SERVICE_USER} VOICECOACH_STATE_DIR={state} {setup.executable}"
    for item in _state_items(setup, state):
        if _has(item, item.target):
            continue
        if _exists(item.target):
            notes.append(
                f"{item.target} is there but is not a whole {item.kind}, so nothing was copied; remove it"
                f" (sudo rm -r {item.target}) and run install-service again"
            )
        elif not _has(item, item.source):
            notes.append(_fetch_note(item, item.source.parent, command, f"sudo systemctl restart {NAME}"))
        else:
            staging = item.target.with_name(STAGING_PREFIX + item.name)
            copies.append(CopyTree(item.source, staging))
            renames.append(Rename(staging, item.target))
    if not copies:
        return [], tuple(notes)
    chown = Command(("chown", "-R", f"{SERVICE_USER}:{SERVICE_USER}", str(state)))
    return [*copies, chown, *renames], tuple(notes)


def _fetch_note(item: _StateItem, where: Path, command: str, restart: str) -> str:
    if item.fetch is None:
        how = f"put {item.name}.onnx and {item.name}.onnx.json in {item.target} and run: {restart}"
    else:
        how = f"run: {command} {item.fetch} && {restart}"
    return f"no {item.name} {item.kind} in {where} to copy, so {item.without} until you {how}"


def _has(item: _StateItem, path: Path) -> bool:
    # A dry run without root cannot look into the service's state directory: there it sees nothing.
    try:
        return item.whole(path)
    except PermissionError:
        return False


def _exists(path: Path) -> bool:
    try:
        return path.exists()
    except PermissionError:
        return False
