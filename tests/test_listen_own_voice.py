"""Telling what the echo canceller left of the coach from her voice: coherence with what was played, and the coach's
own command words. Synthetic signals; the real model's view is in test_listen_model.py."""

from __future__ import annotations

import math

import numpy as np
import pytest

from voicecoach.listen.own_voice import (
    ENVELOPE_MARGIN_DB,
    MAX_COHERENCE,
    MAX_WORDS_ENVELOPE,
    MIN_ABOVE_ECHO_DB,
    SELF_MARGIN_DB,
    OwnVoice,
    coherence,
    envelope_following,
    said_in,
    why_own,
)
from voicecoach.listen.reference import LEAD_S
from voicecoach.listen.resample import RATE
from voicecoach.listen.vad import FRAME, level_db

rng = np.random.default_rng(3)


def noise(seconds: float, level: float = 0.1) -> np.ndarray:
    return (rng.standard_normal(int(seconds * RATE)) * level).astype(np.float32)


def filtered(signal: np.ndarray) -> np.ndarray:
    """signal through a short echo path the canceller did not quite learn: a delay and two reflections."""
    response = np.zeros(64, dtype=np.float32)
    response[[3, 17, 40]] = (0.5, -0.3, 0.1)
    return np.convolve(signal, response)[: signal.size].astype(np.float32)


@pytest.mark.parametrize(
    ("phrase", "text", "said"),
    [
        ("paus", "Paus.", True),
        ("fortsätt", "Vi fortsätter vila.", True),
        ("avsluta", "Avslutat.", True),
        ("stopp", "Avslutat.", False),
        ("nästa", "Vi går vidare.", False),
        ("hur många kvar", "Tre kvar", True),
        ("starta träning", "Säg starta träning när du är redo.", True),
        ("멈춤", "멈춤.", True),
        ("계속해", "계속해 쉬어요.", True),
        ("정지", "천천히 풀어요", False),
    ],
)
def test_a_command_word_is_found_in_what_the_coach_said_even_inside_a_longer_word(
    phrase: str, text: str, said: bool
) -> None:
    assert said_in(phrase, text) is said


def test_what_follows_the_played_signal_is_coherent_with_it_and_her_voice_is_not() -> None:
    played = noise(1.0)
    assert coherence(filtered(played), played) > 0.9
    assert coherence(noise(1.0), played) < 0.05
    # Her voice 10 dB above what the canceller left: mostly hers.
    mixed = filtered(played) * 0.1 + noise(1.0, 0.1 * 10 ** (10 / 20) * 0.5)
    assert coherence(mixed, played) < MAX_COHERENCE


def test_coherence_of_too_little_audio_or_silence_is_nothing() -> None:
    assert coherence(noise(0.01), noise(0.01)) == 0.0
    assert coherence(noise(1.0), np.zeros(RATE, dtype=np.float32)) == 0.0


def handed_over(played: np.ndarray) -> np.ndarray:
    """The played signal as PlayedSignal hands it over with the microphone: LEAD_S ahead of its echo."""
    lead = round(LEAD_S * RATE)
    return np.concatenate((played[lead:], np.zeros(lead, dtype=np.float32)))


def push(own: OwnVoice, cleaned: np.ndarray, played: np.ndarray, echo_db: float, said: tuple[str, ...] = ()) -> int:
    """Push the cleaned microphone signal and the played signal whose echo is in it, as the listener does."""
    frames = 0
    reference = handed_over(played)
    for i in range(0, cleaned.size - FRAME + 1, FRAME):
        own.push(cleaned[i : i + FRAME], reference[i : i + FRAME], echo_db, said)
        frames += 1
    return frames


def test_an_utterance_that_follows_what_was_played_where_its_echo_came_is_the_coachs() -> None:
    own = OwnVoice(5.0)
    played = noise(0.8)
    residual = filtered(played) * 0.05
    frames = push(own, residual, played, echo_db=level_db(residual) - 3)
    judgement = own.judge("정지", level_db(residual), frames)
    assert judgement.own_voice is not None and "follows what the coach played" in judgement.own_voice
    assert judgement.coherence is not None and judgement.coherence > 0.9
    # The reference comes LEAD_S ahead of its echo: compared sample for sample as handed over, an echo that was all
    # there looked unrelated to what was played (0.04-0.73 in the two-device room's recordings).
    assert coherence(residual, handed_over(played)) < MAX_COHERENCE


def test_her_voice_over_the_narration_is_hers() -> None:
    own = OwnVoice(5.0)
    played = noise(0.8)
    hers = noise(0.8, 0.05) + filtered(played) * 0.005
    frames = push(own, hers, played, echo_db=level_db(played) - 30)
    judgement = own.judge("정지", level_db(hers), frames)
    assert judgement.own_voice is None
    assert judgement.above_echo_db is not None and judgement.above_echo_db > SELF_MARGIN_DB


def test_part_of_an_utterance_is_judged_by_its_own_frames() -> None:
    """The coach's remains, then her word, then the coach's again, in one utterance: each part is measured over
    its own frames, lined up with what was played where their echo came."""
    own = OwnVoice(5.0)
    played = noise(1.8)
    residual = filtered(played) * 0.05
    hers = noise(0.6, 0.05)
    heard = np.concatenate((residual[:16000], hers[:9600], residual[25600:]))
    frames = push(own, heard, played, echo_db=level_db(residual) - 3)
    first, mine, last = (0, 100), (100, 160), (160, frames)
    coach = own.coherence_over([first, last], frames)
    assert coach is not None and coach > 0.9
    her_part = own.coherence_over([mine], frames)
    assert her_part is not None and her_part < MAX_COHERENCE
    judged = own.judge("정지", level_db(hers), mine[1] - mine[0], end=frames - mine[1])
    assert judged.own_voice is None and judged.coherence is not None and judged.coherence < MAX_COHERENCE
    judged = own.judge("정지", level_db(residual), first[1] - first[0], end=frames - first[1])
    assert judged.own_voice is not None and "follows what the coach played" in judged.own_voice
    # Nothing played over it: nothing to follow.
    silent = OwnVoice(5.0)
    frames = push(silent, heard, np.zeros_like(played), echo_db=-math.inf)
    assert silent.coherence_over([first], frames) is None


def test_the_coachs_own_word_counts_only_well_above_its_echo() -> None:
    played = noise(0.8)
    word = noise(0.8, 0.01)
    expected = level_db(word) - 4  # her word, or what is left of the coach's, 4 dB above the expected echo
    own = OwnVoice(5.0)
    frames = push(own, word, played, expected, said=("Paus.",))
    judgement = own.judge("paus", level_db(word), frames)
    assert judgement.own_voice is not None and "just said it" in judgement.own_voice
    # Not said by the coach: the same utterance may be hers.
    other = OwnVoice(5.0)
    frames = push(other, word, played, expected, said=("Vila",))
    assert other.judge("paus", level_db(word), frames).own_voice is None
    # Said, but far above the echo: hers.
    loud = OwnVoice(5.0)
    frames = push(loud, word, played, level_db(word) - SELF_MARGIN_DB - 5, said=("Paus.",))
    assert loud.judge("paus", level_db(word), frames).own_voice is None


def test_an_utterance_no_louder_than_the_expected_echo_is_the_echo_unless_that_estimate_is_no_echo() -> None:
    played = noise(0.8)
    word = noise(0.8, 0.01)  # not coherent with what was played, and not a word the coach said
    under = OwnVoice(5.0)
    frames = push(under, word, played, level_db(word) - MIN_ABOVE_ECHO_DB + 1)
    judgement = under.judge("정지", level_db(word), frames)
    assert judgement.own_voice is not None and "no louder than the coach's echo" in judgement.own_voice
    assert judgement.coherence is not None and judgement.coherence < MAX_COHERENCE
    # Just above it: it may be hers.
    over = OwnVoice(5.0)
    frames = push(over, word, played, level_db(word) - MIN_ABOVE_ECHO_DB - 1)
    assert over.judge("정지", level_db(word), frames).own_voice is None
    # An expected echo louder than what was played is her voice and a gain stage in the estimate, not the echo.
    assert under.judge("정지", level_db(word), frames, echo_plausible=False).own_voice is None


def test_the_coachs_word_said_just_before_the_utterance_still_counts() -> None:
    own = OwnVoice(5.0)
    played = noise(1.0)
    word = noise(0.6, 0.01)
    expected = level_db(word) - 4
    push(own, np.zeros(int(0.3 * RATE), dtype=np.float32), played, expected, said=("Paus.",))
    frames = push(own, word, played, expected)
    assert own.judge("paus", level_db(word), frames).own_voice is not None


def test_nothing_played_means_nothing_of_the_coach_to_hear() -> None:
    own = OwnVoice(5.0)
    word = noise(0.5)
    frames = push(own, word, np.zeros(word.size, dtype=np.float32), -math.inf, said=("Paus.",))
    judgement = own.judge("paus", level_db(word), frames)
    assert judgement == judgement.__class__(None, None, None)


def syllables(seconds: float, rate_hz: float, phase: float) -> np.ndarray:
    """Noise whose loudness rises and falls like speech (rate_hz syllables a second, with pauses)."""
    t = np.arange(int(seconds * RATE)) / RATE
    envelope = np.clip(np.sin(2 * math.pi * rate_hz * t + phase), 0, None) ** 2
    return (noise(seconds) * envelope).astype(np.float32)


def frames(signal: np.ndarray) -> list[np.ndarray]:
    return [signal[i : i + FRAME] for i in range(0, signal.size - FRAME + 1, FRAME)]


def test_what_a_nonlinear_canceller_leaves_follows_the_played_loudness_and_her_voice_does_not() -> None:
    played = syllables(3.0, 3.0, 0.0)
    # A system canceller's suppression: what is left has none of the played waveform (fresh noise), only its rise
    # and fall, 40 ms late and squashed.
    delay = 4 * FRAME
    residual = np.zeros_like(played)
    residual[delay:] = noise(3.0)[: played.size - delay] * np.sqrt(np.abs(played[:-delay]))
    hers = syllables(3.0, 2.3, 1.0)
    utterance = slice(played.size - 150 * FRAME, played.size)
    follows = envelope_following(frames(residual[utterance]), frames(played))
    assert coherence(residual[utterance], played[utterance]) < MAX_COHERENCE
    assert follows is not None and follows > 0.5, follows
    not_hers = envelope_following(frames(hers[utterance]), frames(played))
    assert not_hers is not None and not_hers < 0.5, not_hers


def test_the_envelope_of_an_utterance_over_silence_tells_nothing() -> None:
    silence = np.zeros(int(2.0 * RATE), dtype=np.float32)
    assert envelope_following(frames(syllables(1.0, 3.0, 0.0)), frames(silence)) is None


def test_recognised_words_whose_loudness_follows_what_was_played_are_the_coachs_unless_far_above_its_echo() -> None:
    played = syllables(3.0, 3.0, 0.0)
    delay = 4 * FRAME
    residual = np.zeros_like(played)
    residual[delay:] = noise(3.0)[: played.size - delay] * np.sqrt(np.abs(played[:-delay])) * 0.1
    # The utterance: her voice for its first second, then what the canceller left of the coach, which the
    # recogniser may take for a command word.
    utterance = residual.copy()
    utterance[:RATE] = syllables(1.0, 2.3, 1.0) * 0.1
    speech_db = level_db(utterance)

    def judged(echo_db: float, words: tuple[int, int]) -> str | None:
        own = OwnVoice(5.0)
        count = push(own, utterance, played, echo_db)
        judgement = own.judge("정지", speech_db, count, words=words)
        assert judgement.coherence is not None and judgement.coherence < MAX_COHERENCE
        return judgement.own_voice

    coach, hers = (150, 300), (0, 100)
    why = judged(speech_db - 10, coach)
    assert why is not None and "loudness follows" in why
    assert judged(speech_db - 10, hers) is None
    # The whole window, her voice and the coach's remains, is not judged by its loudness.
    assert judged(speech_db - 10, (0, 300)) is None
    assert judged(speech_db - ENVELOPE_MARGIN_DB - 1, coach) is None


@pytest.mark.parametrize(
    ("coherent", "words", "above"),
    # Her stops and pause in the two-device room at 0 and +6 dB (2026-12-03, d29f0be), refused until then as the
    # coach's by the two weaker signs together: some coherence, loudness following over the words, under 12 dB.
    [(0.06, 0.63, 11.9), (0.06, 0.54, 7.4), (0.09, 0.54, 7.7)],
)
def test_her_commands_with_a_little_coherence_and_loudness_that_follows_are_hers(
    coherent: float, words: float, above: float
) -> None:
    """Since the residual echo suppressor, the two weaker signs together refused none of the narration's remains live
    (385 detections logged, 38 results files) and these of her commands: under both bars, over the echo, it is hers."""
    assert why_own(above, coherent, words, said=False, plausible=True) is None
    # The rules that stand still refuse them, past their own bars.
    assert why_own(above, MAX_COHERENCE + 0.01, words, said=False, plausible=True) is not None
    assert why_own(above, coherent, MAX_WORDS_ENVELOPE + 0.01, said=False, plausible=True) is not None
    assert why_own(MIN_ABOVE_ECHO_DB - 0.5, coherent, words, said=False, plausible=True) is not None
