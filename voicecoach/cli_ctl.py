"""`voicecoach ctl`: drive the running daemon through its control socket, without audio."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from voicecoach import control
from voicecoach.errors import UsageError

# The coach's session intents as subcommands (how_many_left is typed how-many-left).
SESSION_HELP = {
    "pause": "pause the running set",
    "resume": "go on after a pause",
    "stop": "stop the running set, or between sets what is still to be said",
    "next": "skip the rest of this exercise and go on to the next",
    "repeat": "say the instructions again and redo this repetition",
    "how_many_left": "say how many repetitions are left",
    "cant": "end the set kindly: this repetition could not be finished",
}
IDLE_HELP = {
    "start_next": "start the exercise due next (like 'starta träning')",
    "progress": "say how the training is going (like 'hur går det')",
    "yes": "answer yes to the coach's question",
    "no": "answer no to the coach's question",
}


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("ctl", help="control the running daemon (status, start, pause, resume, stop, say, ...)")
    parser.add_argument("--socket", type=Path, metavar="PATH", help="the daemon's control socket (found if omitted)")
    commands = parser.add_subparsers(dest="command_name", required=True, parser_class=type(parser))
    status = commands.add_parser("status", help="what the daemon is doing")
    status.set_defaults(intent="status")
    status.add_argument("--json", action="store_true", help="print the status as one JSON object")
    start = commands.add_parser("start", help="start a set of an exercise")
    start.set_defaults(intent="start")
    start.add_argument("exercise", help="e.g. strength or styrka")
    say = commands.add_parser("say", help="speak a phrase")
    say.set_defaults(intent="say")
    say.add_argument("text", nargs="+")
    for name, text in (SESSION_HELP | IDLE_HELP).items():
        commands.add_parser(name.replace("_", "-"), help=text).set_defaults(intent=name)
    snooze = commands.add_parser("snooze", help="remind me in MINUTES (like 'påminn mig om trettio minuter')")
    snooze.set_defaults(intent="snooze")
    snooze.add_argument("minutes", type=int)
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
    if args.intent == "start":
        request["exercise"] = args.exercise
    elif args.intent == "say":
        request["text"] = spoken_text(args.text)
    elif args.intent == "snooze":
        request["minutes"] = args.minutes
    try:
        # The daemon checks again; checking here too names a typo before looking for the daemon.
        intent = control.parse_intent(request)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    reply = control.request(intent, args.socket)
    if intent.name == "status":
        status = control.DaemonStatus.from_reply(reply)
        print(json.dumps(status.as_json(), ensure_ascii=False) if args.json else status.describe())
    elif reply.get("message"):
        print(reply["message"])
    return 0
