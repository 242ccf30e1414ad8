"""vosk, restricted to the commands when the model allows it.

The model decides the mode. A model with a runtime graph (graph/HCLr.fst and graph/Gr.fst) is given a grammar
of the commands valid in the current state plus its unknown-word token, which soaks up other speech. A model
with a static graph (the Swedish one) can only decode open vocabulary; its best guesses are matched to the
commands by the matcher.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, replace
from pathlib import Path

from voicecoach.engine.language import STATES, Command
from voicecoach.listen.matcher import Match, Matcher
from voicecoach.listen.models import ModelError, has_runtime_graph, is_model
from voicecoach.listen.resample import RATE
from voicecoach.listen.vocab import check_commands, read_vocabulary, unknown_token

GRAMMAR = "grammar"
OPEN = "open"
# Guesses an open-vocabulary decoder returns for the matcher to weigh.
ALTERNATIVES = 8


def decoding_mode(model_dir: Path) -> str:
    """GRAMMAR for a model with a runtime graph (HCLr.fst and Gr.fst), OPEN for one with a static graph."""
    return GRAMMAR if has_runtime_graph(model_dir) else OPEN


def grammar_json(phrases: Iterable[str], unknown: str | None) -> str:
    """The grammar vosk takes: a JSON list of phrases, non-ASCII kept as is (vosk does not decode \\u escapes)."""
    entries = list(phrases)
    if unknown is not None:
        entries.append(unknown)
    return json.dumps(entries, ensure_ascii=False)


@dataclass(frozen=True)
class LoadedModel:
    """A vosk model with what we read from its directory: mode and vocabulary."""

    directory: Path
    model: object
    mode: str
    vocabulary: frozenset[str]


def load_model(model_dir: Path, fetch_hint: str = "sv") -> LoadedModel:
    """Load a vosk model, or explain how to get one."""
    if not is_model(model_dir):
        raise ModelError(
            f"no speech model in {model_dir}: download one with 'voicecoach model fetch {fetch_hint}' "
            "or pass --model DIR"
        )
    import vosk

    vosk.SetLogLevel(-1)
    try:
        model = vosk.Model(str(model_dir))
    except Exception as exc:
        raise ModelError(
            f"cannot load the speech model in {model_dir} ({exc}): "
            f"download it again with 'voicecoach model fetch {fetch_hint}'"
        ) from exc
    return LoadedModel(model_dir, model, decoding_mode(model_dir), read_vocabulary(model_dir))


class CommandRecognizer:
    """Decodes one utterance at a time into at most one command, in the coach's state at the time."""

    def __init__(self, loaded: LoadedModel, commands: Iterable[Command], mode: str | None = None) -> None:
        import vosk

        commands = tuple(commands)
        check_commands(commands, loaded.vocabulary, loaded.directory)
        self.mode = mode or loaded.mode
        self.matcher = Matcher(commands, unknown_token(loaded.vocabulary))
        self._decoders: dict[str, vosk.KaldiRecognizer] = {}
        # Seconds of audio each decoder has been fed: its word times run on across FinalResult calls.
        self._fed: dict[str, float] = {}
        # The words the last utterance was decoded as (its best guess), command or not: for --explain; and each
        # with where it was placed (seconds from the utterance's start), to find a command among other words.
        self.heard = ""
        self.words: tuple[Word, ...] = ()
        for state in STATES:
            if not self.matcher.phrases(state):
                # A pack may have no commands for a state (no answers to questions): nothing to listen for there.
                continue
            if self.mode == GRAMMAR:
                grammar = grammar_json(self.matcher.phrases(state), self.matcher.unknown)
                decoder = vosk.KaldiRecognizer(loaded.model, RATE, grammar)
            else:
                decoder = vosk.KaldiRecognizer(loaded.model, RATE)
                decoder.SetMaxAlternatives(ALTERNATIVES)
            decoder.SetWords(True)
            self._decoders[state] = decoder

    def decode(self, pcm16: bytes, state: str) -> Match | None:
        """The command a whole utterance (16-bit PCM at 16 kHz) is in this state, if any."""
        self.heard = ""
        self.words = ()
        decoder = self._decoders.get(state)
        if decoder is None:
            return None
        decoder.AcceptWaveform(pcm16)
        # FinalResult also resets the decoder for the next utterance. (Reset would keep the feature
        # pipeline, whose undecoded last frames would then start the next utterance.)
        result = json.loads(decoder.FinalResult())
        before = self._fed.get(state, 0.0)
        self._fed[state] = before + len(pcm16) / 2 / RATE
        if self.mode == GRAMMAR:
            self.heard = result.get("text", "")
            words = result.get("result", [])
            self.words = placed(words, before)
            # vosk makes the grammar a bigram model of the phrases' words, so any sequence of command words can
            # come out; a word twice ("재개 재개") is how it covers longer speech, not a command said twice:
            # on the Swedish recordings, half the false accepts in a session. No command was lost by this.
            match = self.matcher.exact(result.get("text", ""), state, repeats=False)
            if match is None or not words:
                return match
            # The least certain word decides how certain the command is.
            return replace(match, confidence=min(float(w.get("conf", 1.0)) for w in words), span=span_of(self.words))
        alternatives = result.get("alternatives", [])
        self.heard = alternatives[0].get("text", "") if alternatives else ""
        self.words = placed(alternatives[0].get("result", []), before) if alternatives else ()
        guesses = [(a.get("text", ""), float(a.get("confidence", 0.0))) for a in alternatives]
        match = self.matcher.nearest(guesses, state)
        if match is None or not alternatives:
            return match
        return replace(match, span=span_of(self.words))


@dataclass(frozen=True)
class Word:
    """A word decoded, and where: seconds from the start of the utterance."""

    text: str
    start: float
    end: float


def placed(words: list[dict], before: float) -> tuple[Word, ...]:
    """vosk's words with their times, counted from the start of the utterance (vosk counts from the decoder's first
    audio, `before` seconds before it)."""
    return tuple(
        Word(str(w.get("word", "")), max(float(w["start"]) - before, 0.0), max(float(w["end"]) - before, 0.0))
        for w in words
        if "start" in w and "end" in w
    )


def span_of(words: tuple[Word, ...]) -> tuple[float, float] | None:
    """From the first word's start to the last one's end, in seconds from the start of the utterance."""
    return (words[0].start, words[-1].end) if words else None
