"""`voicecoach check audio`'s measurement: a quiet moment, then a test phrase played on the speaker while the
microphone listens, through the same reference and canceller the coach listens with."""

from __future__ import annotations

import queue
from collections.abc import Callable

import numpy as np

from voicecoach.listen import RATE, EchoCanceller, PlayedSignal
from voicecoach.listen.own_voice import EchoFollowing
from voicecoach.listen.report import EchoReport, report
from voicecoach.listen.vad import FRAME
from voicecoach.sound.audio import InputStream, OutputStream
from voicecoach.sound.mixer import Mixer, Scheduled

# The room is listened to this long before the test phrase, for its noise floor.
QUIET_S = 2.0
# After the phrase the room still rings; the canceller is followed this long more.
AFTER_S = 1.0
# Only guards against a stream that died.
STALLED_S = 5.0


def measure(
    clip: np.ndarray,
    mixer: Mixer,
    open_speaker: Callable[[Mixer], OutputStream],
    open_microphone: Callable[[Callable[[np.ndarray, float | None], object]], InputStream],
) -> EchoReport:
    """Play clip (at the mixer's rate) after QUIET_S of silence and measure its echo in the microphone."""
    played = PlayedSignal(mixer.rate)
    mixer.add_tap(played.tap)
    canceller = EchoCanceller()
    blocks: queue.SimpleQueue[tuple[np.ndarray, float | None]] = queue.SimpleQueue()
    with open_speaker(mixer), open_microphone(lambda block, at: blocks.put((block, at))):
        played.restart()
        heard = 0
        total = round((QUIET_S + clip.size / mixer.rate + AFTER_S) * RATE)
        scheduled = False
        # From the phrase on, where the echo was found (before that the played signal is not lined up with the
        # echo, and hardly follows it): all of it.
        following = EchoFollowing(total / RATE)
        while heard < total:
            block, at = blocks.get(timeout=STALLED_S)
            if not scheduled and heard >= QUIET_S * RATE:
                mixer.schedule([Scheduled(mixer.position + mixer.seconds_to_sample(0.05), clip)])
                scheduled = True
            reference = played.take(block, at)
            if reference.moved:
                canceller.reset()
            # The input stream's blocks are whole frames (audio.INPUT_BLOCK_FRAMES).
            for start in range(0, block.size - FRAME + 1, FRAME):
                frame = slice(start, start + FRAME)
                canceller.process(block[frame], reference.samples[frame], reference.found)
                if scheduled and reference.found:
                    following.keep(block[frame], reference.samples[frame])
            heard += block.size
    return report(canceller.meter, played.echo_delay_s, played.drift, following.share())
