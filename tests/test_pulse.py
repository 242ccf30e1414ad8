"""The harness itself: what the tests say into the virtual microphone reaches the coach whole."""

from __future__ import annotations

import time
import wave
from pathlib import Path

import numpy as np
import pytest
from pulse import PulseServer

from voicecoach.sound.audio import INPUT_BLOCK_FRAMES

RATE = 16000
PLAYS = 4
# The start of each play looked for in the recording: shorter than what a null sink's rewind took (90-100 ms).
HEAD_S = 0.08


def burst(seconds: float, seed: int) -> np.ndarray:
    """Noise kept under 4 kHz (a moving average), so that resampling to the sink's rate and back keeps it."""
    noise = np.random.default_rng(seed).standard_normal(round(seconds * RATE) + 3)
    return (np.convolve(noise, np.ones(4) / 4, "valid") * 0.1).astype(np.float32)


def best_match(recording: np.ndarray, template: np.ndarray) -> float:
    """The highest normalised correlation of template with any stretch of recording."""
    energy = np.sqrt(np.convolve(np.square(recording, dtype=np.float64), np.ones(template.size), "valid"))
    scores = np.correlate(recording, template, "valid") / (energy * np.linalg.norm(template) + 1e-12)
    return float(scores.max())


@pytest.mark.audio
def test_the_start_of_what_is_said_reaches_a_portaudio_recording(pulse: PulseServer, tmp_path: Path) -> None:
    import sounddevice as sd

    said = [burst(0.5, seed) for seed in range(PLAYS)]
    wavs = []
    for index, samples in enumerate(said):
        wavs.append(tmp_path / f"said-{index}.wav")
        with wave.open(str(wavs[-1]), "wb") as out:
            out.setnchannels(1)
            out.setsampwidth(2)
            out.setframerate(RATE)
            out.writeframes((samples * 32767).astype("<i2").tobytes())
    blocks: list[np.ndarray] = []
    # As the coach records: PortAudio's ALSA `pulse` device, in blocks of INPUT_BLOCK_FRAMES.
    with sd.InputStream(
        device="pulse",
        samplerate=RATE,
        channels=1,
        dtype="float32",
        blocksize=INPUT_BLOCK_FRAMES,
        callback=lambda data, *_: blocks.append(data[:, 0].copy()),
    ):
        time.sleep(0.5)
        for wav in wavs:
            assert pulse.play(wav).wait(timeout=30) == 0
            time.sleep(0.3)
    recording = np.concatenate(blocks)
    head = round(HEAD_S * RATE)
    starts = [round(best_match(recording, samples[:head]), 2) for samples in said]
    ends = [round(best_match(recording, samples[-head:]), 2) for samples in said]
    assert min(ends) > 0.9, f"the plays were not recorded at all: their ends matched {ends}"
    assert min(starts) > 0.9, f"the start of a play was lost: their first {HEAD_S} s matched {starts}"
