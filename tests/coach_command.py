"""Running this checkout's coach as a user would: its installed entry point, and the cues a session plans."""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

# The checkout these tests belong to.
CHECKOUT = Path(__file__).resolve().parents[1]


def voicecoach_command() -> list[str]:
    """The installed `voicecoach` entry point of the running interpreter's environment, running this checkout's
    package. An editable install imports the checkout it was made from: a benchmark run in a second clone with the
    first's environment would otherwise measure the first clone's code (it did, on 2026-12-03)."""
    script = Path(sys.executable).with_name("voicecoach")
    if not script.exists():
        raise FileNotFoundError(f"{script} is missing: install the package with 'scripts/install --test'")
    # Put first on the child's own PYTHONPATH, which some tests set (a faked clock's sitecustomize).
    prepend = f'PYTHONPATH={shlex.quote(str(CHECKOUT))}${{PYTHONPATH:+:$PYTHONPATH}} exec "$0" "$@"'
    return ["sh", "-c", prepend, str(script)]


def planned_cues(args: Sequence[str], env: dict[str, str]) -> list[dict[str, object]]:
    """The cues `voicecoach session ARGS --timeline` plans, as its JSON lines."""
    out = subprocess.run(
        [*voicecoach_command(), "session", *args, "--timeline"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    ).stdout
    return [json.loads(line) for line in out.splitlines()]
