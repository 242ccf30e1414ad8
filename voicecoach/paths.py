"""Where voicecoach keeps its state: speech models, the clip cache and the journal."""

from __future__ import annotations

import os
from pathlib import Path


def state_dir() -> Path:
    """$VOICECOACH_STATE_DIR, else $XDG_STATE_HOME/voicecoach, else ~/.local/state/voicecoach."""
    explicit = os.environ.get("VOICECOACH_STATE_DIR")
    if explicit:
        return Path(explicit)
    xdg = os.environ.get("XDG_STATE_HOME")
    base = Path(xdg) if xdg else Path.home() / ".local" / "state"
    return base / "voicecoach"


def clip_dir() -> Path:
    return state_dir() / "clips"


def journal_path() -> Path:
    return state_dir() / "journal.sqlite3"


def models_dir() -> Path:
    return state_dir() / "models"
