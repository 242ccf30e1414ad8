"""The vocabulary check, the grammar vosk is given and the decoding mode, without loading a model."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import pytest
from speech_corpus import SHARED

from voicecoach.engine.language import STATES, Command, load_pack
from voicecoach.listen.recognizer import GRAMMAR, OPEN, decoding_mode, grammar_json
from voicecoach.listen.vocab import VocabularyError, check_commands, read_vocabulary, unknown_token

SV_WORDS = SHARED / "data" / "sv-vocab" / "words.txt"


def _fst_string(text: str) -> bytes:
    data = text.encode()
    return struct.pack("<i", len(data)) + data


def _symbol_table(words: list[str]) -> bytes:
    entries = b"".join(_fst_string(w) + struct.pack("<q", i) for i, w in enumerate(words))
    return (
        struct.pack("<i", 2125658996) + _fst_string("words.txt") + struct.pack("<qq", len(words), len(words)) + entries
    )


def _fst(words: list[str]) -> bytes:
    header = struct.pack("<i", 2125659606) + _fst_string("ngram") + _fst_string("standard")
    header += struct.pack("<ii", 4, 3) + struct.pack("<Qqqq", 0, 0, 1, 0)
    # Input and output symbols, then arcs that happen to contain a word's bytes: they must not be read.
    return header + _symbol_table(["<eps>", "in"]) + _symbol_table(words) + _fst_string("ghost") * 3


def test_vocabulary_from_words_txt(tmp_path: Path) -> None:
    (tmp_path / "graph").mkdir()
    (tmp_path / "graph" / "words.txt").write_text("<eps> 0\n<unk> 1\npaus 2\nfortsätt 3\n", encoding="utf-8")
    vocabulary = read_vocabulary(tmp_path)
    assert vocabulary == {"<eps>", "<unk>", "paus", "fortsätt"}
    assert unknown_token(vocabulary) == "<unk>"


def test_vocabulary_from_the_graphs_symbol_table(tmp_path: Path) -> None:
    (tmp_path / "graph").mkdir()
    (tmp_path / "graph" / "Gr.fst").write_bytes(_fst(["<eps>", "<UNK>", "멈춤", "계속해"]))
    vocabulary = read_vocabulary(tmp_path)
    assert vocabulary == {"<eps>", "<UNK>", "멈춤", "계속해"}
    assert unknown_token(vocabulary) == "<UNK>"


def test_a_truncated_graph_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "graph").mkdir()
    (tmp_path / "graph" / "Gr.fst").write_bytes(_fst(["<eps>", "<UNK>", "멈춤", "계속해"])[:-40])
    with pytest.raises(VocabularyError, match="reinstall the model"):
        read_vocabulary(tmp_path)


def test_a_model_without_any_word_list_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(VocabularyError, match="cannot find the vocabulary"):
        read_vocabulary(tmp_path)


def test_unknown_token_is_none_for_a_model_without_one() -> None:
    assert unknown_token(frozenset({"a", "b"})) is None
    assert unknown_token(frozenset({"a", "[unk]"})) == "[unk]"


def test_a_command_word_missing_from_the_model_is_named() -> None:
    commands = [Command("paus", "pause", ("session",)), Command("knip nu", "squeeze", ("session",))]
    with pytest.raises(VocabularyError, match="'knip'") as error:
        check_commands(commands, frozenset({"paus", "nu"}), Path("/models/sv"))
    assert "knip nu" in str(error.value)


@pytest.mark.skipif(not SV_WORDS.is_file(), reason="../shared/data/sv-vocab is absent (a clone without shared/)")
def test_every_swedish_command_word_is_in_the_swedish_models_vocabulary() -> None:
    words = frozenset(line.split()[0] for line in SV_WORDS.read_text(encoding="utf-8").splitlines() if line)
    assert "knip" not in words, "the check below relies on a vocabulary that lacks 'knip'"
    check_commands(load_pack("sv").commands, words, SV_WORDS.parent)


def test_grammar_json_keeps_non_ascii_and_ends_with_the_unknown_token() -> None:
    grammar = grammar_json(["paus", "fortsätt"], "<unk>")
    assert "fortsätt" in grammar and "\\u" not in grammar
    assert json.loads(grammar) == ["paus", "fortsätt", "<unk>"]


def test_grammar_json_without_an_unknown_token() -> None:
    assert json.loads(grammar_json(["paus"], None)) == ["paus"]


def test_decoding_mode_follows_the_graph(tmp_path: Path) -> None:
    runtime = tmp_path / "runtime" / "graph"
    runtime.mkdir(parents=True)
    (runtime / "HCLr.fst").touch()
    (runtime / "Gr.fst").touch()
    static = tmp_path / "static" / "graph"
    static.mkdir(parents=True)
    (static / "HCLG.fst").touch()
    assert decoding_mode(runtime.parent) == GRAMMAR
    assert decoding_mode(static.parent) == OPEN


@pytest.mark.parametrize("lang", ["sv", "en"])
def test_packs_have_the_full_command_table(lang: str) -> None:
    commands = load_pack(lang).commands
    by_state = {state: {(c.intent, c.exercise) for c in commands if state in c.states} for state in STATES}
    assert by_state["idle"] == {
        ("start", "identification"),
        ("start", "strength"),
        ("start", "speed"),
        ("start", "endurance"),
        ("start_next", None),
        ("help", None),
        ("progress", None),
        ("snooze", None),
        # Between sets, "stopp" silences what is still to be said.
        ("stop", None),
        ("louder", None),
        ("quieter", None),
        ("count_ticks", None),
        ("count_words", None),
        ("leak", None),
        ("pad", None),
        ("undo", None),
    }
    in_a_set = ("pause", "resume", "stop", "next", "repeat", "how_many_left", "cant", "louder", "quieter")
    assert by_state["session"] == {(intent, None) for intent in in_a_set}
    assert by_state["question"] == {("yes", None), ("no", None), ("louder", None), ("quieter", None)}
    assert sorted(c.minutes for c in commands if c.intent == "snooze") == [15, 30, 60]
