"""Whether an utterance is the coach's own voice, left over by the echo canceller, or hers.

The microphone hears the coach every second of a set, so muting it while the coach speaks is not an option, and the
canceller never removes all of the echo. These tell what it left from her:

- What is left of the coach still follows what was played, sound for sound: the cleaned utterance is coherent with
  the played signal where its echo came (echo_of). Her voice, which the played signal does not hold, is not.
  Recordings of every command heard while the coach spoke, live in the two-device room (30 minutes of narration
  and 20 of her commands, at 0 and at +6 dB): the share of the utterance's power that follows what was played
  (coherence) was 0.18-0.90 for the 159 the narration's remains decoded as commands, 0.06 and below for the 60
  with her voice in them. Until 2026-12-02 it was measured against the reference as handed over, 10 ms ahead of
  its echo, and averaged alike over frequencies: there the same remains came out at 0.03-0.26, her commands at up
  to 0.06, four of the remains got through in the hour, and two rules on loudness did most of the work.
- Those two rules, dropped on 2026-12-02: recognised words whose loudness rose and fell with what was played, and
  some coherence and some such following together. Set while coherence was measured 10 ms off, they caught what
  it missed. Measured once it was not: in nine rooms of 30 minutes of narration (three routes; -12, 0 and +6 dB)
  no detection of the narration was refused by them alone, while in the two-device room they refused 2 of her
  10 stops (12 dB over the echo; 0.94 over their words, and coherence 0.06), and offline, without them, 1-3 more
  of 104 commands were heard, with still no false accept in 30 minutes of narration (benchmarks/README.md).
- The coach says its own command words ("Paus.", "Vi fortsätter vila.", "Avslutat.", the help text). A command
  whose words were in what was played over the utterance, or just before it, counts only if her speech stands
  clearly above the echo the canceller was expected to leave.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass

import numpy as np

from voicecoach.listen.matcher import normalise
from voicecoach.listen.reference import LEAD_S
from voicecoach.listen.resample import RATE
from voicecoach.listen.vad import FRAME, FRAME_S

# A command whose words the coach said up to this long before the utterance (or during it) is suspect.
SAID_BEFORE_S = 0.5
# ... and counts only this far above the expected echo.
SELF_MARGIN_DB = 10.0
# An utterance more coherent than this with what was played is the coach's: between her commands' 0.06 and the
# narration's remains' 0.18 (see above).
MAX_COHERENCE = 0.1
# Speech no louder than the echo the canceller was expected to leave is taken for that echo. Replayed captures of the
# two-device room (a second clock, 30 ms loopback): the narration's false accepts came out at -6 to -2 dB, her
# commands at +0.1 dB and above with her voice 6 dB under the echo (tests/test_listen_model.py's late, drifting
# echo: a false stop at -1.2 dB). Not where the expected echo is louder than what was played (coupling above 0 dB):
# that is no echo left by a canceller but her own voice and a gain stage in the estimate (PulseAudio's WebRTC
# canceller with its AGC, where her commands came out at -16 to +14 dB).
MIN_ABOVE_ECHO_DB = 0.0
# The band coherence is judged over: where speech, and the recogniser, have their energy.
BAND_HZ = (300, 3400)
SEGMENT = 256


@dataclass(frozen=True)
class Judgement:
    """What was measured of an utterance, and why it is the coach's own voice (None: it may be hers)."""

    above_echo_db: float | None
    coherence: float | None
    own_voice: str | None


class OwnVoice:
    """The recent frames' cleaned microphone signal, played signal, expected echo and the texts being said."""

    def __init__(self, history_s: float) -> None:
        frames = round(history_s / FRAME_S)
        self._cleaned: deque[np.ndarray] = deque(maxlen=frames)
        self._played: deque[np.ndarray] = deque(maxlen=frames)
        self._echo_db: deque[float] = deque(maxlen=frames)
        self._said: deque[tuple[str, ...]] = deque(maxlen=frames)

    def push(self, cleaned: np.ndarray, played: np.ndarray, echo_db: float, said: tuple[str, ...]) -> None:
        """One frame, after the canceller."""
        self._cleaned.append(cleaned)
        self._played.append(played)
        self._echo_db.append(echo_db)
        self._said.append(said)

    def judge(self, phrase: str, speech_db: float, frames: int, echo_plausible: bool = True) -> Judgement:
        """Is a command phrase, heard in the last `frames` frames at speech level speech_db, the coach's?
        echo_plausible: the expected echo is that of a canceller at work, no louder than what was played."""
        expected = [e for e in list(self._echo_db)[-frames:] if e > -math.inf]
        if not expected:
            # Nothing played: nothing of the coach to hear.
            return Judgement(None, None, None)
        echo_db = 10 * math.log10(float(np.mean(np.power(10.0, np.array(expected) / 10))))
        above = speech_db - echo_db
        cleaned = np.concatenate(list(self._cleaned)[-frames:])
        coherent = coherence(cleaned, echo_of(list(self._played), cleaned.size))
        before = frames + round(SAID_BEFORE_S / FRAME_S)
        said = any(said_in(phrase, text) for text in {t for texts in list(self._said)[-before:] for t in texts})
        return Judgement(above, coherent, why_own(above, coherent, said, echo_plausible))


def why_own(above: float, coherent: float, said: bool, plausible: bool) -> str | None:
    """Why an utterance measured so is the coach's own voice (None: it may be hers). said: the coach said the
    command's words over it or just before; plausible: the expected echo is that of a canceller at work."""
    if coherent > MAX_COHERENCE:
        return f"it follows what the coach played (coherence {coherent:.2f})"
    if plausible and above < MIN_ABOVE_ECHO_DB:
        return f"it is no louder than the coach's echo ({above:.1f} dB over it)"
    if above < SELF_MARGIN_DB and said:
        return f"the coach had just said it, only {above:.0f} dB over its echo"
    return None


def coherence(x: np.ndarray, y: np.ndarray) -> float:
    """How much of x follows y, sound for sound: the magnitude-squared coherence of x and y (Welch: half-overlapping
    Hann segments) over BAND_HZ, each frequency weighted by x's power there. That is the share of x's power (in the
    band) that a linear filter of y would account for. Averaged alike over frequencies, as it was until 2026-12-02,
    the frequencies where her voice is weak, which hold little but the narration's remains, counted as much as those
    that carry her voice: her commands over the narration came out at up to 0.30, the narration's remains from 0.20
    (the two-device room's recordings); weighted, at up to 0.06 and from 0.18."""
    window = np.hanning(SEGMENT)
    starts = range(0, min(x.size, y.size) - SEGMENT + 1, SEGMENT // 2)
    if not starts or not y.any():
        return 0.0
    xs = np.array([np.fft.rfft(x[i : i + SEGMENT] * window) for i in starts])
    ys = np.array([np.fft.rfft(y[i : i + SEGMENT] * window) for i in starts])
    band = slice(round(BAND_HZ[0] * SEGMENT / RATE), round(BAND_HZ[1] * SEGMENT / RATE) + 1)
    cross = np.abs(np.sum(xs * np.conj(ys), axis=0)[band]) ** 2
    x_power = np.sum(np.abs(xs) ** 2, axis=0)[band]
    y_power = np.sum(np.abs(ys) ** 2, axis=0)[band]
    return float(np.sum(cross / (y_power + 1e-20)) / (np.sum(x_power) + 1e-20))


def echo_of(played: list[np.ndarray], size: int) -> np.ndarray:
    """The played signal as its echo came into the last `size` samples: the reference is handed over LEAD_S ahead
    of its echo (reference.LEAD_S). In the two-device room's recordings (see above) the microphone, all echo there,
    came out at coherence 0.04-0.73 with the reference as handed over, 0.99-1.00 with it lined up by this."""
    lead = round(LEAD_S * RATE)
    back = size + lead
    joined = np.concatenate(played[-math.ceil(back / FRAME) :]) if played else np.zeros(0, dtype=np.float32)
    joined = joined[: max(joined.size - lead, 0)][-size:]
    return np.concatenate((np.zeros(size - joined.size, dtype=np.float32), joined))


def said_in(phrase: str, text: str) -> bool:
    """Whether a word of a command phrase is in a text the coach said: as a part of a word too ("fortsätt" is in
    "Vi fortsätter vila", "avsluta" in "Avslutat"), as the recogniser would hear it in the echo."""
    spoken = normalise(text).replace(" ", "")
    return any(len(word) > 1 and word in spoken for word in normalise(phrase).split())
