"""Where PulseAudio has put the microphone, and the microphone behind a sound server's echo canceller.

PulseAudio (and PipeWire's pulse server) does not end a recording whose source disappears: it moves it to
another source, often the monitor of the speaker, and PortAudio never learns of it. The coach would go on
"listening" to its own voice. `pactl subscribe` says when sources come and go and when a recording moves;
`pactl list` says which source this process's recording is on.

A sound server's echo canceller (PipeWire's echo-cancel module on Raspberry Pi OS, PulseAudio's
module-echo-cancel) made the default source cuts her voice while the coach speaks: behind the tests' WebRTC
canceller half her commands said over the narration were lost, against 27 of 30 heard from the microphone it
cleans (benchmarks/behind_canceller.py). The coach removes its own echo, so its recording is moved to that
microphone; other apps keep the canceller.

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
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

# pactl answers in milliseconds; a server that takes longer is stuck, and then we cannot tell.
PACTL_TIMEOUT_S = 3.0
# How often a recording not yet linked to a source is looked at again (move_off_canceller).
LINK_POLL_S = 0.05
# What a subscription line says: "Event 'remove' on source #2".
_EVENT = re.compile(r"Event '(?P<what>new|change|remove)' on (?P<facility>[a-z-]+) #\d+")
SOURCE_ADDED = "source added"
RECORDING_MAY_HAVE_MOVED = "recording may have moved"
_EVENTS = {
    ("new", "source"): SOURCE_ADDED,
    ("remove", "source"): RECORDING_MAY_HAVE_MOVED,
    ("change", "source-output"): RECORDING_MAY_HAVE_MOVED,
    # ALSA's pulse plugin records anew after an overrun, on the default source: perhaps an echo canceller again.
    ("new", "source-output"): RECORDING_MAY_HAVE_MOVED,
}


# What the coach says, on the terminal and in its log, once it has moved off a canceller (%s: the microphone).
MOVED_OFF_CANCELLER = (
    "listening to %s, the microphone behind the sound system's echo canceller, which cuts your voice while the coach"
    " speaks (the coach removes its own echo)"
)
# How each sound server marks an echo canceller's source. PulseAudio's module-echo-cancel: the microphone it cleans
# as its master device, and "phone" as its role (other filters, remap-source and the like, have a master but no
# role). PipeWire's echo-cancel module: its source and the stream that captures the microphone share a link group
# the module names "echo-cancel-<pid>-<n>" (module-echo-cancel.c, 0.3.65 as on Raspberry Pi OS 12).
MASTER_DEVICE = "device.master_device"
PHONE_ROLE = "phone"
LINK_GROUP = "node.link-group"
PIPEWIRE_CANCELLER_GROUP = "echo-cancel-"


@dataclass(frozen=True)
class Source:
    name: str
    # The sound going to a speaker (a sink's monitor), not a microphone.
    monitor: bool
    # Where this source is a sound server's echo canceller: the microphone it cleans.
    behind: str | None = None


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


@dataclass(frozen=True)
class Recording:
    # The source-output's index; -1 where the server does not show it yet (PipeWire's pulse server, a moment after
    # the stream started).
    index: int
    # None while it is linked to no source.
    source: Source | None


def recording(pid: int | None = None) -> Recording | None:
    """This process's newest recording; None where there is no pulse server to ask."""
    wanted = str(os.getpid() if pid is None else pid)
    outputs = _pactl_json("list", "source-outputs")
    if outputs is None:
        return None
    ours = [o for o in outputs if _properties(o).get("application.process.id") == wanted]
    if not ours:
        # A PipeWire client's streams (pipewire-alsa's, where it is ALSA's default) carry no process id: the
        # client they belong to does.
        clients = _pactl_json("list", "clients") or []
        mine = {str(c.get("index")) for c in clients if _properties(c).get("application.process.id") == wanted}
        ours = [o for o in outputs if str(o.get("client")) in mine]
    if not ours:
        return Recording(-1, None)
    # The newest recording is the live one: ALSA's pulse plugin opens a new one after an overrun.
    newest = ours[-1]
    index = newest.get("index", -1)
    sources = _pactl_json("list", "sources") or []
    for source in sources:
        name = source.get("name")
        if source.get("index") == newest.get("source") and isinstance(name, str):
            properties = _properties(source)
            monitor = properties.get("device.class") == "monitor" or name.endswith(".monitor")
            return Recording(index, Source(name, monitor, _cleaned(properties, outputs, sources)))
    return Recording(index, None)


def recording_source(pid: int | None = None) -> Source | None:
    """The source this process's recording is on; None when there is none (or it is not linked to one yet), or no
    pulse server to ask."""
    found = recording(pid)
    return found.source if found is not None else None


def move_off_canceller(pid: int | None = None, link_wait_s: float = 0.0) -> str | None:
    """Where this process records from a sound server's echo canceller, move its recording to the microphone the
    canceller cleans; that microphone's name, or None where nothing was moved.

    PipeWire's session manager links a new recording to its source a moment after it starts: a recording not yet
    shown or linked is looked at again for up to link_wait_s. (The daemon waits for nothing: that is an event it
    hears.)"""
    deadline = time.monotonic() + link_wait_s
    found = recording(pid)
    while found is not None and found.source is None and time.monotonic() < deadline:
        time.sleep(LINK_POLL_S)
        found = recording(pid)
    return move_behind(found) if found is not None else None


def move_behind(found: Recording) -> str | None:
    """Where this recording is on an echo canceller, move it to the microphone the canceller cleans; that
    microphone's name, or None where nothing was moved."""
    behind = found.source.behind if found.source is not None else None
    if behind is None:
        return None
    try:
        done = subprocess.run(
            ["pactl", "move-source-output", str(found.index), behind],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=PACTL_TIMEOUT_S,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return behind if done.returncode == 0 else None


def _cleaned(canceller: dict[str, Any], outputs: list[dict[str, Any]], sources: list[dict[str, Any]]) -> str | None:
    """The microphone a source cleans of echo, where it is a sound server's echo canceller."""
    master = canceller.get(MASTER_DEVICE)
    if isinstance(master, str) and PHONE_ROLE in str(canceller.get("device.intended_roles", "")).split():
        return master
    group = canceller.get(LINK_GROUP)
    if not (isinstance(group, str) and group.startswith(PIPEWIRE_CANCELLER_GROUP)):
        return None
    captured = {o.get("source") for o in outputs if _properties(o).get(LINK_GROUP) == group}
    names = [s.get("name") for s in sources if s.get("index") in captured]
    return names[0] if len(names) == 1 and isinstance(names[0], str) else None


def _properties(item: dict[str, Any]) -> dict[str, Any]:
    properties = item.get("properties")
    return properties if isinstance(properties, dict) else {}


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
