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
  to 0.06, four of the remains got through in the hour, and the rules below did most of the work.
- What is left of the coach rises and falls with what was played even where the canceller changed its waveform
  (nonlinear suppression) so that coherence no longer sees it: the loudness of the recognised words, 10 ms at a
  time, follows the played loudness (envelope_following over the frames the recogniser placed the words in; over
  the whole utterance it did not work, since the window holds the narration's remains around her words too).
  Measured live, 30 minutes a room (benchmarks/README.md, results/listening-live-words-envelope.json): the
  narration's detections that it refused came out at 0.81-0.97, her commands at 0.65 and below; offline, over her
  commands started inside the coach's words, it cost 1 of 88 at 0 dB and none at -6 dB.
- Each of those two signs is set where her commands do not reach it. The two together, each weaker, were a rule
  until 2026-12-03: since the residual echo suppressor (listener.py), in the live runs of 2026-12-02 and 12-03
  (385 of the narration's detections logged with their figures, 38 results files), it refused none of the
  narration and 17 of her commands (benchmarks/README.md, "Runs of 2026-12-03 evening").
- The coach says its own command words ("Paus.", "Vi fortsätter vila.", "Avslutat.", the help text). A command
  whose words were in what was played over the utterance, or just before it, counts only if her speech stands
  clearly above the echo the canceller was expected to leave.
- Her command decoded together with the narration's remains ("<UNK> 멈춤") is no command as a whole. In a set it
  counts when the other words follow what was played (coherence_over their frames above MAX_COHERENCE) and the
  command's own frames, judged alone, may be hers (Listener._among_the_coachs). Live, before this, such utterances
  were about 6 of 27 of her commands missed at +6 dB in the two-device room (benchmarks/README.md).
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
# Speech whose recognised words rise and fall with what was played this closely (envelope_following over the words'
# frames) is the coach's, unless it stands this far above the expected echo (then the loudness is hers, whatever it
# follows). Offline, her commands over the narration reached above 0.8 twice in 82 at 0 dB, above 0.7 six times.
MAX_WORDS_ENVELOPE = 0.8
ENVELOPE_MARGIN_DB = 20.0
# The band coherence is judged over: where speech, and the recogniser, have their energy.
BAND_HZ = (300, 3400)
SEGMENT = 256
# Envelopes: the lags searched (the reference is lined up with the echo, but behind a system canceller the echo
# tracker may not find it), frames quieter than this are silence, and fewer played frames than this tell nothing.
ENVELOPE_LAG_S = 0.3
SILENT_DB = -70.0
MIN_PLAYED_FRAMES = 20


@dataclass(frozen=True)
class Judgement:
    """What was measured of an utterance, and why it is the coach's own voice (None: it may be hers)."""

    above_echo_db: float | None
    coherence: float | None
    own_voice: str | None
    # How closely the utterance's loudness follows what was played, 10 ms at a time (envelope_following): over the
    # whole utterance (measured only), and over its recognised words (the rule, MAX_WORDS_ENVELOPE).
    envelope: float | None = None
    words_envelope: float | None = None


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

    def judge(
        self,
        phrase: str,
        speech_db: float,
        frames: int,
        echo_plausible: bool = True,
        words: tuple[int, int] | None = None,
        end: int = 0,
    ) -> Judgement:
        """Is a command phrase, heard in the `frames` frames that end `end` frames before the newest at speech level
        speech_db, the coach's? echo_plausible: the expected echo is that of a canceller at work, no louder than what
        was played. words: the frames of the utterance (from its first) the recogniser placed the phrase's words in."""
        window = slice(max(len(self._cleaned) - end - frames, 0), len(self._cleaned) - end)
        expected = [e for e in list(self._echo_db)[window] if e > -math.inf]
        if not expected:
            # Nothing played: nothing of the coach to hear.
            return Judgement(None, None, None)
        echo_db = 10 * math.log10(float(np.mean(np.power(10.0, np.array(expected) / 10))))
        above = speech_db - echo_db
        cleaned_frames, played_frames = self._heard(window)
        cleaned = np.concatenate(cleaned_frames)
        coherent = coherence(cleaned, echo_of(played_frames, cleaned.size))
        envelope = envelope_following(cleaned_frames, played_frames)
        words_envelope = None
        if words is not None and words[1] > words[0]:
            # The played frames are cut to end where the words do, as envelope_following wants them.
            after = frames - min(words[1], frames)
            played_to = played_frames[: len(played_frames) - after] if after else played_frames
            words_envelope = envelope_following(cleaned_frames[words[0] : words[1]], played_to)
        # What the coach said over the whole utterance and just before it, also where the phrase is only part of it.
        before = frames + end + round(SAID_BEFORE_S / FRAME_S)
        said = any(said_in(phrase, text) for text in {t for texts in list(self._said)[-before:] for t in texts})
        why = why_own(above, coherent, words_envelope, said, echo_plausible)
        return Judgement(above, coherent, why, envelope, words_envelope)

    def _heard(self, window: slice) -> tuple[list[np.ndarray], list[np.ndarray]]:
        """The cleaned frames in a window of the history, and every played frame up to its end (echo_of and
        envelope_following line up what was played by where the window ends)."""
        return list(self._cleaned)[window], list(self._played)[: window.stop]

    def coherence_over(self, spans: list[tuple[int, int]], frames: int) -> float | None:
        """How much of the cleaned signal in these frames of the last `frames` (each span from the utterance's
        first frame) follows what was played where its echo came; None when nothing was played there."""
        cleaned: list[np.ndarray] = []
        played: list[np.ndarray] = []
        for first, last in spans:
            stop = len(self._cleaned) - (frames - min(last, frames))
            part, played_before = self._heard(slice(max(stop - (last - first), 0), stop))
            if not part:
                continue
            cleaned.append(np.concatenate(part))
            played.append(echo_of(played_before, cleaned[-1].size))
        if not cleaned or not any(p.any() for p in played):
            return None
        return coherence(np.concatenate(cleaned), np.concatenate(played))


def why_own(above: float, coherent: float, words_envelope: float | None, said: bool, plausible: bool) -> str | None:
    """Why an utterance measured so is the coach's own voice (None: it may be hers). said: the coach said the
    command's words over it or just before; plausible: the expected echo is that of a canceller at work."""
    if coherent > MAX_COHERENCE:
        return f"it follows what the coach played (coherence {coherent:.2f})"
    if words_envelope is not None and words_envelope > MAX_WORDS_ENVELOPE and above < ENVELOPE_MARGIN_DB:
        return f"its loudness follows what the coach played ({words_envelope:.2f} over its words)"
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


class EchoFollowing:
    """The microphone's blocks and what was played with them, where the echo was found, over the last `seconds`:
    how much of what was heard follows what was played (coherence, the played signal lined up by echo_of)."""

    def __init__(self, seconds: float) -> None:
        self._seconds = seconds
        self._heard: deque[tuple[np.ndarray, np.ndarray]] = deque()
        self._samples = 0

    def keep(self, mic: np.ndarray, played: np.ndarray) -> None:
        self._heard.append((mic, played))
        self._samples += mic.size
        while self._samples - self._heard[0][0].size >= self._seconds * RATE:
            self._samples -= self._heard.popleft()[0].size

    def share(self) -> float | None:
        """None: nothing kept."""
        if not self._heard:
            return None
        mic = np.concatenate([block for block, _ in self._heard])
        return coherence(mic, echo_of([played for _, played in self._heard], mic.size))

    def clear(self) -> None:
        self._heard.clear()
        self._samples = 0


def envelope_following(cleaned: list[np.ndarray], played: list[np.ndarray]) -> float | None:
    """The largest correlation between the loudness (dB, 10 ms frames) of the cleaned utterance and of what was
    played, over the lags 0 to ENVELOPE_LAG_S (the played frames end with the utterance's; earlier ones are what
    was played before). Unlike coherence it does not need the waveforms to match: what a system echo canceller's
    nonlinear suppression leaves of the coach still rises and falls with what was played, while her voice does not.
    None when too little was played over the utterance to tell."""
    mic_db = frame_levels(cleaned)
    played_db = frame_levels(played)
    n = mic_db.size
    best: float | None = None
    for lag in range(round(ENVELOPE_LAG_S / FRAME_S) + 1):
        end = played_db.size - lag
        if end - n < 0:
            break
        ref = played_db[end - n : end]
        if np.count_nonzero(ref > SILENT_DB) < MIN_PLAYED_FRAMES or ref.std() == 0 or mic_db.std() == 0:
            continue
        r = float(np.corrcoef(mic_db, ref)[0, 1])
        best = r if best is None else max(best, r)
    return best


def frame_levels(frames: list[np.ndarray]) -> np.ndarray:
    """Each frame's level in dB, floored at SILENT_DB."""
    power = np.array([float(np.dot(f, f)) / max(f.size, 1) for f in frames])
    return np.maximum(10 * np.log10(power + 1e-12), SILENT_DB)


def said_in(phrase: str, text: str) -> bool:
    """Whether a word of a command phrase is in a text the coach said: as a part of a word too ("fortsätt" is in
    "Vi fortsätter vila", "avsluta" in "Avslutat"), as the recogniser would hear it in the echo."""
    spoken = normalise(text).replace(" ", "")
    return any(len(word) > 1 and word in spoken for word in normalise(phrase).split())
