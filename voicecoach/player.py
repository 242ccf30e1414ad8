"""Plays a session: in real time through the output stream, or rendered offline with the same mixer."""

from __future__ import annotations

import asyncio
import queue
import signal
import sys
from collections.abc import Callable, Iterable

import numpy as np

from voicecoach.audio import BLOCK_FRAMES, OutputStream
from voicecoach.clips import ClipCache
from voicecoach.intents import match_text
from voicecoach.language import Pack
from voicecoach.mixer import Drained, Mixer, Scheduled, Started
from voicecoach.session import Reaction, Session, State
from voicecoach.timeline import Cue

# How far ahead of the mixer's clock new cues are scheduled: more than one block, so the callback
# always sees them before their first sample is due.
LEAD_S = 0.05
# Silence left at the end of a render, so the last word is not cut by a player's fade-out.
RENDER_TAIL_S = 0.5


def scheduled(cues: Iterable[Cue], mixer: Mixer, clips: ClipCache) -> list[Scheduled]:
    return [Scheduled(mixer.seconds_to_sample(c.t), clips.clip(c.text), c) for c in cues]


def render(session: Session, clips: ClipCache) -> np.ndarray:
    """The whole set as samples at the cache's rate, produced block by block exactly as live."""
    mixer = Mixer(clips.sample_rate)
    mixer.schedule(scheduled(session.start(0.0).cues, mixer, clips))
    total = mixer.seconds_to_sample(session.end + RENDER_TAIL_S)
    blocks = -(-total // BLOCK_FRAMES)
    out = np.zeros(blocks * BLOCK_FRAMES, dtype=np.float32)
    for i in range(blocks):
        mixer.render(out[i * BLOCK_FRAMES : (i + 1) * BLOCK_FRAMES])
    return out[:total]


def apply(reaction: Reaction | None, mixer: Mixer, clips: ClipCache) -> None:
    if reaction is not None:
        mixer.schedule(scheduled(reaction.cues, mixer, clips), cut=reaction.cut)


def play_phrase(text: str, clips: ClipCache, open_stream: Callable[[Mixer], OutputStream]) -> None:
    """Say one phrase on the output stream and return once it has been played."""
    clip = clips.clip(text)
    drained: queue.SimpleQueue[Drained] = queue.SimpleQueue()
    mixer = Mixer(clips.sample_rate, on_event=lambda e: drained.put(e) if isinstance(e, Drained) else None)
    with open_stream(mixer):
        mixer.schedule([Scheduled(0, clip)])
        # The timeout only guards against a stream that died; closing the stream plays out its buffer.
        drained.get(timeout=clip.size / clips.sample_rate + 5.0)


class LivePlayer:
    """Runs one session against a real output stream, taking typed commands from stdin."""

    def __init__(
        self,
        session: Session,
        clips: ClipCache,
        open_stream: Callable[[Mixer], OutputStream],
        packs: Iterable[Pack],
        on_cue: Callable[[Cue], None],
        gain: float = 1.0,
    ) -> None:
        self.session = session
        self.clips = clips
        self._open_stream = open_stream
        self._packs = tuple(packs)
        self._on_cue = on_cue
        self._gain = gain

    def run(self) -> State:
        return asyncio.run(self._run())

    async def _run(self) -> State:
        loop = asyncio.get_running_loop()
        inbox: asyncio.Queue[object] = asyncio.Queue()
        mixer = Mixer(self.clips.sample_rate, self._gain, lambda e: loop.call_soon_threadsafe(inbox.put_nowait, e))

        def now() -> float:
            return mixer.position / mixer.rate + LEAD_S

        self._watch_stdin(loop, inbox)
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, inbox.put_nowait, "stop")
        # Render every clip before the stream starts, so no clip is synthesised on the clock.
        for text in self.session.phrases():
            self.clips.clip(text)
        with self._open_stream(mixer):
            apply(self.session.start(now()), mixer, self.clips)
            while True:
                item = await inbox.get()
                if isinstance(item, Started) and isinstance(item.tag, Cue):
                    self._on_cue(item.tag)
                elif isinstance(item, Drained):
                    if self.session.status(now()).state in (State.FINISHED, State.STOPPED):
                        return self.session.state
                elif isinstance(item, str):
                    if item == "stop" and self.session.state in (State.STOPPED, State.FINISHED):
                        return self.session.state
                    apply(getattr(self.session, item)(now()), mixer, self.clips)

    def _watch_stdin(self, loop: asyncio.AbstractEventLoop, inbox: asyncio.Queue[object]) -> None:
        if sys.stdin is None or sys.stdin.closed:
            return
        try:
            fd = sys.stdin.fileno()
        except (OSError, ValueError):
            return

        def on_line() -> None:
            line = sys.stdin.readline()
            if not line:
                loop.remove_reader(fd)
                return
            intent = match_text(line, self._packs, "session")
            if intent in ("pause", "resume", "stop"):
                inbox.put_nowait(intent)

        try:
            loop.add_reader(fd, on_line)
        except (OSError, ValueError, PermissionError):
            # stdin is a regular file or /dev/null: there is nothing to watch.
            return
