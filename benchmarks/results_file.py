"""The JSON every benchmark writes to benchmarks/results/: its figures, with when and where they were measured."""

from __future__ import annotations

import json
import os
import platform
from datetime import UTC, datetime
from pathlib import Path


def write_results(path: Path, **figures: object) -> None:
    """Write figures to path, after the time, the machine and its load (a busy machine renders slower)."""
    path.parent.mkdir(exist_ok=True)
    header = {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores",
        "load": os.getloadavg()[0],
    }
    path.write_text(json.dumps({**header, **figures}, indent=2) + "\n")
