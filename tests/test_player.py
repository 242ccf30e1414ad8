"""The terminal's player against an output stream that starts as PortAudio's does: at start it renders a burst of
blocks at once to fill its buffer, then one block at a time. Whatever is scheduled after that burst is heard a
whole buffer later (0.2 s: OUTPUT_LATENCY_S) than it could be."""

from __future__ import annotations

import faulthandler
import threading
import time
from collections.abc import Callable

import numpy as np
import pytest
from test_coach import RATE, FakeClips, FakeJournal

from voicecoach.cli.player import play_phrase, run_live
from voicecoach.coach import LEAD_S
from voicecoach.engine.language import load_pack
from voicecoach.engine.programme import STRENGTH, find_exercise, with_overrides
from voicecoach.engine.session import Outcome
from voicecoach.engine.timeline import Cue
from voicecoach.sound.audio import AudioError
from voicecoach.sound.mixer import Mixer

BLOCK = 50
# Through PulseAudio's ALSA plugin, 20 callbacks of 256 frames came within 2 ms of the stream's start (the 0.2 s
# buffer being filled); PortAudio's ALSA host API on a device it can map fills it before starting, with silence
# or, primed, through the callback.
BURST = 20


class StartingStream:
    """An output stream: on entering, BURST blocks rendered at once, then one at a time in a thread of its own (the
    audio callback's) until it is closed. Keeps what it played."""

    tail_s = 0.0
    underruns = 0

    def __init__(self, mixer: Mixer) -> None:
        self.mixer = mixer
        self.played: list[np.ndarray] = []
        self._closed = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _block(self) -> None:
        out = np.zeros(BLOCK, dtype=np.float32)
        self.mixer.render(out)
        self.played.append(out)

    def _run(self) -> None:
        while not self._closed.is_set():
            self._block()
            time.sleep(0.0005)

    def __enter__(self) -> StartingStream:
        for _ in range(BURST):
            self._block()
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._closed.set()
        self._thread.join()


SHORT = with_overrides(STRENGTH, reps=1, hold_s=1, rest_s=1)
SV = load_pack("sv")


def kept(streams: list[StartingStream]) -> Callable[[Mixer], StartingStream]:
    """An open_stream that keeps each stream it opens in streams."""

    def open_stream(mixer: Mixer) -> StartingStream:
        streams.append(StartingStream(mixer))
        return streams[-1]

    return open_stream


def test_a_set_begins_at_the_start_of_the_stream_not_a_buffer_later() -> None:
    cues: list[Cue] = []
    streams: list[StartingStream] = []
    journal = FakeJournal()
    outcome = run_live(SHORT, SV, FakeClips(), kept(streams), [SV], find_exercise, journal, on_cue=cues.append)  # type: ignore[arg-type]
    assert outcome == Outcome.COMPLETED
    assert journal.calls == [("start", "strength", 1), ("rep", 7, 1), ("finish", 7, "completed")]
    assert cues[0].t == LEAD_S, "the first word is heard right after the stream starts"
    played = np.concatenate(streams[0].played)
    assert np.flatnonzero(played)[0] == round(LEAD_S * RATE)


def test_a_phrase_is_played_whole_from_its_first_sample() -> None:
    clips = FakeClips()
    streams: list[StartingStream] = []
    play_phrase("Hej.", clips, kept(streams))  # type: ignore[arg-type]
    played = np.concatenate(streams[0].played)
    clip = clips.clip("Hej.")
    np.testing.assert_array_equal(played[: clip.size], clip)


def test_a_speaker_that_cannot_be_opened_leaves_nothing_in_the_journal() -> None:
    def open_stream(_mixer: Mixer) -> StartingStream:
        raise AudioError("cannot open audio output 'USB Audio': Device unavailable")

    journal = FakeJournal()
    with pytest.raises(AudioError):
        run_live(SHORT, SV, FakeClips(), open_stream, [SV], find_exercise, journal)  # type: ignore[arg-type]
    assert journal.calls == []


class FailingStream(StartingStream):
    def __enter__(self) -> StartingStream:
        raise AudioError("cannot start audio output 'USB Audio': Device unavailable")


def test_a_set_its_stream_fails_to_start_is_recorded_as_stopped() -> None:
    journal = FakeJournal()
    with pytest.raises(AudioError):
        run_live(SHORT, SV, FakeClips(), FailingStream, [SV], find_exercise, journal)  # type: ignore[arg-type]
    assert journal.calls == [("start", "strength", 1), ("finish", 7, "stopped")]


class StoppingStream(StartingStream):
    """A speaker that is unplugged after its first second: its callback is never called again."""

    def _run(self) -> None:
        for _ in range(RATE // BLOCK):
            if self._closed.is_set():
                return
            self._block()
            time.sleep(0.0005)


def test_a_set_whose_speaker_stops_ends_with_an_error_and_is_recorded_as_stopped() -> None:
    # Through a sound server that went away the set's clock stopped with it, and the set waited for ever (Ctrl-C
    # only asked it to say "Avslutat", which could not be played). Should it wait again, the run is ended with the
    # stacks printed rather than left hanging: a hang guard, not a time limit.
    journal = FakeJournal()
    long = with_overrides(STRENGTH, reps=3, hold_s=3, rest_s=3)
    faulthandler.dump_traceback_later(120, exit=True)
    try:
        with pytest.raises(AudioError, match="speaker stopped"):
            run_live(long, SV, FakeClips(), StoppingStream, [SV], find_exercise, journal)  # type: ignore[arg-type]
    finally:
        faulthandler.cancel_dump_traceback_later()
    assert journal.calls == [("start", "strength", 3), ("finish", 7, "stopped")]
