"""`voicecoach voice fetch|list|render`: install the Piper voices voicecoach knows, show what is installed, and render
the programme in the configured voice."""

from __future__ import annotations

import argparse
import sys

from voicecoach import download, paths, voices
from voicecoach.cli import config as cli_config
from voicecoach.cli.model import add_fetch_and_list, fetch_unless_there
from voicecoach.coach import phrases_to_render
from voicecoach.config import Config
from voicecoach.engine.language import load_pack
from voicecoach.engine.programme import EXERCISES
from voicecoach.errors import UsageError
from voicecoach.sound.clips import SpeechError
from voicecoach.sound.speech import configured_cache
from voicecoach.training.progress_texts import load_phrases, to_render

# The clips are kept on disk at the voice's own rate; this is only the rate they are held at in this process.
RENDER_RATE = 22050


def register(sub: argparse._SubParsersAction) -> None:
    fetch, actions = add_fetch_and_list(
        sub,
        "voice",
        "Piper voices",
        languages=voices.LANGUAGES,
        handlers=(cmd_fetch, cmd_list),
        fetch_help="download and install a Piper voice",
        url_help="a mirror: a directory URL holding the same file names",
        list_help="show installed voices, their language, sample rate and size, and the configured one",
    )
    fetch.add_argument(
        "--voice",
        choices=sorted(voices.CATALOGUE),
        default=voices.DEFAULT_VOICE,
        help=f"which voice (default {voices.DEFAULT_VOICE})",
    )
    render = actions.add_parser(
        "render",
        help="render every phrase of the programme in the configured voice and rate (after changing [speech])",
    )
    render.set_defaults(func=cmd_render)
    cli_config.add_config_argument(render)
    actions.metavar = "{fetch,list,render}"


def cmd_fetch(args: argparse.Namespace) -> int:
    spec = voices.CATALOGUE[args.voice]
    if spec.lang != args.lang:
        raise UsageError(f"{spec.name} speaks {spec.lang}, not {args.lang}; leave out the language or --voice")
    cfg = cli_config.load_from_args(args)
    voices_dir = args.dir or paths.voices_dir(cfg.state_dir)
    there = voices.is_voice(voices_dir, spec.name)
    fetch_unless_there(spec.name, voices_dir, there, lambda: voices.fetch(spec, voices_dir, args.url, sys.stderr))
    if voices.configured(cfg.speech.engine, cfg.speech.voice) != spec.name:
        print(f'to speak with it, set [speech] engine = "piper" and voice = "{spec.name}" (voicecoach config show)')
    elif args.dir is None:
        render_ahead(cfg)
    return 0


def cmd_render(args: argparse.Namespace) -> int:
    cfg = cli_config.load_from_args(args)
    chosen = voices.configured(cfg.speech.engine, cfg.speech.voice)
    voices_dir = paths.voices_dir(cfg.state_dir)
    if chosen is not None and not voices.is_voice(voices_dir, chosen):
        # Rendering the stand-in would be work thrown away once the voice is there.
        raise SpeechError(cli_config.missing_voice_text(chosen, voices_dir))
    render_ahead(cfg)
    return 0


def render_ahead(cfg: Config) -> None:
    """Render every phrase of the programme in the configured voice into the clip cache, with a progress bar: with a
    Piper voice on a Pi that takes a minute or so, which the daemon then does not spend at its next start."""
    pack = load_pack(cfg.language, cfg.speech.pack)
    clips = configured_cache(cfg, pack.voice, RENDER_RATE)
    if clips.fallback is not None:
        raise SpeechError(clips.fallback)
    exercises = [cfg.exercise(e.key) for e in EXERCISES]
    texts = phrases_to_render(exercises, pack, to_render(load_phrases(cfg.language, cfg.speech.pack)), clips.duration)
    progress = download.Progress(sys.stderr, unit="phrases")
    voice = voices.configured(cfg.speech.engine, cfg.speech.voice) or f"espeak-ng's {cfg.speech.voice or pack.voice}"
    progress.note(f"rendering the programme's {len(texts)} phrases in {voice}")
    for n, text in enumerate(texts, 1):
        clips.keep(text)
        progress.update(n, len(texts))
    progress.close()
    print(f"rendered {len(texts)} phrases into {clips.directory}")


def cmd_list(args: argparse.Namespace) -> int:
    cfg = cli_config.load_from_args(args)
    voices_dir = args.dir or paths.voices_dir(cfg.state_dir)
    chosen = voices.configured(cfg.speech.engine, cfg.speech.voice)
    found = voices.installed(voices_dir)
    if not found:
        print(f"no voices in {voices_dir}; install one with 'voicecoach voice fetch sv'", file=sys.stderr)
    else:
        width = max(len(v.name) for v in found)
        print(f"{'VOICE':<{width}}  LANGUAGE  RATE      SIZE        CONFIGURED")
        for v in found:
            rate = f"{v.sample_rate} Hz" if v.sample_rate else "-"
            mark = "yes" if v.name == chosen else ""
            print(f"{v.name:<{width}}  {v.lang:<8}  {rate:<8}  {download.mib(v.size):<10}  {mark}".rstrip())
            if v.problem:
                print(f"voicecoach: warning: {v.path} is not a usable voice: {v.problem}", file=sys.stderr)
    if chosen is not None and chosen not in {v.name for v in found if v.problem is None}:
        print(f"voicecoach: warning: {cli_config.missing_voice_text(chosen, voices_dir)}", file=sys.stderr)
    return 0
