"""`voicecoach diary`: the leaks and pad changes recorded (training/diary.py), from the training journal."""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from datetime import datetime, time

from voicecoach import paths
from voicecoach.cli import config as cli_config
from voicecoach.cli.journal import add_listing_arguments, write_csv
from voicecoach.training import diary
from voicecoach.training.clock import local_zone
from voicecoach.training.diary import DiaryKind
from voicecoach.training.journal import Journal

NAMES = {DiaryKind.LEAK: "leak", DiaryKind.PAD: "pad change"}
CSV_FIELDS = ("at", "entry")


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("diary", help="the leaks and pad changes recorded, from the training journal")
    parser.set_defaults(func=cmd_diary)
    add_listing_arguments(parser, "entry", "entries")


def cmd_diary(args: argparse.Namespace) -> int:
    zone = local_zone()
    state = cli_config.load_from_args(args).state_dir
    with Journal.open_to_read(paths.journal_path(state)) as journal:
        kept = diary.entries(journal.events())
    if args.since:
        since = datetime.combine(args.since, time(), zone)
        kept = [e for e in kept if e.at >= since]
    rows = [{"at": e.at.astimezone(zone).isoformat(timespec="seconds"), "entry": NAMES[e.kind]} for e in kept]
    if args.export:
        path = write_csv(args.export, CSV_FIELDS, rows)
        print(f"wrote {len(rows)} entries to {path}", file=sys.stderr)
        return 0
    if args.json:
        for row in rows:
            print(json.dumps(row, ensure_ascii=False))
        return 0
    if not kept:
        print(f"no diary entries since {args.since}" if args.since else "no diary entries in the journal yet")
        return 0
    for e in kept:
        print(f"{e.at.astimezone(zone):%Y-%m-%d %H:%M}  {NAMES[e.kind]}")
    counts = Counter(e.kind for e in kept)
    print(f"{plural(counts[DiaryKind.LEAK], 'leak')}, {plural(counts[DiaryKind.PAD], 'pad change')}")
    return 0


def plural(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"
