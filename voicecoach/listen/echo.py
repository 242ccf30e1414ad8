"""The coach's own voice in the microphone: removed with the played signal as reference, never by muting.

The mixer hands every played block to PlayedSignal.tap (reference.py), which lines it up in time with its echo in
the microphone; the canceller is given it a few milliseconds ahead of that echo.

The canceller is speexdsp's. WebRTC's AEC3 (pywebrtc-audio) removed more
echo where only the coach spoke, but with a command spoken over the narration it took most of her voice
too: measured on the Korean model, commands over narration were recognised 41 % of the time with AEC3,
99 % with speexdsp (see the README). What the canceller leaves is handed to the voice gate as a level to
beat: the reference-aware part.
"""

from __future__ import annotations

import itertools
import math
from collections import deque

import numpy as np

from voicecoach.listen.delay import LATEST_S
from voicecoach.listen.report import EchoMeter
from voicecoach.listen.resample import RATE
from voicecoach.listen.speexdsp import SpeexEcho
from voicecoach.listen.vad import FRAME_S, level_db

# Residual echo is judged from the played signal over this long a window: the room's reverberation, once the echo
# has been found where the reference lines it up; before that, until delay.LATEST_S, as late as it may come.
ECHO_WINDOW_S = 0.25
UNFOUND_WINDOW_S = LATEST_S + 0.1
# Played frames quieter than this are silence: nothing to cancel, and the canceller is not run.
SILENT_DB = -70.0
# The canceller keeps running this long after the played signal falls silent, while the room still rings.
RING_S = 0.5
# The echo path the canceller models: output and input latency, then the room's reverberation.
FILTER_S = 0.32
# How much recent history the residual-echo estimate is taken from: the frames whose own played signal (or the
# frames just before: the reference leads its echo by LEAD_S) was within ALIGNED_DB of the window's loudest, where
# the echo is surely there to be measured. Frames in the narration's pauses would only say how quiet the room is:
# through a virtual microphone, with nothing but digital silence there, they took the estimate to -90 dB and let
# every residual word through.
COUPLING_WINDOW_S = 5.0
ALIGNED_DB = 6.0
ALIGNED_FRAMES = 3
# ... and only frames of the coach's speech, within this of its loudest lately: against the quiet tail of a word,
# her voice over it would look like an echo 20 dB louder than what was played (behind a system echo canceller,
# which leaves almost no echo, such frames were most of the rest, and the estimate rose above her voice).
SPOKEN_DB = 20.0
# The level to beat is this percentile of those frames' residual, not their median: the residual comes in bursts.
# Measured (benchmarks/listening.py's reverberant room, 88 commands as loud as the echo / 6 dB quieter; recordings
# through the live test rooms, narration alone and with commands): the 90th percentile 84 / 60 % heard, no
# false accept; the 85th 94 / 75 %, one in 13 recordings; the 75th 99 / 94 %, 17 (and 3 in narration alone). The
# 85th also took the coach's own commands in tests/test_listen_model.py's late, drifting echo: a false stop ends
# her set, a missed pause is said again, so the 90th.
COUPLING_PERCENTILE = 90.0
# Frames of that kind needed before the estimate replaces the cautious 0 dB.
COUPLING_MIN_FRAMES = 100
# After this long of adding more than it removes, the canceller's echo path is wrong and it is started afresh.
DIVERGED_S = 0.5
# An echo this far under what was played (the median over COUPLING_WINDOW_S) is as good as none: behind the tests'
# WebRTC canceller it was 77-86 dB under; a room's echo through the air is 0-20 dB under.
FAINT_ECHO_DB = -30.0
# How much echo the canceller removes is metered only once it has worked this long on an echo found where it is
# lined up: speexdsp takes seconds to learn the path (on the Swedish narration through a simulated room it removed
# 5 dB in its first second, 15 dB after 2.5 s, 22-30 dB from 5.5 s on), and `check audio`'s figure is to say what
# it removes while she trains, not how fast it learns. Metered from the start, a 20 s test phrase whose echo was
# found a few seconds in, or lost once to a stream's underrun, came out 4-5 dB worse (tests/test_check_audio.py's
# two-device room, in full runs of the suite).
SETTLE_S = 5.0


class EchoCanceller:
    """speexdsp's echo canceller on 10 ms frames, plus an estimate of how loud the echo it leaves may be.

    The estimate is the played level (the loudest frame in the last ECHO_WINDOW_S, or UNFOUND_WINDOW_S) plus the
    coupling: a high percentile, over recent frames where the echo was surely there (the coach speaking, within
    SPOKEN_DB of its loudest lately), of how much quieter the cleaned signal was than that. Not the maximum, so
    that her speech over the narration does not raise it. Until it has been learnt (at first, and whenever the
    canceller starts afresh) the coupling is that of the echo as it comes into the microphone, so that while the
    canceller converges the gate wants speech louder than the echo itself: a command may be missed then, but the
    narration is never taken for one.
    """

    def __init__(self, filter_s: float = FILTER_S) -> None:
        self._speex = SpeexEcho(round(filter_s * RATE))
        self._played_db: deque[float] = deque([-math.inf], maxlen=round(UNFOUND_WINDOW_S / FRAME_S))
        self._ratios: deque[float] = deque(maxlen=round(COUPLING_WINDOW_S / FRAME_S))
        self._uncancelled: deque[float] = deque(maxlen=round(COUPLING_WINDOW_S / FRAME_S))
        self._loud_db: deque[float] = deque([-math.inf], maxlen=round(COUPLING_WINDOW_S / FRAME_S))
        self._ringing = 0
        self._diverged = 0
        self._working = 0  # frames cancelled, since the last reset, with the echo found where it is lined up
        # The canceller that cleaned the last frame, for the residual echo suppressor after it (listener.py), or None:
        # nothing was played lately, or its output was thrown away, and its estimate of the echo it left is of
        # another frame or of a signal not passed on.
        self.cleaned_by: SpeexEcho | None = None
        self.coupling_db = 0.0
        # Whether coupling_db is what the canceller was measured to leave, not a cautious stand-in until it has been.
        self._learnt = False
        self.meter = EchoMeter()

    def reset(self) -> None:
        """The reference was moved against the microphone: the echo path learnt so far is wrong; learn it again.
        Until it is, the echo is expected as loud as it comes into the microphone."""
        self._relearn()
        self._ratios.clear()
        self._learnt = False

    def _relearn(self) -> None:
        self._speex.reset()
        self._diverged = 0
        self._working = 0

    def process(self, mic: np.ndarray, played: np.ndarray, found: bool = True) -> tuple[np.ndarray, float]:
        """One 10 ms frame of microphone and played signal in (found: its echo has been found where played is lined
        up, Reference.found); the cleaned frame and its expected echo level out."""
        played_db = level_db(played)
        mic_db = level_db(mic)
        self.meter.heard(mic_db)
        self._played_db.append(played_db)
        self._ringing = round(RING_S / FRAME_S) if played_db > SILENT_DB else max(0, self._ringing - 1)
        self.cleaned_by = None
        if not self._ringing:
            # Nothing played lately: nothing to cancel, and idle listening costs no cancelling.
            self.meter.quiet(mic_db)
            return mic, -math.inf
        cleaned = self._speex.process(mic, played)
        if _energy(cleaned) > _energy(mic):
            # Taking the echo out can only lower the level; what rose was added by an echo path learnt wrong.
            # This happens where the microphone hears no echo (headphones) after she spoke over the narration:
            # the filter adapts to her voice and then plays the narration into the cleaned signal, seconds of
            # it, at 20 dB above the room. The microphone as it is cannot be mistaken for the coach.
            cleaned = mic
            self._diverged += 1
            if self._diverged >= round(DIVERGED_S / FRAME_S):
                # The filter is started afresh. Where the microphone hears almost no echo (a system echo canceller
                # in front, headphones) what it leaves stays known: there is no echo to learn again, and behind
                # PulseAudio's WebRTC canceller this happened every second or two; forgetting it each time, the
                # echo was expected as loud as her voice (issue 9). Where there is an echo, it is learnt afresh.
                if self.echo_faint:
                    self._relearn()
                else:
                    self.reset()
        else:
            self._diverged = max(0, self._diverged - 1)
            self.cleaned_by = self._speex
        self._working = self._working + 1 if found else 0
        window = round((ECHO_WINDOW_S if found else UNFOUND_WINDOW_S) / FRAME_S)
        reference_db = max(itertools.islice(reversed(self._played_db), window))
        aligned_db = max(itertools.islice(reversed(self._played_db), ALIGNED_FRAMES))
        self._loud_db.append(played_db)
        loud = aligned_db >= max(self._loud_db) - SPOKEN_DB
        if reference_db > SILENT_DB and aligned_db >= reference_db - ALIGNED_DB and loud:
            settled = self._working >= round(SETTLE_S / FRAME_S)
            self.meter.echo(aligned_db, mic_db, level_db(cleaned) if settled else None)
            self._ratios.append(level_db(cleaned) - reference_db)
            self._uncancelled.append(mic_db - reference_db)
            # Until the canceller has been heard at work on an echo found where it is lined up, what it leaves is
            # taken to be all of the echo, at its loudest; until that has been heard for a while (it may come half a
            # second after what was played), as loud as what was played.
            self._learnt = found and len(self._ratios) >= COUPLING_MIN_FRAMES
            if self._learnt:
                self.coupling_db = float(np.percentile(self._ratios, COUPLING_PERCENTILE))
            elif len(self._uncancelled) >= COUPLING_MIN_FRAMES:
                self.coupling_db = max(self._uncancelled)
            else:
                self.coupling_db = 0.0
        return cleaned, reference_db + self.coupling_db

    @property
    def echo_faint(self) -> bool:
        """Whether the microphone hears almost none of what was played (a system echo canceller in front, or
        headphones), as far as recent frames tell. Only there can an expected echo louder than what was played
        come from a gain stage rather than from the echo."""
        return bool(self._uncancelled) and float(np.median(self._uncancelled)) < FAINT_ECHO_DB

    @property
    def gain_in_front(self) -> bool:
        """Whether an expected echo louder than what was played is a gain stage's doing (a system canceller's AGC)
        and not the echo: only where the microphone hears almost none of what was played, and only once the
        coupling is what the canceller was measured to leave. The stand-in used until then is the loudest the echo
        came into the microphone: cautious, as the gate needs it to be. Before the echo has been found the
        microphone looks as if it hears almost nothing (the reference is not yet lined up with the echo, which
        comes after the words it is measured against), and the one-clock room's narration, heard 2.7 dB under that
        stand-in, was taken for "stop" in a full test run."""
        return self._learnt and self.coupling_db > 0.0 and self.echo_faint


def _energy(frame: np.ndarray) -> float:
    return float(np.dot(frame, frame))
