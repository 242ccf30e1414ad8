"""`voicecoach commands|recognize|listen`: the voice commands, offline recognition of WAV files, live listening."""

from __future__ import annotations

import argparse
import json
import queue
import sys
import wave
from pathlib import Path

import numpy as np

from voicecoach import paths
from voicecoach.cli import config as cli_config
from voicecoach.daemon import pulsewatch
from voicecoach.engine.language import LANGUAGES, STATES, Command, load_commands, load_pack
from voicecoach.errors import UsageError
from voicecoach.intents import Mode
from voicecoach.listen import (
    RATE,
    CommandRecognizer,
    Detection,
    EchoCanceller,
    Listener,
    PlayedSignal,
    models,
    open_recognizer,
)
from voicecoach.listen.resample import to_rate
from voicecoach.listen.vad import GateSettings
from voicecoach.sound import audio
from voicecoach.sound.clips import read_wav
from voicecoach.sound.mixer import Played

# How long a new recording may wait for PipeWire's session manager to link it to a source, before the coach looks
# whether that source is an echo canceller (linked within 0.1 s here; a Pi under load takes longer).
LINK_WAIT_S = 2.0
# How much of a file is fed at a time: what the live input stream delivers.
BLOCK = audio.INPUT_BLOCK_FRAMES


def register(sub: argparse._SubParsersAction) -> None:
    commands = sub.add_parser("commands", help="list the voice and typed commands")
    commands.set_defaults(func=cmd_commands)
    _pack_options(commands, model=False)
    commands.add_argument("--json", action="store_true", help="one JSON object per phrase")

    recognize = sub.add_parser("recognize", help="find voice commands in WAV files (offline evaluation)")
    recognize.set_defaults(func=cmd_recognize)
    recognize.add_argument("files", nargs="+", type=Path, metavar="FILE.wav")
    _pack_options(recognize, model=True)
    recognize.add_argument("--echo", type=Path, metavar="REFERENCE.wav", help="what was played while recording")
    recognize.add_argument("--state", choices=STATES, default=Mode.IDLE, help="the coach's state (default idle)")

    listen = sub.add_parser("listen", help="recognise voice commands from the microphone, as JSON lines")
    listen.set_defaults(func=cmd_listen)
    _pack_options(listen, model=True)
    listen.add_argument("--state", choices=STATES, default=Mode.IDLE, help="the coach's state (default idle)")
    listen.add_argument("--device", help="input device name or index (see 'voicecoach devices')")


def _pack_options(parser: argparse.ArgumentParser, model: bool) -> None:
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--lang", choices=LANGUAGES, default="sv", help="language (default sv)")
    which.add_argument("--commands", type=Path, metavar="PACK.toml", help="a pack file's [[commands]] instead")
    if model:
        parser.add_argument("--model", type=Path, metavar="DIR", help="vosk model directory (default: installed)")
        # Its state_dir says where the installed models are.
        cli_config.add_config_argument(parser)


def _commands(args: argparse.Namespace) -> tuple[Command, ...]:
    return load_commands(args.commands) if args.commands else load_pack(args.lang).commands


def _recognizer(args: argparse.Namespace) -> CommandRecognizer:
    model_dir = args.model
    if model_dir is None:
        # The installed one, where the daemon looks.
        model_dir = paths.models_dir(cli_config.load_from_args(args).state_dir) / models.MODELS[args.lang].name
    return open_recognizer(model_dir, _commands(args), fetch_hint=args.lang)


def _print(detection: Detection, **extra: object) -> None:
    print(json.dumps({**extra, **detection.as_json()}, ensure_ascii=False), flush=True)


def cmd_commands(args: argparse.Namespace) -> int:
    for command in _commands(args):
        entry: dict[str, object] = {"phrase": command.phrase, "intent": command.intent, "states": command.states}
        slots = {"exercise": command.exercise, "minutes": command.minutes}
        entry.update({k: v for k, v in slots.items() if v is not None})
        if args.json:
            print(json.dumps(entry, ensure_ascii=False))
        else:
            meaning = " ".join(str(v) for v in (command.intent, *slots.values()) if v is not None)
            print(f"{command.phrase:<30} {meaning:<26} {', '.join(command.states)}")
    return 0


def _read(path: Path) -> np.ndarray:
    """A WAV file as float32 mono at 16 kHz."""
    try:
        samples, rate = read_wav(path)
    except FileNotFoundError:
        raise UsageError(f"cannot read {path}: no such file") from None
    except (OSError, EOFError, ValueError, wave.Error) as exc:
        raise UsageError(
            f"cannot read {path} ({exc}): give a 16-bit PCM WAV file (convert with 'sox IN -b 16 OUT.wav')"
        ) from None
    return to_rate(samples, rate)


def cmd_recognize(args: argparse.Namespace) -> int:
    reference = _read(args.echo) if args.echo else None
    signals = [(path, _read(path)) for path in args.files]
    recognizer = _recognizer(args)
    for path, mic in signals:
        listener = Listener(recognizer, EchoCanceller() if reference is not None else None, state=args.state)
        played = None
        heard: list[Detection] = []
        if reference is not None:
            # The recording and the reference start together, and are lined up as live, by listening for the echo;
            # past the reference's end nothing was played.
            reference = np.concatenate((reference, np.zeros(max(0, mic.size - reference.size), dtype=np.float32)))
            played = PlayedSignal(RATE)
            played.tap(Played(0, reference[:BLOCK], None, ()))
        for start in range(0, mic.size, BLOCK):
            block = mic[start : start + BLOCK]
            if played is not None and reference is not None:
                # What was played is known a little before its echo is heard, as live (the output's buffer).
                ahead = start + BLOCK
                played.tap(Played(ahead, reference[ahead : ahead + BLOCK], None, ()))
            heard += listener.feed(block, played.take(block) if played is not None else None)
        heard += listener.flush()
        for detection in heard:
            _print(detection, file=str(path))
        if not heard:
            # The voice gate takes its first warmup_s for the room's noise, as when the microphone starts: speech
            # already under way then is lost (measured: a phrase with under 0.1 s of silence before it, unheard).
            print(
                f"{path}: no command heard in state {args.state} (a recording should begin with "
                f"{GateSettings().warmup_s:g} s of the room before speech)",
                file=sys.stderr,
            )
    return 0


def off_canceller() -> str | None:
    """Where the sound server records the microphone through its echo canceller, listen to the microphone behind
    it instead (pulsewatch.move_off_canceller), and say so; that microphone, None where nothing was moved."""
    moved = pulsewatch.move_off_canceller(link_wait_s=LINK_WAIT_S)
    if moved is not None:
        print(pulsewatch.MOVED_OFF_CANCELLER % moved, file=sys.stderr)
    return moved


def cmd_listen(args: argparse.Namespace) -> int:
    device = audio.resolve_device(args.device, "input")
    listener = Listener(_recognizer(args), state=args.state)
    # The audio callback only queues each block; decoding happens here, where it may take its time.
    blocks: queue.SimpleQueue[np.ndarray] = queue.SimpleQueue()
    with audio.InputStream(device, RATE, lambda block, _at: blocks.put(block), off_canceller):
        print(f"listening on {device.name} in state {args.state}; Ctrl-C stops", file=sys.stderr)
        while True:
            for detection in listener.feed(blocks.get()):
                _print(detection)
