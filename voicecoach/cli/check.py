"""`voicecoach check audio`: how the microphone hears the speaker where they stand, and what to change."""

from __future__ import annotations

import argparse
import json

from voicecoach.cli.config import add_config_argument, add_override_arguments, load_from_args
from voicecoach.cli.listen import off_canceller
from voicecoach.cli.player import play_phrase
from voicecoach.config import ConfigError
from voicecoach.engine.language import PackError, read_pack, texts
from voicecoach.listen import RATE
from voicecoach.listen.audio_check import measure
from voicecoach.listen.report import EchoReport, Verdict
from voicecoach.sound import audio
from voicecoach.sound.mixer import Mixer
from voicecoach.sound.speech import configured_cache

CHECK_KEYS = ("test", *(str(v) for v in Verdict))


def register(sub: argparse._SubParsersAction) -> None:
    check = sub.add_parser("check", help="check the room: how the microphone hears the speaker")
    what = check.add_subparsers(dest="check_command", required=True, parser_class=type(check))
    audio_check = what.add_parser(
        "audio", help="play a test phrase (about 20 s), measure its echo, and say whether commands will be heard"
    )
    audio_check.set_defaults(func=cmd_audio)
    add_config_argument(audio_check)
    add_override_arguments(audio_check, ("language", "speech.pack", "audio.input_device", "audio.output_device"))
    audio_check.add_argument("--json", action="store_true", help="print the figures as one JSON object")


def cmd_audio(args: argparse.Namespace) -> int:
    cfg = load_from_args(args)
    try:
        pack = read_pack(cfg.language, cfg.speech.pack)
        spoken = texts(pack, "check", CHECK_KEYS)
        printed = texts(read_pack("en"), "check", CHECK_KEYS)
    except PackError as exc:
        raise ConfigError(f"speech.pack: {exc}") from None
    speaker = audio.resolve_output(cfg.audio.output_device)
    microphone = audio.resolve_device(cfg.audio.input_device, "input")
    clips = configured_cache(cfg, str(pack.data.get("voice", "")), speaker.default_rate)
    # Every phrase is rendered first, so that nothing waits for speech synthesis while the microphone listens.
    for key in CHECK_KEYS:
        clips.clip(spoken[key])
    if not args.json:
        print(f"listening on {microphone.name}, playing on {speaker.name}: stay quiet for about 20 seconds")
    mixer = Mixer(clips.sample_rate, cfg.audio.volume)
    moved: list[str | None] = []
    result = measure(
        clips.clip(spoken["test"]),
        mixer,
        lambda m: audio.OutputStream(speaker, m),
        lambda on_block: audio.InputStream(microphone, RATE, on_block, lambda: moved.append(off_canceller())),
    )
    if args.json:
        # Where the sound server's echo canceller was the microphone: the one behind it, which was measured.
        print(json.dumps({**result.as_json(), "behind_canceller": next(filter(None, moved), None)}))
    else:
        print(describe(result))
        print("\n".join(printed[str(v)] for v in result.verdicts))
    verdict = " ".join(spoken[str(v)] for v in result.verdicts)
    play_phrase(verdict, clips, lambda m: audio.OutputStream(speaker, m), cfg.audio.volume)
    return 0


def describe(result: EchoReport) -> str:
    """The figures as a short table for the terminal."""

    def shown(value: float | None, unit: str) -> str:
        return "not measured" if value is None else f"{value:.0f} {unit}"

    rows = (
        ("echo delay", shown(result.delay_ms, "ms"), "beyond what the audio clocks account for"),
        ("echo level", shown(result.echo_db, "dB"), "against what was played"),
        ("clock drift", shown(result.drift_ppm, "ppm"), "between the speaker and the microphone"),
        ("room noise", shown(result.noise_floor_db, "dBFS"), "while nothing played"),
        ("echo removed", shown(result.removed_db, "dB"), "by the echo canceller"),
        (
            "echo follows",
            shown(None if result.coherence is None else result.coherence * 100, "%"),
            "of what was heard follows what was played",
        ),
    )
    return "\n".join(f"{name:<14}{value:>14}  {what}" for name, value, what in rows)
