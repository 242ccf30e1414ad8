"""Voice commands: microphone audio in, intents out (voice gate, vosk, command matching, echo handling).

How a session or the daemon uses it:

    recognizer = open_recognizer(model_dir, pack.commands)           # once; loading takes seconds
    listener = Listener(recognizer, echo=EchoCanceller())
    played = PlayedSignal(mixer.rate); mixer.add_tap(played.tap)      # the echo reference
    audio.InputStream(device, RATE, on_block)                         # on_block only queues the block
    ...
    listener.state = "session"                                        # whenever the coach's state changes
    for detection in listener.feed(block, played.take(block, adc_time)):  # where the queue is read
        ...detection.intent, detection.exercise...

feed() does the decoding, 25 ms or so per second of speech here (more on a Pi) at the end of each utterance:
call it where that may block, not in an audio callback.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from voicecoach.engine.language import Command
from voicecoach.listen.echo import EchoCanceller
from voicecoach.listen.listener import Detection, Listener
from voicecoach.listen.recognizer import CommandRecognizer, load_model
from voicecoach.listen.reference import PlayedSignal, Reference
from voicecoach.listen.resample import RATE

__all__ = [
    "RATE",
    "CommandRecognizer",
    "Detection",
    "EchoCanceller",
    "Listener",
    "PlayedSignal",
    "Reference",
    "open_recognizer",
]


def open_recognizer(model_dir: Path, commands: Iterable[Command], fetch_hint: str = "sv") -> CommandRecognizer:
    """Load the model and check every command word against its vocabulary; fetch_hint names the language
    that 'voicecoach model fetch' should be told, should the model be missing."""
    return CommandRecognizer(load_model(model_dir, fetch_hint), commands)
