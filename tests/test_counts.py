"""How she asked the seconds of a hold to be counted, kept in the state directory over [speech] counts."""

from __future__ import annotations

import logging
import stat
from pathlib import Path

import pytest

from voicecoach.config import TICKS, WORDS
from voicecoach.sound import counts


def test_without_a_choice_of_hers_the_configuration_counts(tmp_path: Path) -> None:
    assert counts.load(tmp_path, WORDS) == WORDS
    assert counts.load(tmp_path / "not made yet", TICKS) == TICKS


def test_her_choice_is_kept_readable_by_her_only(tmp_path: Path) -> None:
    counts.save(tmp_path, TICKS, WORDS)
    assert counts.load(tmp_path, WORDS) == TICKS
    assert stat.S_IMODE((tmp_path / counts.FILE_NAME).stat().st_mode) == 0o600
    assert [p.name for p in tmp_path.iterdir()] == [counts.FILE_NAME]  # no temporary file left


def test_a_configuration_changed_since_her_choice_is_what_she_asked_for_last(tmp_path: Path) -> None:
    counts.save(tmp_path, WORDS, TICKS)
    assert counts.load(tmp_path, TICKS) == WORDS
    # She edited config.toml from "ticks" to "words" after saying "räkna högt": no surprise either way, but a later
    # edit to "ticks" must count.
    counts.save(tmp_path, WORDS, WORDS)
    assert counts.load(tmp_path, TICKS) == TICKS


@pytest.mark.parametrize("text", ["{", '{"counts": "whispers", "over": "words"}', '{"counts": "ticks"}', "[1]"])
def test_a_damaged_file_is_logged_and_the_configuration_counts(
    tmp_path: Path, text: str, caplog: pytest.LogCaptureFixture
) -> None:
    (tmp_path / counts.FILE_NAME).write_text(text, encoding="utf-8")
    with caplog.at_level(logging.WARNING):
        assert counts.load(tmp_path, WORDS) == WORDS
    assert str(tmp_path / counts.FILE_NAME) in caplog.text


def test_a_state_directory_that_cannot_be_written_raises(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("", encoding="utf-8")
    with pytest.raises(OSError):
        counts.save(tmp_path / "file", TICKS, WORDS)
