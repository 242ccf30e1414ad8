"""The journal's subcommands: `history` and `progress`. Wiring and formatting only; the rules live in progression."""

from __future__ import annotations

import argparse
import csv
import json
import os
import sys
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import asdict
from datetime import date, datetime, time, tzinfo
from pathlib import Path

from voicecoach import paths
from voicecoach.cli import config as cli_config
from voicecoach.engine.programme import ProgrammeError, find_exercise
from voicecoach.errors import UsageError, UserError
from voicecoach.training import diary
from voicecoach.training.clock import local_now, local_zone
from voicecoach.training.diary import DiaryKind
from voicecoach.training.journal import FILE_MODE, Event, Journal, SessionRecord
from voicecoach.training.progression import (
    EventKind,
    Progress,
    Rules,
    SuggestionKind,
    TrainingPhase,
    accepted,
    in_a_row,
    progress,
)

CSV_FIELDS = (
    "started",
    "ended",
    "exercise",
    "reps_done",
    "planned_reps",
    "hold_s",
    "rest_s",
    "holds",
    "outcome",
)


def register(sub: argparse._SubParsersAction) -> None:
    history = sub.add_parser("history", help="one row per session from the training journal")
    history.set_defaults(func=cmd_history)
    add_listing_arguments(history, "session", "sessions")

    prog = sub.add_parser("progress", help="current exercise, endurance hold, phase, and what is due today")
    prog.set_defaults(func=cmd_progress)
    prog.add_argument("--json", action="store_true", help="print the progress as one JSON object")
    prog.add_argument("--accept", action="store_true", help="accept the suggested next step (like a spoken 'ja')")
    # The configuration's state_dir says where the journal is; its [progression] rules when a step is suggested.
    cli_config.add_config_argument(prog)


def add_listing_arguments(parser: argparse.ArgumentParser, one: str, many: str) -> None:
    """--since, --json or --export, and --config, for a command that lists what the journal holds."""
    parser.add_argument("--since", type=iso_date, metavar="DATE", help=f"only {many} on or after DATE (YYYY-MM-DD)")
    output = parser.add_mutually_exclusive_group()
    output.add_argument("--json", action="store_true", help=f"print one JSON object per {one}")
    output.add_argument("--export", nargs=2, metavar=("csv", "FILE"), help=f"write the {many} to FILE as CSV")
    # The configuration's state_dir says where the journal is.
    cli_config.add_config_argument(parser)


def iso_date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date: use YYYY-MM-DD, e.g. 2024-05-01") from None


def _local(when: datetime | None, zone: tzinfo) -> str | None:
    return None if when is None else when.astimezone(zone).isoformat(timespec="seconds")


def _holds(s: SessionRecord) -> list[float]:
    return [round(r.hold_s, 1) for r in s.reps]


def _row(s: SessionRecord, zone: tzinfo) -> dict[str, object]:
    return {
        "started": _local(s.started_at, zone),
        "ended": _local(s.ended_at, zone),
        "exercise": s.exercise,
        "reps_done": s.reps_done,
        "planned_reps": s.planned_reps,
        "hold_s": s.hold_s,
        "rest_s": s.rest_s,
        "holds": _holds(s),
        # A session without an outcome is running right now in another process.
        "outcome": str(s.outcome) if s.outcome else "in progress",
    }


def cmd_history(args: argparse.Namespace) -> int:
    zone = local_zone()
    since = datetime.combine(args.since, time(), zone) if args.since else None
    state = cli_config.load_from_args(args).state_dir
    with Journal.open_to_read(paths.journal_path(state)) as journal:
        sessions = journal.sessions(since=since)
        kept = [e for e in diary.entries(journal.events()) if since is None or e.at >= since]
    if args.export:
        return _export(args.export, sessions, zone)
    if args.json:
        for s in sessions:
            print(json.dumps(_row(s, zone), ensure_ascii=False))
        return 0
    if not sessions and not kept:
        print(f"no sessions since {args.since}" if args.since else "no sessions in the journal yet")
        return 0
    _table(sessions, diary.per_day(kept, zone), zone)
    return 0


def _table(sessions: list[SessionRecord], days: dict[date, Counter[DiaryKind]], zone: tzinfo) -> None:
    """A row a session; where the diary has entries, that day's leaks and pad changes beside its first session (or
    on a row of their own, on a day without one)."""
    width = max([len("exercise"), *(len(_name(s.exercise)) for s in sessions)])
    # (when, how it is shown, the rest of the row)
    rows: list[tuple[datetime, str, str]] = []
    for s in sessions:
        started = s.started_at.astimezone(zone)
        outcome = str(s.outcome).replace("_", " ") if s.outcome else "in progress"
        reps = f"{s.reps_done}/{s.planned_reps}"
        rest = f"{_name(s.exercise):{width}}  {reps:5}  {s.hold_s:>3} s  {outcome:11}"
        rows.append((started, f"{started:%Y-%m-%d %H:%M}", rest))
    trained = {when.date() for when, _, _ in rows}
    for day in days.keys() - trained:
        rows.append((datetime.combine(day, time(), zone), f"{day:%Y-%m-%d}", f"{'-':{width}}  {'':5}  {'':5}  {'':11}"))
    header = f"{'date':16}  {'exercise':{width}}  {'reps':5}  {'hold':>5}  {'outcome':11}"
    print(f"{header}  leaks  pads" if days else header.rstrip())
    shown: set[date] = set()
    for when, shown_as, rest in sorted(rows, key=lambda row: row[0]):
        line = f"{shown_as:16}  {rest}"
        if when.date() in days and when.date() not in shown:
            shown.add(when.date())
            counts = days[when.date()]
            line += f"  {counts[DiaryKind.LEAK]:>5}  {counts[DiaryKind.PAD]:>4}"
        print(line.rstrip())


def _export(spec: list[str], sessions: list[SessionRecord], zone: tzinfo) -> int:
    rows = [{**_row(s, zone), "holds": " ".join(str(h) for h in _holds(s))} for s in sessions]
    path = write_csv(spec, CSV_FIELDS, rows)
    print(f"wrote {len(sessions)} sessions to {path}", file=sys.stderr)
    return 0


def write_csv(spec: list[str], fields: tuple[str, ...], rows: Sequence[Mapping[str, object]]) -> Path:
    """`--export csv FILE`: rows written to FILE, private to its owner (health data, like the journal); the path."""
    kind, target = spec
    if kind != "csv":
        raise UsageError(f"cannot export as {kind!r}: the format is csv, e.g. --export csv history.csv")
    path = Path(target)
    try:
        with open(path, "w", newline="", encoding="utf-8", opener=lambda p, f: os.open(p, f, FILE_MODE)) as out:
            writer = csv.DictWriter(out, fieldnames=fields)
            writer.writeheader()
            writer.writerows(rows)
    except OSError as exc:
        raise UsageError(f"cannot write {path}: {exc.strerror}; choose a writable path for --export") from None
    return path


def _name(key: str) -> str:
    try:
        exercise = find_exercise(key)
    except ProgrammeError:
        # A key this version does not know (a newer voicecoach wrote it) is still worth showing.
        return key
    return f"{exercise.key} ({exercise.swedish_key})"


def _accepted(event: Event) -> str:
    if event.kind == EventKind.ADVANCED:
        return f"accepted: now learning {_name(event.value)}"
    return "accepted: the maintenance phase starts now"


def _next_step(p: Progress, rules: Rules) -> str:
    if p.suggestion is not None:
        return "waiting for your yes: run 'voicecoach progress --accept'"
    if p.phase is TrainingPhase.MAINTENANCE:
        return "keep up the maintenance sessions"
    if p.next_exercise is not None:
        needed = in_a_row(find_exercise(p.exercise), rules)
        return (
            f"{_name(p.next_exercise)} after {p.days_to_move_on} days with {needed} in a row"
            f" and no 'orkar inte' ({p.confident_days} so far)"
        )
    if p.maintenance_from is not None:
        return f"maintenance from {p.maintenance_from} if the training stays regular"
    return "maintenance once the training has been regular for a while"


def _report(p: Progress, rules: Rules) -> list[str]:
    nxt, hold, summ = p.next_session, p.endurance, p.summary
    at_most = f"-{nxt.wanted[1]}" if nxt.wanted[1] is not None else "+"
    period = "today" if nxt.period == "day" else "in the last 7 days"
    due = f"{nxt.due_today} more today" if nxt.due_today else "nothing more today"
    longest = f"{summ.longest_hold_s} s" if summ.longest_hold_s is not None else "none yet"
    lines = [
        f"phase:         {p.phase}",
        f"exercise:      {_name(p.exercise)}, {summ.exercise_number} of {summ.exercises_total}",
        f"next step:     {_next_step(p, rules)}",
        f"endurance:     hold {hold.hold_s} s (goal {hold.goal_s} s),"
        f" {hold.complete_at_hold} of {hold.sessions_per_step} complete sessions at this hold",
        f"due today:     {_name(nxt.exercise)}, {nxt.reps} x {nxt.hold_s} s: {due}"
        f" ({nxt.done} of {nxt.wanted[0]}{at_most} done {period})",
        f"this week:     {summ.days_this_week} days trained, streak {summ.streak_days} days, longest hold {longest}",
    ]
    if p.suggestion is not None:
        step = "maintenance phase" if p.suggestion.kind is SuggestionKind.MAINTENANCE else "move on to "
        lines.append(f"suggestion:    {step}{_name(p.suggestion.exercise) if p.suggestion.exercise else ''}")
    if p.symptom_check_due:
        every = rules.symptom_check_every_months
        often = "once a month" if every == 1 else f"every {every} months"
        lines.append(f"symptom check: due - have the symptoms improved? (asked at most {often})")
    return lines


def cmd_progress(args: argparse.Namespace) -> int:
    cfg = cli_config.load_from_args(args)
    rules = cfg.rules
    now = local_now()
    # Accepting writes an event; reading alone works in a read-only state directory too.
    with (Journal.open if args.accept else Journal.open_to_read)(paths.journal_path(cfg.state_dir)) as journal:
        current = progress(journal.sessions(), journal.events(), now, rules, cfg.exercise)
        if args.accept:
            if current.suggestion is None:
                raise UserError(f"there is no step to accept yet: next step is {_next_step(current, rules)}")
            event = accepted(current.suggestion, now)
            journal.record_event(event.kind, event.value, event.at)
            if not args.json:
                print(_accepted(event))
            current = progress(journal.sessions(), journal.events(), now, rules, cfg.exercise)
    if args.json:
        print(json.dumps(asdict(current), default=str, ensure_ascii=False))
    else:
        print("\n".join(_report(current, rules)))
    return 0
