"""The clip cache with real espeak-ng renders: bounded in memory and on disk, the programme's phrases always kept,
and a cache directory that cannot be written costs the disk copy, never the phrase."""

from __future__ import annotations

import importlib.metadata
import io
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from voicecoach.config import DEFAULT_RATE_WPM
from voicecoach.engine.language import load_pack
from voicecoach.engine.timeline import TICK
from voicecoach.sound.clips import TICK_PEAK, ClipCache, Synthesizer, pyttsx3_version, read_wav

pytestmark = pytest.mark.speech

VOICE = load_pack("sv").voice
RATE = 16000
KEPT = ("Knip", "Släpp långsamt", "Vila")


def said_once(n: int) -> str:
    return f"Det här är mening nummer {n}, och den sägs bara en gång."


def loose_files(cache: ClipCache) -> int:
    kept = {cache.path_for(text) for text in KEPT}
    return sum(p.stat().st_size for p in cache.directory.glob("*.wav") if p not in kept)


def test_phrases_said_once_are_bounded_in_memory_and_on_disk_and_kept_phrases_stay(tmp_path: Path) -> None:
    one = ClipCache(tmp_path / "probe", VOICE, DEFAULT_RATE_WPM, RATE).clip(said_once(0))
    # Room for about three such phrases, in memory and on disk (16-bit at 22,050 Hz there, float32 here).
    budget = 3 * one.nbytes
    cache = ClipCache(tmp_path / "clips", VOICE, DEFAULT_RATE_WPM, RATE, memory_budget=budget, disk_budget=budget)
    kept = {text: cache.keep(text) for text in KEPT}
    first = cache.clip(said_once(1))
    assert cache.clip(said_once(1)) is first, "a phrase in memory is not loaded again"
    for n in range(2, 12):
        cache.clip(said_once(n))
        assert loose_files(cache) <= budget
    # The programme's phrases were neither dropped from memory nor deleted from disk.
    assert all(cache.clip(text) is clip for text, clip in kept.items())
    assert all(cache.path_for(text).exists() for text in KEPT)
    # The oldest phrase said once was dropped from memory and from disk; asked for again, it is rendered again.
    assert not cache.path_for(said_once(1)).exists()
    again = cache.clip(said_once(1))
    assert again is not first and again.size > 0


def test_without_a_disk_budget_nothing_is_deleted(tmp_path: Path) -> None:
    # The budget is the daemon's: `voicecoach say` and friends must not delete the daemon's clips.
    cache = ClipCache(tmp_path / "clips", VOICE, DEFAULT_RATE_WPM, RATE, memory_budget=1)
    for n in range(4):
        cache.clip(said_once(n))
    assert all(cache.path_for(said_once(n)).exists() for n in range(4))


@pytest.fixture
def immutable(tmp_path: Path) -> Iterator[Path]:
    """A directory that not even root can write to (chattr +i), made writable again afterwards."""
    path = tmp_path / "clips"
    path.mkdir()
    if subprocess.run(["chattr", "+i", str(path)], capture_output=True, check=False).returncode != 0:
        pytest.skip("chattr +i is refused here (not root, or a file system without it): no read-only directory")
    try:
        yield path
    finally:
        subprocess.run(["chattr", "-i", str(path)], check=False)


def test_a_cache_that_cannot_be_written_keeps_new_phrases_in_memory_and_says_so_once(
    immutable: Path, caplog: pytest.LogCaptureFixture
) -> None:
    cache = ClipCache(immutable, VOICE, DEFAULT_RATE_WPM, RATE)
    clips: list[np.ndarray] = []
    # When pyttsx3's engine wrote the file, on espeak-ng's thread, a failure to write was lost there and the render
    # waited for ever. A thread keeps a hang from hanging the test run.
    worker = threading.Thread(target=lambda: clips.extend(cache.clip(said_once(n)) for n in range(2)), daemon=True)
    with caplog.at_level("WARNING", logger="voicecoach"):
        worker.start()
        worker.join(timeout=60)
    assert not worker.is_alive(), "rendering into a read-only cache hung"
    assert [clip.size > 0 for clip in clips] == [True, True]
    assert list(immutable.iterdir()) == []
    assert [r.getMessage() for r in caplog.records] == [
        f"the clip cache {immutable} cannot be written (Operation not permitted): new phrases are kept in memory only"
    ]


def test_synthesizers_at_different_rates_in_one_process_each_render_at_their_own() -> None:
    # pyttsx3's engine is one per process: a second one at another rate changed the first one's rate, and an engine
    # whose rate changed between renders kept the old rate now and then.
    text = "Knip och håll i fem sekunder"
    slow, fast = Synthesizer(VOICE, 120), Synthesizer(VOICE, 240)
    seconds: dict[int, list[float]] = {120: [], 240: []}
    for _ in range(6):
        for rate, synth in ((120, slow), (240, fast)):
            samples, sample_rate = read_wav(io.BytesIO(synth.render(text)))
            seconds[rate].append(samples.size / sample_rate)
    # Twice the rate, about half as long (espeak-ng keeps its pauses): every render at its own rate, none empty.
    assert max(seconds[240]) < 0.6 * min(seconds[120]), seconds
    assert min(seconds[240]) > 0.3 * max(seconds[120]), seconds


def test_spared_phrases_stay_on_disk_past_the_budget_though_not_in_memory(tmp_path: Path) -> None:
    one = ClipCache(tmp_path / "probe", VOICE, DEFAULT_RATE_WPM, RATE).clip(said_once(0))
    budget = 2 * one.nbytes
    cache = ClipCache(tmp_path / "clips", VOICE, DEFAULT_RATE_WPM, RATE, memory_budget=budget, disk_budget=budget)
    ahead = [f"Du har tränat {n} dagar i rad." for n in range(2, 5)]
    cache.spare(ahead)
    for text in ahead:
        cache.clip(text)
    written = {text: cache.path_for(text).stat().st_mtime_ns for text in ahead}
    # Phrases said once come and go past the budget; the spared ones stay, and are not rendered again.
    for n in range(1, 8):
        cache.clip(said_once(n))
    cache.prune()
    assert {text: cache.path_for(text).stat().st_mtime_ns for text in ahead} == written
    assert not cache.path_for(said_once(1)).exists()


def test_phrases_rendered_ahead_go_onto_the_disk_once(tmp_path: Path) -> None:
    cache = ClipCache(tmp_path / "clips", VOICE, DEFAULT_RATE_WPM, RATE)
    said = said_once(1)
    cache.clip(said)
    ahead = [f"Du har tränat {n} dagar i rad." for n in range(2, 4)]
    assert cache.missing([said, *ahead]) == ahead
    assert all(cache.store(text) for text in ahead)
    assert cache.missing([said, *ahead]) == []
    written = {text: cache.path_for(text).stat().st_mtime_ns for text in ahead}
    # Stored again: already there, so not rendered again.
    assert all(cache.store(text) for text in ahead)
    assert {text: cache.path_for(text).stat().st_mtime_ns for text in ahead} == written
    # What is stored plays as what was rendered.
    fresh = ClipCache(tmp_path / "other", VOICE, DEFAULT_RATE_WPM, RATE)
    assert cache.clip(ahead[0]).size == pytest.approx(fresh.clip(ahead[0]).size, rel=0.05)


def test_rendering_ahead_into_a_cache_that_cannot_be_written_says_there_is_no_point(immutable: Path) -> None:
    cache = ClipCache(immutable, VOICE, DEFAULT_RATE_WPM, RATE)
    assert cache.store(said_once(1)) is False
    assert list(immutable.iterdir()) == []


def test_the_tick_is_made_not_rendered_and_sounds_from_its_first_sample(tmp_path: Path) -> None:
    cache = ClipCache(tmp_path / "clips", VOICE, DEFAULT_RATE_WPM, RATE)
    tick = cache.keep(TICK)
    assert 0.02 < tick.size / RATE < 0.1
    assert float(np.abs(tick).max()) == pytest.approx(TICK_PEAK)
    # Its onset is where it is scheduled: loud within a millisecond, as a trimmed clip is from its first sample.
    assert float(np.abs(tick[: RATE // 1000]).max()) > 0.1 * TICK_PEAK
    assert cache.missing([TICK]) == []
    assert cache.store(TICK) is True
    assert list((tmp_path / "clips").iterdir()) == []
    # Softer than the words around it.
    assert float(np.sqrt(np.mean(tick**2))) < 0.5 * float(np.sqrt(np.mean(cache.clip("Knip") ** 2)))


def test_the_version_in_the_cache_key_is_pyttsx3s_installed_one() -> None:
    # Read from its dist-info folder's name, not through importlib.metadata (its import is slow); the same answer,
    # or every clip on a Pi would be rendered again under a new key.
    assert pyttsx3_version() == importlib.metadata.version("pyttsx3")
