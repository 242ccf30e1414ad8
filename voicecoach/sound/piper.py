"""Piper voices: a neural voice (a VITS model in ONNX) that renders each phrase once, as espeak-ng does, for the
clip cache.

What runs it, measured on 2026-11-30 for Python 3.11 (pip's wheels; sizes installed, import times on the 2-core
x86 development machine):

- `piper-tts` 1.8.0: GPL-3.0-or-later; abi3 wheels for aarch64; 46 MB installed, plus the onnxruntime it
  requires; import 0.15-0.20 s.
- `piper-phonemize` 1.1.0 + onnxruntime: MIT, but it bundles espeak-ng (GPL-3) and its own onnxruntime 1.14;
  aarch64 wheels for cp311 only, none for Python 3.12 or later; 46 MB installed, plus onnxruntime; import 0.01 s.
- onnxruntime 1.32.0 alone, with phonemes from the espeak-ng voicecoach already uses: MIT; cp311 wheels for aarch64;
  78 MB installed; import 0.14-0.18 s.

The third is what this module does: onnxruntime runs the voice, and the system's espeak-ng (a dependency already,
for the fallback voice) gives the IPA phonemes. It adds no GPL code to an MIT project and no second copy of
espeak-ng's data (piper-tts and piper-phonemize each ship 20-30 MB of it), and it is an optional extra
(`pip install -e '.[piper]'`): without onnxruntime the coach speaks with espeak-ng. It also reads Swedish as the
voices were trained to: Piper 1.x's training (piper_train/preprocess.py), which made the Swedish voices, took its
phonemes from piper-phonemize, and on the programme's 44 phrases and 8 more (every kind of punctuation, decimal
numbers) phonemize() below gave exactly piper-phonemize 1.1.0's phonemes (52 of 52), while piper-tts 1.8.0's newer
espeak-ng differs in 29 of the 44 (ɧ for sx in "sju", ʈ for t in "hårt"): sounds the voices never heard in
training.

How Piper does it, and so how this does: the text is split into clauses at punctuation; each clause's phonemes are
espeak-ng's IPA (`espeak-ng -q --ipa`), language-switch flags removed, decomposed into code points (NFD), with the
clause's punctuation kept as a symbol; each sentence becomes ^ _ p1 _ p2 _ ... $ through the voice's
phoneme_id_map (a symbol the voice does not know is left out) and one inference; the sentences' audio is joined
and scaled to full scale, as Piper normalises it.

The speaking rate: the voice's own pace is its length_scale at voicecoach's default rate (DEFAULT_RATE_WPM); a rate
of r words a minute divides the duration by r / DEFAULT_RATE_WPM, as espeak-ng's rate does (length_scale is
duration per phoneme: 1.2 is 20 % slower).
"""

from __future__ import annotations

import hashlib
import io
import json
import re
import subprocess
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from voicecoach import voices
from voicecoach.config import DEFAULT_RATE_WPM
from voicecoach.sound.clips import SpeechError, write_wav

PAD, BOS, EOS = "_", "^", "$"
# A clause ends at punctuation followed by a space or the end, as espeak-ng's do: "2,5" and "30.5" stay numbers.
# Piper keeps the punctuation as a phoneme; only a sentence's end starts a new inference.
CLAUSE = re.compile(r"(?:[^.,:;!?]|[.,:;!?](?!\s|$))+[.,:;!?]*")
SENTENCE_END = ".!?"
# espeak-ng marks a word it reads in another language as (en)...(sv); Piper removes the flags.
LANGUAGE_FLAG = re.compile(r"\([^)]+\)")
ESPEAK_TIMEOUT_S = 10.0


class VoiceError(SpeechError):
    """The Piper voice is missing, broken or cannot run; the message says how to fix it."""


def fetch_hint(name: str) -> str:
    # Piper names a voice language_REGION-dataset-quality: one voicecoach does not know is named as it would be.
    command = voices.fetch_command(name) or f"voice fetch {name.split('_')[0]} --voice {name}"
    return f"voicecoach {command}"


@dataclass(frozen=True)
class VoiceConfig:
    """What a voice's .onnx.json says about how to run it."""

    sample_rate: int
    espeak_voice: str
    phoneme_id_map: dict[str, list[int]]
    noise_scale: float
    length_scale: float
    noise_w: float
    num_speakers: int

    @classmethod
    def parse(cls, raw: Any) -> VoiceConfig:
        """Raises KeyError, TypeError or ValueError where a field is missing or of the wrong kind."""
        inference = raw["inference"]
        id_map = {str(symbol): [int(i) for i in ids] for symbol, ids in raw["phoneme_id_map"].items()}
        for symbol in (PAD, BOS, EOS):
            if symbol not in id_map:
                raise ValueError(f"its phoneme_id_map has no {symbol!r}")
        config = cls(
            sample_rate=int(raw["audio"]["sample_rate"]),
            espeak_voice=str(raw["espeak"]["voice"]),
            phoneme_id_map=id_map,
            noise_scale=float(inference["noise_scale"]),
            length_scale=float(inference["length_scale"]),
            noise_w=float(inference["noise_w"]),
            num_speakers=int(raw.get("num_speakers", 1)),
        )
        if config.sample_rate <= 0 or config.length_scale <= 0:
            raise ValueError("its sample_rate and length_scale must be positive")
        return config


def espeak_version() -> str:
    try:
        done = subprocess.run(
            ["espeak-ng", "--version"], capture_output=True, text=True, check=True, timeout=ESPEAK_TIMEOUT_S
        )
    except (OSError, subprocess.SubprocessError) as exc:
        raise VoiceError(
            f"cannot run espeak-ng for a Piper voice's phonemes ({exc}): "
            "install it with 'sudo apt-get install espeak-ng'"
        ) from exc
    # "eSpeak NG text-to-speech: 1.51  Data at: ..."
    return done.stdout.split("Data at")[0].split(":")[-1].strip()


def phonemize(text: str, espeak_voice: str) -> list[list[str]]:
    """text as Piper's voices read it: per sentence, espeak-ng's IPA phonemes as single code points, with the
    clauses' punctuation kept."""
    sentences: list[list[str]] = []
    current: list[str] = []
    for match in CLAUSE.finditer(text):
        clause = match.group().strip()
        words = clause.rstrip(".,:;!?")
        # The clause's last punctuation mark, as espeak-ng's clause terminator is.
        terminator = clause[len(words) :][-1:]
        phonemes = LANGUAGE_FLAG.sub("", _espeak_ipa(words, espeak_voice)) if words.strip() else ""
        if terminator and terminator in ",:;":
            terminator += " "
        if phonemes or current:
            current.extend(unicodedata.normalize("NFD", phonemes + terminator))
        if terminator and terminator in SENTENCE_END and current:
            sentences.append(current)
            current = []
    if current:
        sentences.append(current)
    return sentences


def _espeak_ipa(words: str, espeak_voice: str) -> str:
    # -b 1: the text is UTF-8 whatever the locale (a service may run with LANG=C); after --, a text that starts
    # with a dash is still text. espeak-ng prints a line per clause it found itself; they are one clause here.
    try:
        done = subprocess.run(
            ["espeak-ng", "-q", "--ipa", "-b", "1", "-v", espeak_voice, "--", words],
            capture_output=True,
            check=False,
            timeout=ESPEAK_TIMEOUT_S,
        )
    except (OSError, subprocess.SubprocessError) as exc:
        raise VoiceError(f"espeak-ng could not give the phonemes of {words!r}: {exc}") from exc
    if done.returncode != 0:
        raise VoiceError(
            f"espeak-ng could not read {words!r} in voice {espeak_voice!r}: {done.stderr.decode().strip()}"
        )
    return " ".join(done.stdout.decode("utf-8", "replace").split())


def phoneme_ids(phonemes: list[str], id_map: dict[str, list[int]]) -> list[int]:
    """One sentence's phonemes as the voice's input: start, each known phoneme followed by a pad, end."""
    ids = [*id_map[BOS], *id_map[PAD]]
    for phoneme in phonemes:
        if phoneme in id_map:
            ids += [*id_map[phoneme], *id_map[PAD]]
    return ids + id_map[EOS]


class PiperSynthesizer:
    """A Piper voice, loaded and tried once: render(text) gives a WAV at the voice's sample rate.

    Loading fails with a VoiceError (one sentence, how to fix it) where the voice is not installed, its files are
    damaged, it is not a Piper voice, or onnxruntime is not installed; the caller falls back to espeak-ng."""

    def __init__(self, model: Path, rate_wpm: int) -> None:
        self.name = name = model.stem
        config_path = model.with_name(f"{model.name}.json")
        if not model.is_file() or not config_path.is_file():
            raise VoiceError(f"the Piper voice {name} is not installed in {model.parent}: run '{fetch_hint(name)}'")
        try:
            config_bytes = config_path.read_bytes()
            self.config = VoiceConfig.parse(json.loads(config_bytes))
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            raise VoiceError(
                f"the Piper voice {name} has a broken {config_path.name} ({exc!r}): run '{fetch_hint(name)}' again"
            ) from exc
        try:
            import onnxruntime
        except ImportError as exc:
            raise VoiceError(
                "Piper voices need onnxruntime, which is not installed: run \".venv/bin/pip install -e '.[piper]'\""
            ) from exc
        self._length_scale = self.config.length_scale * DEFAULT_RATE_WPM / rate_wpm
        options = onnxruntime.SessionOptions()
        # Its log goes to stderr, unasked, on every load; errors reach us as exceptions.
        options.log_severity_level = 3
        try:
            self._session = onnxruntime.InferenceSession(
                str(model), sess_options=options, providers=["CPUExecutionProvider"]
            )
            inputs = {i.name for i in self._session.get_inputs()}
            if not {"input", "input_lengths", "scales"} <= inputs:
                raise ValueError(f"its inputs are {sorted(inputs)}, not a Piper voice's")
            # A voice that loads may still fail to run; trying it now lets the caller fall back before a set.
            self._infer(phoneme_ids([], self.config.phoneme_id_map))
        except Exception as exc:
            # onnxruntime raises its own exception types (Fail, InvalidGraph, ...) for a damaged file.
            raise VoiceError(
                f"the Piper voice {name} cannot be loaded ({exc}): run '{fetch_hint(name)}' again"
            ) from exc
        # The cache key: a voice fetched anew (another .onnx.json or size) renders anew.
        digest = hashlib.sha256(config_bytes).hexdigest()[:16]
        self.version = (
            f"piper-{name}-{digest}-{model.stat().st_size}/onnxruntime-{onnxruntime.__version__}"
            f"/espeak-ng-{espeak_version()}"
        )

    def render(self, text: str) -> bytes:
        """text as the bytes of a 16-bit mono WAV at the voice's sample rate."""
        sentences = phonemize(text, self.config.espeak_voice)
        try:
            parts = [self._infer(phoneme_ids(s, self.config.phoneme_id_map)) for s in sentences]
        except Exception as exc:
            # onnxruntime's own exception types; the cache falls back to espeak-ng on a VoiceError.
            raise VoiceError(f"the Piper voice {self.name} failed on {text!r} ({exc})") from exc
        audio = np.concatenate(parts) if parts else np.zeros(0, dtype=np.float32)
        peak = float(np.max(np.abs(audio))) if audio.size else 0.0
        if peak > 0:
            audio = audio / peak
        wav = io.BytesIO()
        write_wav(wav, audio, self.config.sample_rate)
        return wav.getvalue()

    def _infer(self, ids: list[int]) -> np.ndarray:
        feed = {
            "input": np.array([ids], dtype=np.int64),
            "input_lengths": np.array([len(ids)], dtype=np.int64),
            "scales": np.array([self.config.noise_scale, self._length_scale, self.config.noise_w], dtype=np.float32),
        }
        if self.config.num_speakers > 1:
            # As Piper: a voice of several speakers takes one (its first; voicecoach has no setting for it).
            feed["sid"] = np.array([0], dtype=np.int64)
        output = self._session.run(None, feed)[0]
        return np.asarray(output, dtype=np.float32).reshape(-1)
