"""The command line: argument parsing and wiring only. User errors end in one line on stderr, never a traceback."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from voicecoach import config, paths
from voicecoach.cli import check as cli_check
from voicecoach.cli import config as cli_config
from voicecoach.cli import ctl as cli_ctl
from voicecoach.cli import diary as cli_diary
from voicecoach.cli import install_service as cli_service
from voicecoach.cli import journal as cli_journal
from voicecoach.cli import listen as cli_listen
from voicecoach.cli import model as cli_model
from voicecoach.cli import run as cli_daemon
from voicecoach.cli import voice as cli_voice
from voicecoach.cli.ctl import spoken_text
from voicecoach.cli.player import Listening, play_phrase, render, run_live
from voicecoach.daemon.loudness import Loudness
from voicecoach.engine.language import LANGUAGES, Pack, PackError, load_pack
from voicecoach.engine.programme import EXERCISES, Exercise, with_overrides
from voicecoach.engine.session import Session
from voicecoach.engine.timeline import Cue
from voicecoach.errors import UsageError, UserError
from voicecoach.listen import RATE as LISTEN_RATE
from voicecoach.listen import Detection
from voicecoach.listen.voice import Voice, open_voice
from voicecoach.sound import audio, counts
from voicecoach.sound.clips import ClipCache, write_wav
from voicecoach.sound.mixer import Mixer
from voicecoach.sound.speech import configured_cache
from voicecoach.training.clock import local_now
from voicecoach.training.journal import Journal, JournalUnavailable
from voicecoach.training.journal_queue import QueuedJournal
from voicecoach.training.progress_texts import journal_off_text, load_phrases
from voicecoach.training.progression import next_exercise

# Clips are rendered by espeak-ng at this rate; an offline render keeps it.
RENDER_RATE = 22050
NEXT_NAMES = ("next", "nästa")
# After a heard command the set had no use for (resume while it runs), in the session's output.
NOTHING_NOW = " (means nothing now)"
# The options of `session` that only voice control uses, and where argparse keeps them.
_VOICE_FLAGS = {"--model": "model", "--commands": "commands", "--input-device": "input_device", "--explain": "explain"}
# The modules that add subcommands: each has register(subparsers), setting func= on its parsers.
EXTENSIONS = (
    cli_model,
    cli_voice,
    cli_journal,
    cli_diary,
    cli_config,
    cli_ctl,
    cli_listen,
    cli_daemon,
    cli_service,
    cli_check,
)


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(f"{message} (see '{self.prog} --help')")


def _seconds(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="voicecoach", description="Hands-free pelvic-floor training coach.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    names = ", ".join(f"{e.key}/{e.swedish_key}" for e in EXERCISES)
    session = sub.add_parser("session", help="play a narrated set in real time")
    session.set_defaults(func=cmd_session)
    session.add_argument("exercise", help=f"one of {names}, or next (nästa) for the one due")
    session.add_argument("--lang", choices=LANGUAGES, help="language (default: the configuration's, else sv)")
    session.add_argument("--pack", type=Path, metavar="PACK.toml", help="speak this language pack file, not --lang's")
    session.add_argument("--reps", type=_seconds, help="repetitions in the set")
    session.add_argument("--hold", type=_seconds, help="seconds to hold each squeeze")
    session.add_argument("--rest", type=_seconds, help="seconds to rest between squeezes")
    session.add_argument("--device", help="output device name or index (see 'voicecoach devices')")
    # For what the configuration decides here: the state directory, the language, [speech], the programme, the
    # progression's rules (next) and voice (--listen).
    cli_config.add_config_argument(session)
    mode = session.add_mutually_exclusive_group()
    mode.add_argument("--timeline", action="store_true", help="print the planned cues as JSON lines and exit")
    mode.add_argument("--render", type=Path, metavar="FILE.wav", help="render the set to a WAV file and exit")
    mode.add_argument("--listen", action="store_true", help="take spoken commands from the microphone too")
    voice = session.add_argument_group("with --listen")
    voice.add_argument("--model", type=Path, metavar="DIR", help="vosk model directory (default: installed for --lang)")
    voice.add_argument("--commands", type=Path, metavar="PACK.toml", help="a pack file's [[commands]], not --lang's")
    voice.add_argument("--input-device", metavar="DEVICE", help="microphone name or index (see 'voicecoach devices')")
    voice.add_argument(
        "--explain",
        action="store_const",
        const=True,
        help="also print each command heard but not acted on, and why (the coach's own voice, its echo), and what "
        "else was heard in a set",
    )

    sub.add_parser("devices", help="list audio devices").set_defaults(func=cmd_devices)

    say = sub.add_parser("say", help="speak one phrase")
    say.set_defaults(func=cmd_say)
    say.add_argument("text", nargs="+")
    say.add_argument("--lang", choices=LANGUAGES, help="language (default: the configuration's, else sv)")
    say.add_argument("--device")
    cli_config.add_config_argument(say)
    for extension in EXTENSIONS:
        extension.register(sub)
    return parser


def _clips(cfg: config.Config, pack: Pack, sample_rate: int) -> ClipCache:
    # The daemon's cache: a phrase rendered here is one it need not render, and the other way round.
    return configured_cache(cfg, pack.voice, sample_rate)


def _print_line(t: float, text: str) -> None:
    print(f"{t:7.2f}  {text}", flush=True)


def _print_cue(cue: Cue) -> None:
    _print_line(cue.t, cue.label())


def _print_heard(t: float, detection: Detection, accepted: bool) -> None:
    _print_line(t, f"heard: {detection.phrase}" + ("" if accepted else NOTHING_NOW))


def _open_journal(cfg: config.Config) -> Journal | None:
    """The training journal, or None (with a warning) when it cannot be used: the set is played anyway. Its writes
    never wait for another process's lock, which would hold up the set's loop."""
    try:
        return QueuedJournal.open(paths.journal_path(cfg.state_dir))
    except JournalUnavailable as exc:
        print(f"voicecoach: warning: {exc}", file=sys.stderr)
        return None


def _exercise(args: argparse.Namespace, cfg: config.Config, journal: Journal | None) -> Exercise:
    """The exercise asked for, with the configuration's programme and rules, under the command line's numbers."""
    if args.exercise.strip().lower() in NEXT_NAMES:
        now = local_now()
        sessions, events = (journal.sessions(), journal.events()) if journal else ([], [])
        base = next_exercise(sessions, events, now, cfg.rules, cfg.exercise)
    else:
        base = cfg.exercise(args.exercise)
    return with_overrides(base, hold_s=args.hold, rest_s=args.rest, reps=args.reps)


def cmd_session(args: argparse.Namespace) -> int:
    given = [flag for flag, value in _VOICE_FLAGS.items() if getattr(args, value) is not None]
    if given and not args.listen:
        names = " and ".join(given)
        raise UsageError(f"{names} {'needs' if len(given) == 1 else 'need'} --listen: add it, or leave {names} out")
    live = args.render is None and not args.timeline
    # Read once: the state directory, the programme and rules for every set, and under --listen its flags over
    # [listen] and the microphone.
    overrides = {
        "language": args.lang,
        "speech.pack": str(args.pack) if args.pack else None,
        "listen.model": str(args.model) if args.model else None,
        "listen.commands": str(args.commands) if args.commands else None,
        "audio.input_device": args.input_device,
    }
    cfg = config.load(args.config, overrides)
    if args.explain:
        # The listener says what it ignores, and why, at INFO: the daemon's journal has it too. What it decoded as
        # no command is at DEBUG, for this flag only: in open vocabulary that is what was said in the room.
        logging.getLogger("voicecoach.listen").setLevel(logging.DEBUG)
    journal = _open_journal(cfg) if live or args.exercise.strip().lower() in NEXT_NAMES else None
    try:
        return _session(args, cfg, journal, live)
    finally:
        if journal is not None:
            journal.close()


def _session(args: argparse.Namespace, cfg: config.Config, journal: Journal | None, live: bool) -> int:
    exercise = _exercise(args, cfg, journal)
    pack = _narration(cfg)
    if args.render is not None:
        _check_writable(args.render)
        clips = _clips(cfg, pack, RENDER_RATE)
        samples = render(Session(exercise, pack, clips.duration), clips)
        try:
            write_wav(args.render, samples, RENDER_RATE)
        except OSError as exc:
            raise UsageError(f"cannot write {args.render}: {exc.strerror}; choose a writable path") from None
        print(f"wrote {args.render} ({samples.size / RENDER_RATE:.1f} s)", file=sys.stderr)
        return 0
    if args.timeline:
        clips = _clips(cfg, pack, RENDER_RATE)
        for cue in Session(exercise, pack, clips.duration).start(0.0).cues:
            print(json.dumps(cue.as_json(), ensure_ascii=False))
        return 0
    device = audio.resolve_output(args.device)
    listening = _listening(cfg) if args.listen else None
    clips = _clips(cfg, pack, device.default_rate)
    # [audio] volume, brought down by her level (`ctl volume`, "högre"/"lägre"), as the daemon plays.
    loudness = Loudness(cfg.state_dir, cfg.audio, cfg.reminders)
    outcome = run_live(
        exercise,
        pack,
        clips,
        lambda mixer: audio.OutputStream(device, mixer),
        typed_packs=[pack, *(load_pack(code) for code in LANGUAGES)],
        exercises=cfg.exercise,
        journal=journal if live else None,
        journal_off_notice=None if journal else journal_off_text(load_phrases(cfg.language, cfg.speech.pack)),
        on_cue=_print_cue,
        gain=loudness.gain,
        listening=listening,
        loudness=loudness,
    )
    print(f"set {outcome}", file=sys.stderr)
    return 0


def _narration(cfg: config.Config) -> Pack:
    """The language pack the set is spoken in: the configuration's pack file, else the language's own, counting as
    she last asked ("tyst räkning"), or else as [speech] counts says."""
    try:
        pack = load_pack(cfg.language, cfg.speech.pack)
    except PackError as exc:
        raise config.ConfigError(f"speech.pack: {exc}") from None
    return replace(pack, ticks=counts.load(cfg.state_dir, cfg.speech.counts) == config.TICKS)


def _listening(cfg: config.Config) -> Listening:
    """Voice control as the daemon has it: the configuration's [listen] settings and microphone, under the flags.
    The microphone is looked for now, before seconds go on loading the model."""
    microphone = audio.resolve_device(cfg.audio.input_device, "input")

    def load(mixer: Mixer) -> Voice:
        voice = open_voice(cfg, mixer)
        print(f"listening on {microphone.name}: say or type a command", file=sys.stderr)
        return voice

    return Listening(
        open_voice=load,
        open_microphone=lambda on_block: audio.InputStream(microphone, LISTEN_RATE, on_block, cli_listen.off_canceller),
        on_heard=_print_heard,
    )


def _check_writable(path: Path) -> None:
    """Fail before rendering, not after, when the WAV cannot be written."""
    parent = path.parent if str(path.parent) else Path(".")
    if path.is_dir():
        problem = "it is a directory"
    elif not parent.is_dir():
        problem = f"the directory {parent} does not exist"
    elif not os.access(parent, os.W_OK):
        problem = f"the directory {parent} is not writable"
    else:
        return
    raise UsageError(f"cannot write {path}: {problem}; choose a writable path for --render")


def cmd_devices(_args: argparse.Namespace) -> int:
    devices = audio.list_devices()
    if not devices:
        # An empty list with exit 0 read as if the command had not run.
        raise audio.AudioError(
            "PortAudio found no audio device: connect a speaker and a microphone, or start the sound server "
            "(PulseAudio or PipeWire) of the user the coach runs as"
        )
    for d in devices:
        kinds = ", ".join(k for k, n in (("in", d.inputs), ("out", d.outputs)) if n)
        print(f"{d.index:3d}  {d.name}  ({kinds}, {d.default_rate} Hz)")
    return 0


def cmd_say(args: argparse.Namespace) -> int:
    text = spoken_text(args.text)
    cfg = config.load(args.config, {"language": args.lang})
    pack = _narration(cfg)
    device = audio.resolve_output(args.device)
    clips = _clips(cfg, pack, device.default_rate)
    play_phrase(text, clips, lambda mixer: audio.OutputStream(device, mixer))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(format="voicecoach: %(levelname)s: %(message)s", level=logging.WARNING)
    try:
        args = build_parser().parse_args(argv)
        return args.func(args)
    except UserError as exc:
        print(f"voicecoach: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # The reader went away (`voicecoach session styrka --timeline | head`): not an error of ours.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
