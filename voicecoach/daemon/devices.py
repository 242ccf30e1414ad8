"""The daemon's speaker and microphone, kept open: reopened after a loss (kept_stream.py), looked at again when the
sound server says sources came or recordings moved (pulsewatch.py), and their glitches logged as they happen."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

from voicecoach.daemon import pulsewatch
from voicecoach.daemon.kept_stream import KeptStream
from voicecoach.sound.audio import InputStream, OutputStream

# The daemon's own log: these lines are the daemon's.
log = logging.getLogger("voicecoach")

# PulseAudio reports a change as a burst of events; the devices are checked once it is over.
SETTLE_S = 0.2


class Devices:
    """open_speaker and open_microphone open the streams, afresh on every try; speaker_progress tells whether the
    speaker's stream moves on. on_speaker_back runs when the speaker returns after a loss, on_microphone_up each
    time the microphone (re)opens. listening: whether the microphone is used at all (not without a model)."""

    def __init__(
        self,
        open_speaker: Callable[[], OutputStream],
        speaker_progress: Callable[[OutputStream], int],
        open_microphone: Callable[[], InputStream],
        listening: bool,
        on_speaker_back: Callable[[], object],
        on_microphone_up: Callable[[], object],
    ) -> None:
        self.speaker = KeptStream("speaker", open_speaker, speaker_progress)
        self.microphone = KeptStream("microphone", open_microphone, lambda s: s.frames, self._microphone_misplaced)
        self.sources = pulsewatch.SourceEvents(self._on_source_event)
        self._listening = listening
        self._on_speaker_back = on_speaker_back
        self._on_microphone_up = on_microphone_up
        # The source the microphone's recording first opened on; see _microphone_misplaced.
        self._mic_source: str | None = None
        self._check_pending: asyncio.TimerHandle | None = None

    def check(self) -> None:
        now = time.monotonic()
        if self.speaker.check(now) == "back":
            self._on_speaker_back()
        if self._listening and self.microphone.check(now) in ("up", "back"):
            self._on_microphone_up()
            # (Again) subscribe to the sound server's news of sources; a lost server ended the subscription.
            self.sources.start()

    def log_glitches(self, seen: dict[str, int]) -> None:
        """Log underruns and overflows as they happen (counted in the callbacks), never the same ones twice."""
        counts = {
            "speaker underruns (later words came late)": getattr(self.speaker.stream, "underruns", 0),
            "microphone overflows (audio was lost)": getattr(self.microphone.stream, "overflows", 0),
        }
        for what, count in counts.items():
            # A reopened stream counts from zero again.
            new = count - seen.get(what, 0) if count >= seen.get(what, 0) else count
            if new > 0:
                log.warning("%d %s", new, what)
            seen[what] = count

    def close(self) -> None:
        if self._check_pending is not None:
            self._check_pending.cancel()
        self.sources.close()
        self.speaker.close()
        self.microphone.close()

    def _microphone_misplaced(self) -> str | None:
        """PulseAudio moves a recording whose source went away to another source, often the monitor of the
        speaker: the coach would hear itself. A monitor is accepted only if the recording started on it, or is the
        microphone behind a sound server's echo canceller, to which the recording is moved (see pulsewatch)."""
        found = pulsewatch.recording()
        source = found.source if found is not None else None
        if found is None or source is None:
            return None
        moved = pulsewatch.move_behind(found)
        if moved is not None:
            log.info(pulsewatch.MOVED_OFF_CANCELLER, moved)
            self._mic_source = moved
            return None
        if self._mic_source is None:
            self._mic_source = source.name
        if source.monitor and source.name != self._mic_source:
            return f"{self._mic_source} is gone: the sound server would record {source.name}, a speaker's sound"
        return None

    def _on_source_event(self, event: str) -> None:
        if event == pulsewatch.SOURCE_ADDED and self.microphone.lost and not self.microphone.up:
            # Perhaps the microphone is back: try now, not when the backoff is over.
            self.microphone.retry_at = 0.0
        elif event == pulsewatch.RECORDING_MAY_HAVE_MOVED and self.microphone.up:
            self.microphone.recheck = True
        else:
            return
        if self._check_pending is None:
            self._check_pending = asyncio.get_running_loop().call_later(SETTLE_S, self._settled)

    def _settled(self) -> None:
        self._check_pending = None
        self.check()
