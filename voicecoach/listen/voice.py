"""Voice control for the daemon and `voicecoach session --listen`: the configured model and commands, the echo
reference from the mixer, and microphone blocks turned into intents."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import numpy as np

from voicecoach import paths
from voicecoach.config import Config, ConfigError
from voicecoach.engine.language import PackError, load_commands, load_pack
from voicecoach.errors import UserError
from voicecoach.intents import Intent
from voicecoach.listen import RATE, CommandRecognizer, Detection, EchoCanceller, Listener, PlayedSignal, models
from voicecoach.listen.own_voice import EchoFollowing
from voicecoach.listen.recognizer import ModelError, load_model
from voicecoach.listen.report import EchoReport, report
from voicecoach.listen.speexdsp import SpeexError
from voicecoach.listen.vad import FRAME_S, GateSettings, VoiceGate
from voicecoach.listen.vocab import VocabularyError
from voicecoach.sound.mixer import Mixer

# The echo is reported once this much of it has been heard: enough for its figures, and the drift, to settle.
REPORT_AFTER_S = 20.0
# How much of what the microphone heard follows what was played (report.LINEAR_COHERENCE: it names a system echo
# canceller in front) is measured over the last this many seconds before the report where the echo was found, as
# `check audio` measures it over its test phrase.
COHERENCE_S = 10.0
# listen.sensitivity 0.5 keeps the gate's defaults; 0 asks for speech 6 dB louder, 1 for 6 dB less: over the room's
# noise, and over the echo of the coach the canceller is expected to leave. Measured with the echo margin 3 dB higher
# (sensitivity 0.25; benchmarks/README.md, "Listening, live"): with the microphone on a second device the narration
# was acted on as stop, next or pause once in 52 minutes instead of 5 times in 20, and her commands over it were heard
# about as often (58-71 %), but behind PulseAudio's WebRTC canceller 21-33 % instead of about 45 %.
SENSITIVITY_SPAN_DB = 12.0


class VoiceUnavailable(UserError):
    """No usable speech model: the coach runs without voice control."""


def gate_settings(sensitivity: float) -> GateSettings:
    default = GateSettings()
    shift = (0.5 - sensitivity) * SENSITIVITY_SPAN_DB
    return replace(default, threshold_db=default.threshold_db + shift, echo_margin_db=default.echo_margin_db + shift)


class Voice:
    """Feeds the listener microphone blocks with the played signal that belongs to them."""

    rate = RATE

    def __init__(self, make_listener: Callable[[], Listener], played: PlayedSignal) -> None:
        self._make_listener = make_listener
        self._played = played
        self.listener = make_listener()
        self._reported = False
        self._following = EchoFollowing(COHERENCE_S)

    def hear(self, block: np.ndarray, state: str, adc_time: float | None = None) -> list[Detection]:
        """The commands a microphone block (recorded from adc_time on PortAudio's clock) ends, with the phrases
        they were heard as."""
        self.listener.state = state
        reference = self._played.take(block, adc_time)
        if not self._reported and reference.found:
            self._following.keep(block, reference.samples)
        return self.listener.feed(block, reference)

    def echo_report(self) -> EchoReport | None:
        """How the microphone hears the coach, once the coach has spoken long enough to tell (REPORT_AFTER_S of
        its echo); once only: None before and after."""
        echo = self.listener.echo
        if self._reported or echo is None or echo.meter.echo_frames < REPORT_AFTER_S / FRAME_S:
            return None
        self._reported = True
        follows = self._following.share()
        self._following.clear()
        return report(echo.meter, self._played.echo_delay_s, self._played.drift, follows)

    def reset(self) -> None:
        """The microphone (re)started: forget half-heard speech, and find how it pairs with the speaker afresh."""
        self.listener = self._make_listener()
        self._played.restart()
        self._following.clear()


def as_intent(detection: Detection) -> Intent:
    return Intent(detection.intent, exercise=detection.exercise, minutes=detection.minutes)


def open_voice(cfg: Config, mixer: Mixer) -> Voice:
    """Load the model for the configuration. A missing or damaged model is VoiceUnavailable; a command pack
    that cannot be read, or a command word the model cannot say, is a ConfigError (exit 78): restarting
    the service cannot fix either."""
    model_dir = cfg.listen.model or paths.models_dir(cfg.state_dir) / models.MODELS[cfg.language].name
    try:
        if cfg.listen.commands:
            commands = load_commands(cfg.listen.commands)
        else:
            commands = load_pack(cfg.language, cfg.speech.pack).commands
    except PackError as exc:
        raise ConfigError(f"{'listen.commands' if cfg.listen.commands else 'speech.pack'}: {exc}") from None
    try:
        loaded = load_model(model_dir, fetch_hint=cfg.language)
    except (ModelError, VocabularyError) as exc:
        # VocabularyError here: the model's word list is missing or damaged.
        raise VoiceUnavailable(str(exc)) from None
    try:
        recognizer = CommandRecognizer(loaded, commands)
    except VocabularyError as exc:
        pack = cfg.listen.commands or cfg.speech.pack or f"the {cfg.language!r} language pack"
        key = "speech.pack" if cfg.speech.pack and not cfg.listen.commands else "listen.commands"
        raise ConfigError(f"{key} ({pack}): {exc}") from None
    played = PlayedSignal(mixer.rate)
    mixer.add_tap(played.tap)
    gate = gate_settings(cfg.listen.sensitivity)

    def make_listener() -> Listener:
        return Listener(recognizer, EchoCanceller(), VoiceGate(gate))

    try:
        return Voice(make_listener, played)
    except SpeexError as exc:
        raise VoiceUnavailable(str(exc)) from None
