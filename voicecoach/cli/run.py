"""`voicecoach run`: the always-on coach, as the systemd service runs it."""

from __future__ import annotations

import argparse
import asyncio
import logging

from voicecoach.cli.config import add_config_argument, add_override_arguments, load_from_args
from voicecoach.daemon.notify import Notifier, log_handler


def register(sub: argparse._SubParsersAction) -> None:
    run = sub.add_parser("run", help="the always-on coach: listens, and plays sets when asked (the systemd service)")
    run.set_defaults(func=cmd_run)
    add_config_argument(run)
    add_override_arguments(run)


def cmd_run(args: argparse.Namespace) -> int:
    logging.basicConfig(handlers=[log_handler()], level=logging.INFO, force=True)
    # Imported here: the daemon loads vosk and the listener, which no other command should wait for.
    from voicecoach.daemon.run import Daemon

    cfg = load_from_args(args)
    return asyncio.run(Daemon(cfg, Notifier(), reload=lambda: load_from_args(args)).run())
