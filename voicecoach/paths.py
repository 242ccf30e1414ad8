"""The state directory's layout: where the journal, the clip cache, the speech models and the voices are in it.

Which directory it is, the configuration decides: Config.state_dir (config.load), with state_dir() below as its
default, then the configuration files, the flags, and $VOICECOACH_STATE_DIR over them all. The daemon and every
command that opens the journal, the clips or the models use Config.state_dir, so that they all open the same ones.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

STATE_ENV = "VOICECOACH_STATE_DIR"


def state_dir() -> Path:
    """The state directory before the configuration is read: $VOICECOACH_STATE_DIR, else
    $XDG_STATE_HOME/voicecoach, else ~/.local/state/voicecoach. The configuration's default; besides config.load
    only the control socket's lookup uses it (it runs without reading the configuration)."""
    explicit = os.environ.get(STATE_ENV)
    if explicit:
        return Path(explicit)
    xdg = os.environ.get("XDG_STATE_HOME")
    base = Path(xdg) if xdg else Path.home() / ".local" / "state"
    return base / "voicecoach"


def clip_dir(state: Path) -> Path:
    return state / "clips"


def journal_path(state: Path) -> Path:
    return state / "journal.sqlite3"


def models_dir(state: Path) -> Path:
    return state / "models"


def voices_dir(state: Path) -> Path:
    return state / "voices"


def write_private(path: Path, text: str) -> None:
    """Write a small state file whole: under a temporary name, then renamed, readable by her only, so that a crash
    or a full disk leaves the old one. OSError when it cannot be written."""
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, path)
    except OSError:
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)
        raise
