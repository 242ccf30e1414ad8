"""Voice control for the daemon and `voicecoach session --listen`: the configured model and commands, the echo
reference from the mixer, and microphone blocks turned into intents."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import numpy as np

from voicecoach import models
from voicecoach.coach import Intent
from voicecoach.config import Config, ConfigError
from voicecoach.errors import UserError
from voicecoach.language import PackError, load_commands, load_pack
from voicecoach.listen import RATE, CommandRecognizer, Detection, EchoCanceller, Listener, PlayedSignal
from voicecoach.listen.recognizer import ModelError, load_model
from voicecoach.listen.speexdsp import SpeexError
from voicecoach.listen.vad import GateSettings, VoiceGate
from voicecoach.listen.vocab import VocabularyError
from voicecoach.mixer import Mixer

# listen.sensitivity 0.5 keeps the gate's default threshold; 0 asks for speech 6 dB louder, 1 for 6 dB less.
SENSITIVITY_SPAN_DB = 12.0


class VoiceUnavailable(UserError):
    """No usable speech model: the coach runs without voice control."""


def gate_settings(sensitivity: float) -> GateSettings:
    default = GateSettings()
    return replace(default, threshold_db=default.threshold_db + (0.5 - sensitivity) * SENSITIVITY_SPAN_DB)


class Voice:
    """Feeds the listener microphone blocks with the played signal that belongs to them."""

    rate = RATE

    def __init__(self, make_listener: Callable[[], Listener], played: PlayedSignal) -> None:
        self._make_listener = make_listener
        self._played = played
        self.listener = make_listener()

    def feed(self, block: np.ndarray, state: str) -> list[Intent]:
        return [as_intent(d) for d in self.hear(block, state)]

    def hear(self, block: np.ndarray, state: str) -> list[Detection]:
        """The commands a microphone block ends, with the phrases they were heard as."""
        self.listener.state = state
        return self.listener.feed(block, self._played.take(block.size))

    def reset(self) -> None:
        """The microphone (re)started: forget half-heard speech and the played signal that piled up meanwhile."""
        self.listener = self._make_listener()
        self._played.clear()


def as_intent(detection: Detection) -> Intent:
    return Intent(detection.intent, exercise=detection.exercise, minutes=detection.minutes)


def open_voice(cfg: Config, mixer: Mixer) -> Voice:
    """Load the model for the configuration. A missing or damaged model is VoiceUnavailable; a command pack
    that cannot be read, or a command word the model cannot say, is a ConfigError (exit 78): restarting
    the service cannot fix either."""
    model_dir = cfg.listen.model or cfg.state_dir / "models" / models.MODELS[cfg.language].name
    try:
        commands = load_commands(cfg.listen.commands) if cfg.listen.commands else load_pack(cfg.language).commands
    except PackError as exc:
        raise ConfigError(f"listen.commands: {exc}") from None
    try:
        loaded = load_model(model_dir, fetch_hint=cfg.language)
    except (ModelError, VocabularyError) as exc:
        # VocabularyError here: the model's word list is missing or damaged.
        raise VoiceUnavailable(str(exc)) from None
    try:
        recognizer = CommandRecognizer(loaded, commands)
    except VocabularyError as exc:
        pack = cfg.listen.commands or f"the {cfg.language!r} language pack"
        raise ConfigError(f"listen.commands ({pack}): {exc}") from None
    played = PlayedSignal(mixer.rate)
    mixer.add_tap(played.tap)
    gate = gate_settings(cfg.listen.sensitivity)

    def make_listener() -> Listener:
        return Listener(recognizer, EchoCanceller(), VoiceGate(gate))

    try:
        return Voice(make_listener, played)
    except SpeexError as exc:
        raise VoiceUnavailable(str(exc)) from None
