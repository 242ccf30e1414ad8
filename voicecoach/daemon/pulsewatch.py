"""Where PulseAudio has put the microphone.

PulseAudio (and PipeWire's pulse server) does not end a recording whose source disappears: it moves it to
another source, often the monitor of the speaker, and PortAudio never learns of it. The coach would go on
"listening" to its own voice. `pactl subscribe` says when sources come and go and when a recording moves;
`pactl list` says which source this process's recording is on.

Without pactl or a pulse server (plain ALSA) none of this runs, and a lost microphone is noticed when its
stream stops. No thread: the subscription's pipe is read by the event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

# pactl answers in milliseconds; a server that takes longer is stuck, and then we cannot tell.
PACTL_TIMEOUT_S = 3.0
# What a subscription line says: "Event 'remove' on source #2".
_EVENT = re.compile(r"Event '(?P<what>new|change|remove)' on (?P<facility>[a-z-]+) #\d+")
SOURCE_ADDED = "source added"
RECORDING_MAY_HAVE_MOVED = "recording may have moved"
_EVENTS = {
    ("new", "source"): SOURCE_ADDED,
    ("remove", "source"): RECORDING_MAY_HAVE_MOVED,
    ("change", "source-output"): RECORDING_MAY_HAVE_MOVED,
}


@dataclass(frozen=True)
class Source:
    name: str
    # The sound going to a speaker (a sink's monitor), not a microphone.
    monitor: bool


def _pactl_json(*args: str) -> list[dict[str, Any]] | None:
    try:
        done = subprocess.run(
            ["pactl", "-f", "json", *args],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=PACTL_TIMEOUT_S,
            check=False,
        )
        # pactl older than 16 has no -f json; that is "cannot tell", like no pactl at all.
        data = json.loads(done.stdout) if done.returncode == 0 else None
    except (OSError, subprocess.TimeoutExpired, json.JSONDecodeError):
        return None
    return [item for item in data if isinstance(item, dict)] if isinstance(data, list) else None


def recording_source(pid: int | None = None) -> Source | None:
    """The source this process's recording is on; None when there is none, or no pulse server to ask."""
    wanted = str(os.getpid() if pid is None else pid)
    outputs = _pactl_json("list", "source-outputs")
    ours = [
        o["source"]
        for o in outputs or []
        if isinstance(o.get("properties"), dict) and o["properties"].get("application.process.id") == wanted
    ]
    if not ours:
        return None
    for source in _pactl_json("list", "sources") or []:
        # The newest recording is the live one: ALSA's pulse plugin opens a new one after an overrun.
        name = source.get("name")
        if source.get("index") == ours[-1] and isinstance(name, str):
            properties = source.get("properties")
            device_class = properties.get("device.class") if isinstance(properties, dict) else None
            return Source(name, device_class == "monitor" or name.endswith(".monitor"))
    return None


class SourceEvents:
    """`pactl subscribe`, reduced to SOURCE_ADDED and RECORDING_MAY_HAVE_MOVED, delivered on the event loop."""

    def __init__(self, on_event: Callable[[str], None]) -> None:
        self._on_event = on_event
        self._process: subprocess.Popen[bytes] | None = None
        self._buffer = b""

    @property
    def running(self) -> bool:
        return self._process is not None

    def start(self) -> bool:
        """Subscribe; False where there is no pactl. (One with no server to talk to exits at once.)"""
        if self._process is not None:
            return True
        try:
            self._process = subprocess.Popen(
                ["pactl", "subscribe"], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL
            )
        except OSError:
            return False
        assert self._process.stdout is not None
        os.set_blocking(self._process.stdout.fileno(), False)
        asyncio.get_running_loop().add_reader(self._process.stdout.fileno(), self._read)
        return True

    def _read(self) -> None:
        assert self._process is not None and self._process.stdout is not None
        try:
            chunk = os.read(self._process.stdout.fileno(), 4096)
        except BlockingIOError:
            return
        if not chunk:
            # The server went away (or never was): stop; the daemon subscribes again once a device is back.
            self.close()
            return
        *lines, self._buffer = (self._buffer + chunk).split(b"\n")
        for line in lines:
            match = _EVENT.search(line.decode("utf-8", errors="replace"))
            event = match and _EVENTS.get((match["what"], match["facility"]))
            if event:
                self._on_event(event)

    def close(self) -> None:
        process, self._process = self._process, None
        if process is None:
            return
        assert process.stdout is not None
        with contextlib.suppress(Exception):
            asyncio.get_running_loop().remove_reader(process.stdout.fileno())
        if process.poll() is None:
            process.terminate()
        try:
            process.wait(timeout=PACTL_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        process.stdout.close()
        self._buffer = b""
