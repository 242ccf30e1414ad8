"""`voicecoach ctl`: drive the running daemon through its control socket, without audio."""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

from voicecoach.daemon import control
from voicecoach.errors import UsageError
from voicecoach.intents import Name, Slot

# The intents without slots as subcommands (how_many_left is typed how-many-left); start, say, snooze, volume and
# status take arguments and are added one by one.
HELP: dict[Name, str] = {
    Name.PAUSE: "pause the running set",
    Name.RESUME: "go on after a pause",
    Name.STOP: "stop the running set, or between sets what is still to be said",
    Name.NEXT: "skip the rest of this exercise and go on to the next",
    Name.REPEAT: "say the instructions again and redo this repetition",
    Name.HOW_MANY_LEFT: "say how many repetitions are left",
    Name.CANT: "end the set kindly: this repetition could not be finished",
    Name.START_NEXT: "start the exercise due next (like 'starta träning')",
    Name.PROGRESS: "say how the training is going (like 'hur går det')",
    Name.YES: "answer yes to the coach's question",
    Name.NO: "answer no to the coach's question",
    Name.LEAK: "record a leak in the diary",
    Name.PAD: "record a pad change in the diary",
    Name.UNDO: "take back the diary's last entry, within two minutes of it",
    Name.LOUDER: "turn the volume up a step, 3 dB (like 'högre')",
    Name.QUIETER: "turn the volume down a step, 3 dB (like 'lägre')",
    Name.COUNT_TICKS: "count the seconds of a hold with soft ticks from the next set on (like 'tyst räkning')",
    Name.COUNT_WORDS: "count the seconds of a hold aloud from the next set on (like 'räkna högt')",
}


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("ctl", help="control the running daemon (status, start, pause, resume, stop, say, ...)")
    parser.add_argument("--socket", type=Path, metavar="PATH", help="the daemon's control socket (found if omitted)")
    commands = parser.add_subparsers(dest="command_name", required=True, parser_class=type(parser))
    status = commands.add_parser("status", help="what the daemon is doing")
    status.set_defaults(intent=Name.STATUS)
    status.add_argument("--json", action="store_true", help="print the status as one JSON object")
    start = commands.add_parser("start", help="start a set of an exercise")
    start.set_defaults(intent=Name.START)
    start.add_argument("exercise", help="e.g. strength or styrka")
    say = commands.add_parser("say", help="speak a phrase")
    say.set_defaults(intent=Name.SAY)
    say.add_argument("text", nargs="+")
    for name, text in HELP.items():
        commands.add_parser(name.replace("_", "-"), help=text).set_defaults(intent=name)
    snooze = commands.add_parser("snooze", help="remind me in MINUTES (like 'påminn mig om trettio minuter')")
    snooze.set_defaults(intent=Name.SNOOZE)
    snooze.add_argument("minutes", type=int)
    level = commands.add_parser(
        "volume",
        help="tell or change the volume: +3 / -3 (dB louder / quieter), or a level from -30dB to 0dB",
        description="Without an argument, tell the volume. +N or -N changes it by N dB; a level such as -12dB sets "
        "it. 0 dB is [audio] volume, the loudest; the level is kept across restarts, a day's and a night's "
        "(the quiet hours) apart.",
    )
    level.set_defaults(intent=Name.VOLUME)
    level.add_argument("level", nargs="?", help="+3, -3, -12dB, ...")
    # argparse takes "-12dB" for an option it does not know; what it counts as a negative number is an argument.
    level._negative_number_matcher = re.compile(r"^-\d+(\.\d+)?\s*(db)?$", re.IGNORECASE)
    parser.set_defaults(func=cmd_ctl)


def spoken_text(words: list[str]) -> str:
    """The words of `say` as one text; bytes that are not UTF-8 (which Python keeps as lone surrogates) refused."""
    text = " ".join(words)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise UsageError(
            "the text is not UTF-8, so it cannot be spoken; set the terminal or the script to UTF-8 (e.g. LANG=C.UTF-8)"
        ) from None
    return text


def cmd_ctl(args: argparse.Namespace) -> int:
    request: dict[str, object] = {"intent": args.intent}
    if args.intent is Name.START:
        request[Slot.EXERCISE] = args.exercise
    elif args.intent is Name.SAY:
        request[Slot.TEXT] = spoken_text(args.text)
    elif args.intent is Name.SNOOZE:
        request[Slot.MINUTES] = args.minutes
    elif args.intent is Name.VOLUME and args.level is not None:
        request[Slot.LEVEL] = args.level
    try:
        # The daemon checks again; checking here too names a typo before looking for the daemon.
        intent = control.parse_intent(request)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    reply = control.request(intent, args.socket)
    if intent.name is Name.STATUS:
        status = control.DaemonStatus.from_reply(reply)
        print(json.dumps(status.as_json(), ensure_ascii=False) if args.json else status.describe())
    elif reply.get("message"):
        print(reply["message"])
    return 0
