"""Offline renders: the mixer puts every clip at its cue's sample, using real espeak-ng speech."""

import json
from pathlib import Path

import numpy as np
import pytest

from voicecoach import config, paths
from voicecoach.cli.main import RENDER_RATE, main
from voicecoach.config import DEFAULT_RATE_WPM
from voicecoach.engine.language import load_pack
from voicecoach.engine.programme import STRENGTH
from voicecoach.engine.timeline import TICK
from voicecoach.sound.clips import ClipCache, read_wav
from voicecoach.sound.mixer import Mixer, Scheduled
from voicecoach.sound.speech import configured_cache

pytestmark = pytest.mark.speech
QUANTUM = 1.5 / 32768  # one 16-bit step, and a little rounding


def exact_start(samples: np.ndarray, clip: np.ndarray, position: float) -> int | None:
    """Where the clip lies sample for sample. The timeline prints t in microseconds, so the cue's sample
    may be the neighbour of round(t * rate) when t * rate falls on a half."""
    for start in (round(position), round(position) - 1, round(position) + 1):
        played = samples[start : start + clip.size]
        if played.size == clip.size and np.max(np.abs(played - clip)) <= QUANTUM:
            return start
    return None


def timeline(capsys, *args):
    assert main(["session", *args, "--timeline"]) == 0
    return [json.loads(line) for line in capsys.readouterr().out.splitlines()]


@pytest.fixture(params=["espeak", "piper"])
def voice_config(request: pytest.FixtureRequest, state_dir: Path, tmp_path: Path) -> list[str]:
    """The arguments that make a set speak with espeak-ng (none), or with the tests' Piper voice."""
    if request.param == "espeak":
        return []
    pytest.importorskip("onnxruntime", reason="the optional extra [piper] (onnxruntime) is not installed")
    pytest.importorskip("onnx", reason="onnx, which builds the test voice, is not installed (scripts/install --test)")
    import piper_model

    voice = piper_model.build_voice(paths.voices_dir(state_dir))
    file = tmp_path / "piper.toml"
    file.write_text(f'[speech]\nengine = "piper"\nvoice = "{voice.stem}"\n')
    return ["--config", str(file)]


@pytest.mark.parametrize(
    "args",
    [
        ["strength", "--reps", "2"],
        ["speed", "--reps", "3"],
        ["endurance", "--hold", "15", "--reps", "2", "--rest", "12"],
    ],
    ids=["strength", "speed", "endurance"],
)
def test_every_cue_starts_at_its_exact_sample_in_the_render(args, voice_config, tmp_path, capsys):
    every_cue_at_its_sample(args, voice_config, tmp_path, capsys)


def test_every_tick_starts_at_its_exact_sample_in_the_render(state_dir, tmp_path, capsys):
    ticks = tmp_path / "ticks.toml"
    ticks.write_text('[speech]\ncounts = "ticks"\n')
    cues = every_cue_at_its_sample(["strength", "--reps", "2"], ["--config", str(ticks)], tmp_path, capsys)
    assert [c["text"] for c in cues].count(TICK) == 2 * (STRENGTH.hold_s - 1)


def every_cue_at_its_sample(args, config_args, tmp_path, capsys) -> list[dict]:
    """Render a set: each cue of its timeline is there sample for sample, and there is nothing else."""
    cues = timeline(capsys, *args, *config_args)
    wav = tmp_path / "set.wav"
    assert main(["session", *args, *config_args, "--render", str(wav)]) == 0
    samples, rate = read_wav(wav)
    assert rate == RENDER_RATE
    cfg = config.load(Path(config_args[1]) if config_args else None)
    clips = configured_cache(cfg, load_pack("sv").voice, rate)
    assert clips.fallback is None
    covered = np.zeros(samples.size, dtype=bool)
    for cue in cues:
        clip = clips.clip(cue["text"])
        start = exact_start(samples, clip, cue["t"] * rate)
        assert start is not None, f"{cue} is not at its sample"
        covered[start : start + clip.size] = True
    assert np.max(np.abs(samples[~covered])) <= QUANTUM, "sound where no cue was scheduled"
    return cues


def test_render_lasts_until_the_closing_words(state_dir, tmp_path, capsys):
    cues = timeline(capsys, "speed", "--reps", "2")
    wav = tmp_path / "set.wav"
    assert main(["session", "speed", "--reps", "2", "--render", str(wav)]) == 0
    samples, rate = read_wav(wav)
    clips = ClipCache(state_dir / "clips", load_pack("sv").voice, DEFAULT_RATE_WPM, rate)
    last = cues[-1]
    assert samples.size / rate >= last["t"] + clips.duration(last["text"])


def test_mixer_cut_silences_within_one_block():
    mixer = Mixer(8000)
    tone = np.full(8000, 0.5, dtype=np.float32)
    mixer.schedule([Scheduled(0, tone)])
    block = np.zeros(100, dtype=np.float32)
    mixer.render(block)
    assert np.all(block == 0.5)
    mixer.schedule([], cut=True)
    mixer.render(block)
    assert np.all(block == 0.0)


def test_mixer_offers_what_it_played_sample_aligned():
    mixer = Mixer(8000)
    heard: list[tuple[int, np.ndarray, float | None, tuple[object, ...]]] = []
    mixer.add_tap(lambda p: heard.append((p.position, p.samples.copy(), p.dac_time, p.tags)))
    mixer.schedule([Scheduled(150, np.ones(10, dtype=np.float32), "Paus.")])
    for i in range(3):
        mixer.render(np.zeros(100, dtype=np.float32), dac_time=7.0 + i)
    assert [start for start, *_ in heard] == [0, 100, 200]
    played = np.concatenate([block for _, block, *_ in heard])
    assert np.flatnonzero(played).tolist() == list(range(150, 160))
    # When each block is heard, as the output stream said, and what was sounding in it.
    assert [(at, tags) for _, _, at, tags in heard] == [(7.0, ()), (8.0, ("Paus.",)), (9.0, ())]


def test_mixer_plays_a_late_clip_at_once_instead_of_dropping_it():
    mixer = Mixer(8000)
    block = np.zeros(100, dtype=np.float32)
    mixer.render(block)
    mixer.schedule([Scheduled(20, np.ones(5, dtype=np.float32))])
    mixer.render(block)
    assert np.flatnonzero(block).tolist() == [0, 1, 2, 3, 4]


def test_a_volume_change_ramps_over_one_block_and_moves_nothing():
    mixer = Mixer(8000)
    tone = np.full(8000, 0.5, dtype=np.float32)
    mixer.schedule([Scheduled(0, tone), Scheduled(350, np.full(10, 0.25, dtype=np.float32), "tick")])
    blocks = [np.zeros(100, dtype=np.float32) for _ in range(4)]
    mixer.render(blocks[0])
    mixer.set_gain(0.5)
    for block in blocks[1:]:
        mixer.render(block)
    assert np.all(blocks[0] == 0.5)
    ramp = blocks[1]
    # No step: each sample a small move from the last, from the old gain to the new one.
    assert np.max(np.abs(np.diff(np.concatenate(([blocks[0][-1]], ramp))))) < 0.01
    assert ramp[-1] == pytest.approx(0.25)
    assert np.all(blocks[2] == 0.25)
    # The clip scheduled at sample 350 still starts there, at the new gain.
    assert np.flatnonzero(blocks[3] != 0.25).tolist() == list(range(50, 60))
    assert mixer.gain == 0.5
