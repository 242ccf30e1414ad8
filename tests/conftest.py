"""Shared fixtures. Fast tests use fake clip lengths; tests marked speech/audio/model use the real parts."""

from __future__ import annotations

from pathlib import Path

import pytest

from voicecoach.language import Pack, load_pack

SHARED = Path(__file__).resolve().parents[1].parent / "shared"


def fake_duration(text: str) -> float:
    """A stand-in for a clip's length: 60 ms a character, like espeak-ng at a calm rate."""
    return 0.06 * len(text)


@pytest.fixture(scope="session")
def sv() -> Pack:
    return load_pack("sv")


@pytest.fixture(scope="session")
def en() -> Pack:
    return load_pack("en")


@pytest.fixture
def state_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty state directory for the CLI (VOICECOACH_STATE_DIR)."""
    path = tmp_path / "state"
    monkeypatch.setenv("VOICECOACH_STATE_DIR", str(path))
    return path
