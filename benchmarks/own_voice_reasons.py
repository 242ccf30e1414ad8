"""Why the listener refused what it heard over the narration, counted over live runs' results.

    .venv/bin/python -m benchmarks.own_voice_reasons benchmarks/results/listening-live-*.json

Reads what `listening_live` kept of `--explain`'s lines, with their figures: those of the narration alone (every
detection is the coach's own voice), and those logged while she spoke (most are hers). Counts each by the rule
that refused it, or as accepted, per room. A rule that refuses her commands and none of the narration's is a rule
to question. Prints a table and writes benchmarks/results/own-voice-reasons.json.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from pathlib import Path

from benchmarks.results_file import write_results

ROOT = Path(__file__).resolve().parents[1]


def refused_by(line: str) -> str | None:
    """The rule an `--explain` "ignored" line names ("ignored '넘겨': it follows what the coach played (coherence
    0.12) [...]" is "it follows what the coach played"), or None for another line."""
    if not line.startswith("ignored "):
        return None
    return line.split("': ", 1)[-1].split(" (")[0].split(",")[0]


def reason(line: str) -> str | None:
    """The rule an `--explain` line with figures names (refused_by), "accepted", or None for another line."""
    if not line.endswith("]"):
        return None
    return refused_by(line) or ("accepted" if line.startswith(("accepted ", "held ")) else None)


def count(paths: list[Path]) -> dict[str, dict[str, Counter[str]]]:
    """Per room ("loopback +6 dB"): the narration's lines and hers, counted by reason."""
    rooms: dict[str, dict[str, Counter[str]]] = {}
    for path in paths:
        for room, entry in json.loads(path.read_text()).get("rooms", {}).items():
            if "failed" in entry:
                continue
            tally = rooms.setdefault(room.split()[0], {"narration": Counter(), "hers": Counter()})
            for side, lines in (
                ("narration", entry["false_accepts"].get("measured", [])),
                ("hers", entry["commands"].get("measured_while_she_spoke", [])),
            ):
                tally[side].update(r for r in map(reason, lines) if r is not None)
    return rooms


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results", nargs="+", type=Path, help="listening_live results files")
    args = parser.parse_args()
    missing = [str(p) for p in args.results if not p.is_file()]
    if missing:
        print(f"no such results file: {', '.join(missing)}", file=sys.stderr)
        return 2
    rooms = count(args.results)
    print("| room | reason | the narration alone | while she spoke |")
    print("|---|---|---|---|")
    for room, tally in sorted(rooms.items()):
        for why in sorted({*tally["narration"], *tally["hers"]}):
            print(f"| {room} | {why} | {tally['narration'][why]} | {tally['hers'][why]} |")
    write_results(
        ROOT / "benchmarks" / "results" / "own-voice-reasons.json",
        files=[p.name for p in args.results],
        rooms={room: {side: dict(c) for side, c in tally.items()} for room, tally in rooms.items()},
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
