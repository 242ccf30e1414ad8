"""How the seconds of a hold are counted, as she last asked by voice ("tyst räkning", "räkna högt"): kept in the
state directory, over `[speech] counts`, so that it outlives a restart and config.toml stays hers to edit.

What she said holds until `[speech] counts` itself is changed: the choice is kept with the configured value it
was made over, and once the configuration says something else, the configuration is what she asked for last.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

from voicecoach.config import COUNTS
from voicecoach.paths import write_private

log = logging.getLogger(__name__)

FILE_NAME = "counts.json"


def load(state_dir: Path, configured: str) -> str:
    """Her choice, where she made one since `[speech] counts` was last changed; else the configured one. A file that
    cannot be read is logged, and written anew at the next change."""
    path = state_dir / FILE_NAME
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        counts, over = data["counts"], data["over"]
    except FileNotFoundError:
        return configured
    except (OSError, ValueError, KeyError, TypeError) as exc:
        log.warning("cannot read how to count kept in %s (%s): counting as [speech] counts says", path, exc)
        return configured
    if counts not in COUNTS:
        log.warning("%s says to count %r, not one of %s: counting as [speech] counts says", path, counts, COUNTS)
        return configured
    return counts if over == configured else configured


def save(state_dir: Path, counts: str, configured: str) -> None:
    """Keep her choice, with the configured value it was made over. OSError when the state directory cannot be
    written."""
    write_private(state_dir / FILE_NAME, json.dumps({"counts": counts, "over": configured}) + "\n")
