"""The listening pipeline: microphone (and played signal) in, detected commands out, all in audio time.

    microphone ─► echo canceller ─► noise suppressor ─► voice gate ─► utterance ─► level ─► recogniser
    played ───────────┘ (reference)                          ▲ residual echo level      ─► Detection

Fed blocks of any length at 16 kHz; it works in 10 ms frames. Nothing here knows about devices or threads:
the live shell and the offline `recognize` command feed it the same way.

An utterance is decoded whole at her first pause, not streamed into vosk as it comes, for two measured
reasons (benchmarks/listening.py). The model is sensitive to level (Korean model, commands spoken 12 dB
quieter: 64 % instead of 97 % recognised), and an utterance can only be brought to the level the model
likes once it has been heard. And vosk's partial results come in 240 ms steps whose last step still changes
words ("넘겨" became "멈춤"), so acting on a partial is either slow or wrong. Decoding a second of audio
takes about 25 ms here; she is heard 100 ms after she stops, not after vosk's 0.5 s end-point.

The noise suppressor (speexdsp's) is there for the same model: with fan noise 10 dB below the commands it
recognised 47 % of them undenoised and 95 % denoised. It also takes out the echo the canceller estimates it left
(speexdsp's residual echo suppressor), band by band: live in the two-device room, 30 minutes of narration alone,
what was decoded as a command and judged fell from 63 to 7, the nearest of them at coherence 0.42 instead of 0.16
(the rule refuses above 0.1), and 100 % of 20 commands were heard over it (95 % without; at +6 dB 90 against 65 %).
Offline, over three draws of benchmarks/listening.py's simulated room, 4 and 2 of 312 commands fewer at 0 and
-6 dB.

When the coach is idle the listener is strict instead of fast: only a phrase said on its own counts, since a
conversation or a radio must not start a session. With a grammar of a few phrases, the Korean model explains
any speech with command words, and its word confidences are as high on other speech as on commands; what
tells them apart is that a command stands alone. Measured (benchmarks/listening.py): on Swedish narration
played as a radio in the room, acting at the first pause accepted 103 commands in 10 minutes; requiring quiet
before and after, none in those 10 minutes and 4 in 30 (one phrase, "tjugo sekunder kvar"). In a session the
first pause is still acted on: a pause must be fast, and there the played signal tells the coach's voice apart.
"""

from __future__ import annotations

import logging
import math
import unicodedata
from collections import deque
from dataclasses import dataclass, replace

import numpy as np

from voicecoach.intents import Mode, Name
from voicecoach.listen.echo import EchoCanceller
from voicecoach.listen.matcher import Match
from voicecoach.listen.own_voice import MAX_COHERENCE, SAID_BEFORE_S, Judgement, OwnVoice
from voicecoach.listen.recognizer import GRAMMAR, CommandRecognizer
from voicecoach.listen.reference import Reference
from voicecoach.listen.speexdsp import SpeexDenoiser
from voicecoach.listen.vad import FRAME, FRAME_S, VoiceGate

log = logging.getLogger(__name__)

# Audio kept from before the gate opens, so the decoder hears the start of the first word, which is
# quieter than the gate's threshold.
PREROLL_S = 0.3
# The utterance is decoded once she has been quiet this long, without waiting for the gate's hangover
# or vosk's end-point. Should she go on, it is decoded again, whole, at the next pause.
PAUSE_S = 0.1
# Longer than any command: a gate open this long is listening to a conversation or a radio, so the
# utterance is ended and anything in it ignored.
MAX_UTTERANCE_S = 4.0
# Shorter speech than this is a knock or a breath, not a command: it is not decoded.
MIN_SPEECH_S = 0.15
# In a set a command is acted on at her first pause, unless its speech was shorter than this a syllable: then it
# waits for the gate to close, and is decoded again, whole, should she go on. A closure inside a word ("멈|춤",
# "fort|sätt") can look like her first pause over the narration: replayed recordings of the live rooms had her
# "멈춤" (pause) taken for "넘겨" (next) 5 times in about 20, each decoded from its first 0.16-0.25 s. With this,
# none, and 5 more of 63 commands heard in the two-device and one-clock rooms, for about 0.3 s (the gate's
# hangover) more on the few commands said that fast.
MIN_SYLLABLE_S = 0.15
# When the coach is idle only a deliberate phrase may start anything, so an utterance counts only when it stands
# alone: no speech for IDLE_QUIET_BEFORE_S before it and IDLE_QUIET_AFTER_S after it (so it is acted on a second
# after she stops, not at her first pause), and it lasts no longer than the phrase it decodes to plausibly
# takes: IDLE_BASE_S plus IDLE_SYLLABLE_S a syllable. espeak-ng's slowest commands took 0.76 of that.
# Measured on narration played as a radio: with 0.4 s of quiet either side (what the gate's hangover gives)
# 103 accepts in 10 minutes; 1 s before and 0.4 s after, 5; 1 s either side, 0 (2 s before alone: also 0).
IDLE_QUIET_BEFORE_S = 1.0
IDLE_QUIET_AFTER_S = 1.0
IDLE_BASE_S = 0.5
IDLE_SYLLABLE_S = 0.3
# A one-word idle phrase ("hjälp") is the easiest for other speech to become: vosk must be this sure of it.
# Every espeak-ng "help" the Korean model heard, clean or at 5 dB SNR, had 0.9 or more.
IDLE_ONE_WORD_CONFIDENCE = 0.9
# The level speech is brought to before decoding (dB full scale, over its loud frames): the middle of the
# range where the Korean model recognised best (-25 to -15 dB). Never amplified more than MAX_GAIN_DB.
TARGET_DB = -20.0
MAX_GAIN_DB = 40.0
# Frames within this much of the loudest count as the utterance's speech when measuring its level.
SPEECH_RANGE_DB = 20.0
# Frames of history kept to tell the coach's own voice from hers: the longest utterance, the time before it in
# which the coach may have said its words, and the preroll.
HISTORY_S = MAX_UTTERANCE_S + SAID_BEFORE_S + PREROLL_S
# Letters that are vowels once their accents are split off ("å", "ä", "ö" are "a", "a", "o").
VOWELS = frozenset("aeiouy")


@dataclass(frozen=True)
class Detection:
    """A command heard: what it means, and when (seconds of audio since listening began)."""

    intent: Name
    phrase: str
    exercise: str | None
    confidence: float
    speech_start: float
    speech_end: float
    emitted_at: float
    minutes: int | None = None
    # How far her speech stood above the echo the canceller was expected to leave, and how coherent it was with
    # what was played (None: nothing was playing).
    above_echo_db: float | None = None
    coherence: float | None = None
    envelope: float | None = None
    words_envelope: float | None = None

    def as_json(self) -> dict[str, object]:
        data: dict[str, object] = {
            "intent": self.intent,
            "phrase": self.phrase,
            "confidence": round(self.confidence, 3),
            "speech_start": round(self.speech_start, 3),
            "speech_end": round(self.speech_end, 3),
            "emitted_at": round(self.emitted_at, 3),
        }
        if self.exercise is not None:
            data["exercise"] = self.exercise
        if self.minutes is not None:
            data["minutes"] = self.minutes
        if self.above_echo_db is not None:
            data["above_echo_db"] = round(self.above_echo_db, 1)
        if self.coherence is not None:
            data["coherence"] = round(self.coherence, 3)
        if self.envelope is not None:
            data["envelope"] = round(self.envelope, 3)
        if self.words_envelope is not None:
            data["words_envelope"] = round(self.words_envelope, 3)
        return data


class Listener:
    """Turns microphone audio (with the played signal, when there is one) into Detections."""

    def __init__(
        self,
        recognizer: CommandRecognizer,
        echo: EchoCanceller | None = None,
        gate: VoiceGate | None = None,
        state: str = Mode.IDLE,
    ) -> None:
        self.recognizer = recognizer
        self.echo = echo
        self.gate = gate or VoiceGate()
        self.state = state
        self._denoiser = SpeexDenoiser()
        self._frames = 0
        self._mic = np.zeros(0, dtype=np.float32)
        self._played = np.zeros(0, dtype=np.float32)
        self._preroll: deque[np.ndarray] = deque(maxlen=round(PREROLL_S / FRAME_S))
        self._utterance: list[np.ndarray] = []
        self._start_frame = 0
        self._last_speech_frame = 0
        self._done = True  # the current utterance has given its command, or been given up on
        self._decided = False  # the utterance so far has been decoded
        self._pending: Detection | None = None
        # The last frame of speech the gate was open for, before the current utterance: at first, never.
        self._last_heard = -(10**9)
        self._quiet_before = math.inf
        # An idle command, heard, that waits for the quiet after it (until frame _held_until).
        self._held: Detection | None = None
        self._held_until = 0
        self._own_voice = OwnVoice(HISTORY_S)

    @property
    def time(self) -> float:
        """Seconds of audio taken so far."""
        return self._frames * FRAME_S

    def feed(self, mic: np.ndarray, reference: Reference | None = None) -> list[Detection]:
        """Take the next microphone samples (float32, 16 kHz) and what was played meanwhile, lined up with its echo
        (PlayedSignal.take); the commands they end."""
        self._mic = np.concatenate((self._mic, mic))
        said: tuple[str, ...] = ()
        found = True
        if reference is not None:
            said, found = reference.texts, reference.found
            if reference.moved and self.echo is not None:
                self.echo.reset()
        if self.echo is not None:
            played = reference.samples if reference is not None else np.zeros(mic.size, dtype=np.float32)
            self._played = np.concatenate((self._played, played))
        detections: list[Detection] = []
        usable = self._mic.size // FRAME * FRAME
        for start in range(0, usable, FRAME):
            detections += self._frame(
                self._mic[start : start + FRAME], self._played[start : start + FRAME], said, found
            )
        self._mic = self._mic[usable:]
        self._played = self._played[usable:]
        return detections

    def flush(self) -> list[Detection]:
        """End of input: decide an utterance still open. The end counts as quiet after it."""
        found = [self._held] if self._held is not None else []
        self._held = None
        if not self._done:
            detection = self._pending or (None if self._decided else self._decide(final=True))
            self._done = True
            found += [detection] if detection is not None else []
        return found

    def _frame(self, mic: np.ndarray, played: np.ndarray, said: tuple[str, ...], echo_found: bool) -> list[Detection]:
        echo_db = -math.inf
        if self.echo is not None:
            mic, echo_db = self.echo.process(mic, played, echo_found)
            self._own_voice.push(mic, played, echo_db, said)
        mic = self._denoiser.process(mic, self.echo.cleaned_by if self.echo is not None else None)
        self.gate.push(mic, echo_db)
        self._frames += 1
        if self.gate.since_speech == 0:
            self._last_speech_frame = self._frames
            if self.gate.is_open and not self.gate.opened and self._speech_s() >= MIN_SPEECH_S:
                # Speech, not a burst of noise that opened the gate: what came after a command was not quiet.
                self._last_heard = self._frames
                self._held = None
        found = self._release()
        if self.gate.opened:
            self._preroll.append(mic)
            self._begin()
            return found
        if self._done:
            if not self.gate.is_open:
                self._preroll.append(mic)
            return found
        self._utterance.append(mic)
        if self.gate.since_speech == 0:
            # She went on after a pause: what was decided was only the first part.
            self._decided = False
            self._pending = None
        detection = None
        if not self._decided and self.gate.since_speech >= round(PAUSE_S / FRAME_S):
            detection = self._decide(final=self.gate.closed and self.state != Mode.IDLE)
        if self.gate.closed and detection is None and self._pending is not None:
            # Acted on now, not when it was decoded.
            detection = replace(self._pending, emitted_at=self.time)
            if self.state == Mode.IDLE:
                # Held until the room has been quiet IDLE_QUIET_AFTER_S, and dropped should anything follow.
                self._held, detection = detection, None
                self._held_until = self._last_speech_frame + round(IDLE_QUIET_AFTER_S / FRAME_S)
                found += self._release()
        if detection is not None or self.gate.closed or len(self._utterance) * FRAME_S > MAX_UTTERANCE_S:
            self._done = True
            self._preroll.clear()
        return [*found, detection] if detection is not None else found

    def _speech_s(self) -> float:
        """How long the current utterance's speech has lasted, from the gate's opening to its last speech."""
        return (self._last_speech_frame - self._start_frame) * FRAME_S

    def _release(self) -> list[Detection]:
        """The held idle command, once the quiet after it has lasted long enough."""
        if self._held is None or self._frames < self._held_until:
            return []
        detection, self._held = replace(self._held, emitted_at=self.time), None
        return [detection]

    def _begin(self) -> None:
        self._start_frame = self._frames - self.gate.settings.onset_frames
        self._quiet_before = (self._start_frame - self._last_heard) * FRAME_S
        self._utterance = list(self._preroll)
        self._preroll.clear()
        self._done = False
        self._decided = False
        self._pending = None

    def _decide(self, final: bool) -> Detection | None:
        """Decode the utterance so far. In a session, a command that a longer one starts with waits for the gate
        to close ("starta" in "starta styrka"); any other is acted on at once. When idle, every command waits,
        and only one that stands alone counts (see IDLE_QUIET_BEFORE_S)."""
        self._decided = True
        speech_s = self._speech_s()
        if speech_s < MIN_SPEECH_S:
            return None
        idle = self.state == Mode.IDLE
        if idle and self._quiet_before < IDLE_QUIET_BEFORE_S:
            return None
        utterance = np.concatenate(self._utterance)
        match = self.recognizer.decode(pcm16(normalised(utterance)), self.state)
        if match is None and not idle and self.echo is not None:
            among = self._among_the_coachs()
            if among is not None:
                return self._decided_on(*among, speech_s=speech_s, final=final)
        if match is None:
            if not idle:
                # What a missed command became ("<UNK> 멈춤", nothing): the cause the log had no line for. In a set
                # only, and at DEBUG (--explain), since in open vocabulary it is what was said in the room.
                log.debug("not a command: %r, from %.2f s of speech", self.recognizer.heard, speech_s)
            return None
        words = None
        if match.span is not None:
            words = (math.floor(match.span[0] / FRAME_S), math.ceil(match.span[1] / FRAME_S))
        level = speech_level_db(utterance)
        judgement = self._own_voice.judge(match.phrase, level, len(self._utterance), self._plausible(), words)
        if judgement.own_voice is not None:
            log.info("ignored %r: %s%s", match.phrase, judgement.own_voice, figures(judgement))
            return None
        return self._decided_on(match, judgement, speech_s=speech_s, final=final)

    def _decided_on(self, match: Match, judgement: Judgement, speech_s: float, final: bool) -> Detection | None:
        """A command heard and judged hers: acted on now, or kept until she stops (see _decide)."""
        idle = self.state == Mode.IDLE
        if idle and speech_s > IDLE_BASE_S + IDLE_SYLLABLE_S * syllables(match.phrase):
            return None
        if idle and len(match.phrase.split()) == 1 and match.confidence < IDLE_ONE_WORD_CONFIDENCE:
            return None
        # Too short for its syllables: a fragment of a longer word, which waits (see MIN_SYLLABLE_S).
        fragment = speech_s < MIN_SYLLABLE_S * syllables(match.phrase)
        waits = not final and (idle or fragment or self.recognizer.matcher.continues(match.phrase, self.state))
        if judgement.above_echo_db is not None:
            # One that waits may yet be replaced by the whole word she goes on to say: "accepted" for it made one
            # command read as two in the log ("넘겨", then "멈춤").
            until = " until she stops (more of it may follow)" if waits else ""
            log.info(
                "%s %r over the coach%s%s", "held" if waits else "accepted", match.phrase, until, figures(judgement)
            )
        detection = self._detection(match, judgement)
        if waits:
            self._pending = detection
            return None
        return detection

    def _plausible(self) -> bool:
        # An expected echo louder than what was played is a gain stage's doing (a system canceller's AGC) only where
        # the microphone hears almost no echo; where it hears one, it is the estimate before the canceller has
        # learnt the path, and the floor on it is what keeps the narration out then (the one-clock room's false
        # "next", 6.5 dB under it, was let through).
        return self.echo is None or not self.echo.gain_in_front

    def _among_the_coachs(self) -> tuple[Match, Judgement] | None:
        """Her command decoded together with the narration's remains ("<UNK> 멈춤", "넘어가 멈춤"), which as a
        whole is no command: the command, when the other words follow what was played (the coach's, by the bar that
        refuses the coach's own voice) and its own words, judged alone, may be hers. One such command, or none."""
        words = self.recognizer.words
        if len(words) < 2:
            return None
        frames = len(self._utterance)
        spans = [(math.floor(w.start / FRAME_S), min(math.ceil(w.end / FRAME_S), frames)) for w in words]
        exact = self.recognizer.mode == GRAMMAR
        found: list[tuple[Match, Judgement]] = []
        for i, j, command in self.recognizer.matcher.runs([w.text for w in words], self.state, exact):
            rest = self._own_voice.coherence_over(spans[:i] + spans[j:], frames)
            first, last = spans[i][0], spans[j - 1][1]
            if rest is None or last <= first:
                continue
            heard = self.recognizer.heard
            if rest <= MAX_COHERENCE:
                # Her other words, or the coach's that no longer follow what was played: --explain says which.
                log.debug(
                    "not a command: %r in %r, the rest not following what was played (coherence %.2f)",
                    command.phrase,
                    heard,
                    rest,
                )
                continue
            level = speech_level_db(np.concatenate(self._utterance[first:last]))
            judgement = self._own_voice.judge(
                command.phrase, level, last - first, self._plausible(), (0, last - first), end=frames - last
            )
            if judgement.own_voice is not None:
                log.info("ignored %r in %r: %s%s", command.phrase, heard, judgement.own_voice, figures(judgement))
                continue
            why = f"the rest following what was played (coherence {rest:.2f})"
            log.info("found %r in %r, %s%s", command.phrase, heard, why, figures(judgement))
            found.append((Match(command.intent, command.phrase, command.exercise, 1.0, command.minutes), judgement))
        return found[0] if len(found) == 1 else None

    def _detection(self, match: Match, judgement: Judgement) -> Detection:
        return Detection(
            intent=match.intent,
            phrase=match.phrase,
            exercise=match.exercise,
            confidence=match.confidence,
            speech_start=self._start_frame * FRAME_S,
            speech_end=self._last_speech_frame * FRAME_S,
            emitted_at=self.time,
            minutes=match.minutes,
            above_echo_db=judgement.above_echo_db,
            coherence=judgement.coherence,
            envelope=judgement.envelope,
            words_envelope=judgement.words_envelope,
        )


def figures(judgement: Judgement) -> str:
    """What was measured of an utterance heard while the coach spoke, for the log."""
    parts = [f"{judgement.above_echo_db:.1f} dB over the echo", f"coherence {judgement.coherence:.2f}"]
    if judgement.envelope is not None:
        parts.append(f"envelope {judgement.envelope:.2f}")
    if judgement.words_envelope is not None:
        parts.append(f"over its words {judgement.words_envelope:.2f}")
    return f" [{', '.join(parts)}]"


def speech_level_db(audio: np.ndarray) -> float:
    """The level of the speech in audio (dB full scale): the mean power of its frames within SPEECH_RANGE_DB of the
    loudest, so that the pauses between words do not count."""
    frames = audio[: audio.size // FRAME * FRAME].reshape(-1, FRAME)
    if frames.size == 0:
        return -math.inf
    power = np.mean(np.square(frames, dtype=np.float64), axis=1)
    loud = power >= power.max() * 10 ** (-SPEECH_RANGE_DB / 10)
    return 10 * math.log10(float(power[loud].mean()) + 1e-12)


def normalised(audio: np.ndarray) -> np.ndarray:
    """audio scaled so that its speech is at TARGET_DB, amplified by at most MAX_GAIN_DB."""
    level = speech_level_db(audio)
    if level == -math.inf:
        return audio
    gain_db = min(TARGET_DB - level, MAX_GAIN_DB)
    return audio * np.float32(10 ** (gain_db / 20))


def syllables(phrase: str) -> int:
    """How many syllables a phrase has, roughly: a Hangul block is one, elsewhere a run of vowels is one."""
    count = 0
    vowel_before = False
    for letter in unicodedata.normalize("NFC", phrase.lower()):
        if "\uac00" <= letter <= "\ud7a3":
            count += 1
            vowel_before = False
            continue
        vowel = unicodedata.normalize("NFD", letter)[:1] in VOWELS
        count += vowel and not vowel_before
        vowel_before = vowel
    return max(count, 1)


def pcm16(audio: np.ndarray) -> bytes:
    return (np.clip(audio, -1.0, 1.0) * 32767.0).astype("<i2").tobytes()
