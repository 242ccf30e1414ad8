"""The intent vocabulary: every intent declared once, packs and the control socket held to it."""

from __future__ import annotations

from pathlib import Path

import pytest

from voicecoach.cli import ctl as cli_ctl
from voicecoach.daemon import control
from voicecoach.engine.language import PackError, load_commands, load_pack
from voicecoach.intents import SESSION, VOCABULARY, Intent, Name


def test_an_intent_nobody_declared_is_refused_where_it_is_made() -> None:
    assert Intent("pause") == Intent(Name.PAUSE)
    with pytest.raises(ValueError, match="'paus' is not a valid Name"):
        Intent("paus")


def test_every_intent_is_reachable_from_ctl_or_a_phrase() -> None:
    ctl = set(cli_ctl.HELP) | {Name.STATUS, Name.START, Name.SAY, Name.SNOOZE, Name.VOLUME}
    assert ctl == set(control.INTENTS)
    spoken = {c.intent for c in load_pack("sv").commands}
    assert spoken == {name for name, spec in VOCABULARY.items() if spec.spoken}
    assert set(VOCABULARY) == ctl | spoken
    assert spoken >= SESSION


def pack(tmp_path: Path, entry: str) -> Path:
    path = tmp_path / "commands.toml"
    first = '[[commands]]\nintent = "pause"\nphrases = ["paus"]\nstates = ["session"]'
    path.write_text(f"# a pack\n\n{first}\n\n[[commands]]\n{entry}\n")
    return path


IDLE = 'phrases = ["x"]\nstates = ["idle"]'


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        (f'intent = "dance"\n{IDLE}', "line 9: unknown intent 'dance'; use one of pause"),
        (f'intent = "say"\n{IDLE}', "line 9: unknown intent 'say'"),
        (f'intent = "start"\n{IDLE}', "line 9: command 'start' takes exercise (it has none)"),
        (f'intent = "snooze"\n{IDLE}', "line 9: command 'snooze' takes minutes (it has none)"),
        (f'intent = "pause"\nminutes = 5\n{IDLE}', "command 'pause' takes none (it has minutes)"),
        (f'intent = "snooze"\nminutes = 721\n{IDLE}', "use a whole number, 1 to 720"),
    ],
)
def test_a_pack_naming_what_the_vocabulary_does_not_have_is_refused_with_its_file_and_line(
    tmp_path: Path, entry: str, message: str
) -> None:
    path = pack(tmp_path, entry)
    with pytest.raises(PackError) as refused:
        load_commands(path)
    assert str(refused.value).startswith(f"{path}, line ")
    assert message in str(refused.value)
