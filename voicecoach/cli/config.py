"""`voicecoach config check|show`, and the --config and override flags that `voicecoach run` shares."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from voicecoach import config, paths, voices
from voicecoach.training.progression import Shortfall, shortfalls

HELP = {
    "language": "language: sv or en",
    "speech.pack": "a language pack TOML file to speak (and listen for) instead of the built-in one",
    "listen.model": "vosk model directory",
    "listen.commands": "language pack TOML whose commands are understood",
    "audio.input_device": "microphone name or index (see 'voicecoach devices')",
    "audio.output_device": "speaker name or index (see 'voicecoach devices')",
}


def add_config_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config",
        type=Path,
        metavar="FILE",
        help=f"read this TOML file last, after {config.SYSTEM_FILE} and ~/.config/voicecoach/config.toml",
    )


def add_override_arguments(parser: argparse.ArgumentParser, keys: tuple[str, ...] | None = None) -> None:
    """The flags that override single keys of the configuration (config.FLAGS; only those of keys, if given)."""
    for key, flag in config.FLAGS.items():
        if keys is not None and key not in keys:
            continue
        parser.add_argument(flag, dest=_dest(key), metavar=flag.removeprefix("--").upper(), help=HELP[key])


def _dest(key: str) -> str:
    return "override_" + key.replace(".", "_")


def load_from_args(args: argparse.Namespace) -> config.Config:
    """The configuration for a command that took add_config_argument and maybe add_override_arguments."""
    overrides = {key: getattr(args, _dest(key), None) for key in config.FLAGS}
    return config.load(args.config, overrides)


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("config", help="check or show the configuration")
    commands = parser.add_subparsers(dest="config_command", required=True, parser_class=type(parser))
    check = commands.add_parser("check", help="validate the configuration files without starting anything")
    check.set_defaults(func=cmd_check)
    add_config_argument(check)
    show = commands.add_parser("show", help="print the effective configuration and where each value came from")
    show.set_defaults(func=cmd_show)
    add_config_argument(show)


def cmd_check(args: argparse.Namespace) -> int:
    cfg = load_from_args(args)
    print(f"ok: {', '.join(cfg.files) if cfg.files else 'no configuration file, only defaults'}")
    for shortfall in shortfalls(cfg.programme, cfg.rules):
        print(f"voicecoach: warning: {_shortfall_text(cfg, shortfall)}", file=sys.stderr)
    voice = voices.configured(cfg.speech.engine, cfg.speech.voice)
    voices_dir = paths.voices_dir(cfg.state_dir)
    # A warning, not an error: the daemon starts all the same and speaks with espeak-ng until the voice is there.
    if voice is not None and not _installed(voices_dir, voice):
        print(f"voicecoach: warning: {missing_voice_text(voice, voices_dir)}", file=sys.stderr)
    return 0


def _installed(voices_dir: Path, voice: str) -> bool:
    try:
        return voices.is_voice(voices_dir, voice)
    except OSError:
        return True  # this user cannot look into the state directory: nothing to warn of that we know


def missing_voice_text(name: str, voices_dir: Path) -> str:
    """Why the configured Piper voice is not heard, and how to install it."""
    command = voices.fetch_command(name)
    fix = (
        f"fetch it with: voicecoach {command}"
        if command
        else f"put {name}.onnx and {name}.onnx.json in {voices_dir / name}"
    )
    return f"the configured voice {name} is not installed in {voices_dir}, so the coach speaks with espeak-ng; {fix}"


def _setting(cfg: config.Config, key: str) -> str:
    """A key as set, and where: "programme.strength.reps = 8 (--config FILE)"."""
    origin = cfg.origins[key]
    where = "the default" if origin == config.DEFAULT else origin
    return f"{key} = {config.toml_value(cfg.values[key])} ({where})"


def _shortfall_text(cfg: config.Config, s: Shortfall) -> str:
    """Why a configured set never counts towards the next step, and what to change."""
    name = "hold" if s.field == "hold_s" else s.field
    setting = _setting(cfg, f"programme.{s.exercise}.{name}")
    if s.following is None:
        return (
            f"{setting} is fewer than the {s.needed} complete repetitions the endurance hold waits for before it"
            f" rises, so it never rises: make it {s.needed} or more"
        )
    if s.field == "hold_s":
        return (
            f"{setting} is shorter than the {s.needed} s a set must hold to count towards moving on to"
            f" {s.following}, so such a set never counts: make it {s.needed} or more"
        )
    rule = f"the {s.needed} in a row of {_setting(cfg, 'progression.in_a_row')}"
    if not cfg.rules.in_a_row:
        rule = f"the guide's {s.needed} in a row"
    return (
        f"{setting} is fewer than {rule} that moving on to {s.following} waits for,"
        f" so such a set never counts: make it {s.needed} or more, or set progression.in_a_row to {s.configured}"
        " or less"
    )


def cmd_show(args: argparse.Namespace) -> int:
    cfg = load_from_args(args)
    # Printed as TOML with dotted keys, so the output can be pasted back into a configuration file.
    print(f"# files read: {', '.join(cfg.files) if cfg.files else 'none'}")
    lines = [(f"{key} = {config.toml_value(value)}", cfg.origins[key]) for key, value in cfg.values.items()]
    piper = voices.configured(cfg.speech.engine, cfg.speech.voice)
    if piper is not None and not cfg.speech.voice:
        # An empty voice means another voice for each engine: say which one speaks.
        lines = [(text, f"{origin}: {piper}" if text.startswith("speech.voice ") else origin) for text, origin in lines]
    width = max(len(text) for text, _origin in lines)
    for text, origin in lines:
        print(f"{text:<{width}}  # {origin}")
    return 0
