"""Plays sessions: live through the output stream with typed (and, listening, spoken) commands, or rendered offline
with the same mixer."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import signal
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

import numpy as np

from voicecoach.assembly import Assembly, BlockCallback
from voicecoach.coach import Coach, JournalSink, Volume, scheduled
from voicecoach.engine.language import Pack, typed_intent
from voicecoach.engine.programme import Exercise
from voicecoach.engine.session import Outcome, Session
from voicecoach.engine.timeline import Cue
from voicecoach.intents import Intent, Mode, Name
from voicecoach.listen import Detection
from voicecoach.listen.voice import Voice
from voicecoach.sound.audio import BLOCK_FRAMES, AudioError, InputStream, OutputStream
from voicecoach.sound.clips import ClipCache
from voicecoach.sound.mixer import Drained, Mixer, Scheduled

log = logging.getLogger(__name__)

# Silence left at the end of a render, so the last word is not cut by a player's fade-out.
RENDER_TAIL_S = 0.5
# A speaker that has taken no sound for this long has stopped (unplugged, or its sound server gone): the set's clock
# is the speaker's, so without it the set would wait forever, and "Avslutat" could not be said either. The daemon
# reopens such a stream (daemon/kept_stream.py, after as long); a set in the terminal ends with an error.
SPEAKER_STALL_S = 3.0
SPEAKER_CHECK_S = 0.5
SPEAKER_STOPPED = (
    "the speaker stopped taking sound in the middle of the set (unplugged, or its sound server stopped): check it"
    " and start the set again"
)


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


def play_phrase(text: str, clips: ClipCache, open_stream: Callable[[Mixer], OutputStream], gain: float = 1.0) -> None:
    """Say one phrase on the output stream and return once it has been played."""
    clip = clips.clip(text)
    drained: queue.SimpleQueue[Drained] = queue.SimpleQueue()
    mixer = Mixer(clips.sample_rate, gain, on_event=lambda e: drained.put(e) if isinstance(e, Drained) else None)
    # Scheduled before the stream starts: it renders a buffer's worth of blocks at once as it starts (0.2 s),
    # and a phrase scheduled after them would wait that long.
    mixer.schedule([Scheduled(0, clip)])
    with open_stream(mixer) as stream:
        # The timeout only guards against a stream that died.
        drained.get(timeout=clip.size / clips.sample_rate + 5.0)
        time.sleep(stream.tail_s)


@dataclass(frozen=True)
class Listening:
    """Voice control for a live set: the voice, loaded for the set's mixer; the microphone, opened with the
    function its callback hands each block to; and who is told of each command heard (at that time on the
    set's clock, and whether it meant anything then)."""

    open_voice: Callable[[Mixer], Voice]
    open_microphone: Callable[[BlockCallback], InputStream]
    on_heard: Callable[[float, Detection, bool], None] = lambda _t, _detection, _accepted: None


def run_live(
    exercise: Exercise,
    pack: Pack,
    clips: ClipCache,
    open_stream: Callable[[Mixer], OutputStream],
    typed_packs: Iterable[Pack],
    exercises: Callable[[str], Exercise],
    journal: JournalSink | None = None,
    journal_off_notice: str | None = None,
    on_cue: Callable[[Cue], None] = lambda _cue: None,
    gain: float = 1.0,
    listening: Listening | None = None,
    loudness: Volume | None = None,
) -> Outcome:
    """Play one set (and the ones "nästa" skips to) in real time, taking typed commands from stdin and, with
    listening, spoken ones from the microphone."""

    async def main() -> Outcome:
        loop = asyncio.get_running_loop()
        done: asyncio.Future[Outcome] = loop.create_future()
        parts = Assembly(
            loop,
            clips.sample_rate,
            gain,
            lambda mixer: Coach(
                mixer, clips, pack, exercises, journal, on_cue, done.set_result, journal_off_notice, loudness
            ),
            lambda mixer: listening.open_voice(mixer) if listening is not None else None,
        )
        coach, mixer = parts.coach, parts.mixer
        stop = Intent(Name.STOP)
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, _stop_or_quit, coach, done, stop)
        _watch_stdin(loop, tuple(typed_packs), coach.handle)
        prepared = coach.prepare(exercise)
        # Opened first: a speaker that cannot be fails before the journal hears of a set.
        stream = open_stream(mixer)
        # Started before the stream, for the reason play_phrase schedules first: the first word is in the first
        # blocks, not a buffer later (measured: 0.2-0.3 s less from the command to the first sound).
        coach.start(exercise, prepared)
        try:
            with stream:
                watch = loop.create_task(_watch_speaker(mixer, done))
                try:
                    with _microphone(listening, parts, done):
                        outcome = await done
                finally:
                    watch.cancel()
                await asyncio.sleep(stream.tail_s)
        finally:
            # A set the stream or the microphone ended (or a second Ctrl-C) is in the journal as stopped.
            coach.abandon()
        if stream.underruns:
            log.warning("the speaker ran dry %d time(s); words after that came late by as much", stream.underruns)
        return outcome

    return asyncio.run(main())


@contextlib.contextmanager
def _microphone(listening: Listening | None, parts: Assembly, done: asyncio.Future[Outcome]) -> Iterator[None]:
    """The microphone, open while the set runs; what it hears goes to the coach."""
    if listening is None or parts.voice is None:
        yield
        return
    coach = parts.coach

    def heard(detection: Detection, accepted: bool) -> None:
        listening.on_heard(coach.mixer.position / coach.mixer.rate, detection, accepted)

    def hear(block: np.ndarray, adc_time: float | None) -> None:
        # Once the set is over the coach is idle, where a start phrase would begin another set.
        if not done.done():
            parts.hear(block, adc_time, coach.state, coach.handle, heard)

    with listening.open_microphone(parts.on_block(hear)):
        # The speaker started first: the played signal from before the microphone ran echoes nowhere.
        parts.voice.reset()
        yield


async def _watch_speaker(mixer: Mixer, done: asyncio.Future[Outcome]) -> None:
    """Ends the set with an AudioError once the speaker has taken no sound for SPEAKER_STALL_S."""
    last, moved = mixer.position, time.monotonic()
    while not done.done():
        await asyncio.sleep(SPEAKER_CHECK_S)
        if mixer.position != last:
            last, moved = mixer.position, time.monotonic()
        elif time.monotonic() - moved >= SPEAKER_STALL_S and not done.done():
            done.set_exception(AudioError(SPEAKER_STOPPED))


def _stop_or_quit(coach: Coach, done: asyncio.Future[Outcome], stop: Intent) -> None:
    """The first Ctrl-C stops the set politely; a second one, while "Avslutat" is said, quits at once."""
    if not coach.handle(stop) and not done.done():
        done.set_result(Outcome.STOPPED)


def _watch_stdin(loop: asyncio.AbstractEventLoop, packs: tuple[Pack, ...], handle: Callable[[Intent], bool]) -> None:
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
        intent = typed_intent(line, packs, Mode.SESSION)
        if intent is not None:
            handle(Intent(intent))

    try:
        loop.add_reader(fd, on_line)
    except (OSError, ValueError):
        # stdin is a regular file or /dev/null, which cannot be watched: there are no typed commands.
        return
