"""The Piper path for real, on the tests' own Piper voice (tests/piper_model.py): loading, espeak-ng's phonemes,
inference with onnxruntime, trimming, the cache, and the fallback to espeak-ng when the voice cannot speak."""

from __future__ import annotations

import io
import logging
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from http_mirror import Server
from http_mirror import server as server  # the fixture: a local HTTP mirror
from test_voices import serve

from voicecoach import config, paths, voices
from voicecoach.cli.config import missing_voice_text
from voicecoach.cli.main import main
from voicecoach.config import DEFAULT_RATE_WPM, Config
from voicecoach.engine.language import load_pack
from voicecoach.sound.clips import SILENCE, ClipCache, read_wav
from voicecoach.sound.piper import PiperSynthesizer, phoneme_ids, phonemize
from voicecoach.sound.speech import configured_cache

pytestmark = pytest.mark.speech
pytest.importorskip("onnxruntime", reason="the optional extra [piper] (onnxruntime) is not installed")
pytest.importorskip("onnx", reason="onnx, which builds the test voice, is not installed (scripts/install --test)")
import piper_model  # noqa: E402 (needs onnx)

SV = load_pack("sv")
VOICE = "sv_SE-test-medium"


def lengths(text: str, synth: PiperSynthesizer) -> list[int]:
    """The number of phoneme ids of each sentence of text, as the voice is given them."""
    return [len(phoneme_ids(s, synth.config.phoneme_id_map)) for s in phonemize(text, synth.config.espeak_voice)]


def piper_config(state: Path, voice: str = VOICE) -> Config:
    cfg = config.load()
    return replace(cfg, state_dir=state, speech=replace(cfg.speech, engine="piper", voice=voice))


@pytest.fixture
def voice(tmp_path: Path) -> Path:
    return piper_model.build_voice(paths.voices_dir(tmp_path / "state"))


def test_phonemes_are_those_piper_phonemize_gives() -> None:
    # Measured: piper-phonemize 1.1.0 (what Piper's Swedish voices were trained on) gave these, punctuation kept.
    assert ["".join(s) for s in phonemize("Det är helt okej. Vi avslutar setet här.", "sv")] == [
        "deːt ɛːr hˈeːlt ˈuːkəj.",
        "viː ˈɑːvslʉtˌar sˈeːtət hˈɛːr.",
    ]
    assert ["".join(s) for s in phonemize("Något har gått fel, så jag startar om.", "sv")] == [
        "nˌoːɡɔt hɑːr ɡˈɔt fˈeːl, sˈoː jɑːɡ stˈɑːtar ɔm."
    ]
    assert ["".join(s) for s in phonemize("sju kvar", "sv")] == ["sxˈʉ kvˈɑːr"]
    # A comma inside a number does not end a clause (espeak-ng reads it as "punkt").
    assert ["".join(s) for s in phonemize("Vila 2,5 sekunder, sedan knip.", "sv")] == [
        "vˈiːla tvˈoː pˈɵŋkt fˈɛm səkˈɵndər, sˈeːdan knˈiːp."
    ]


def test_ids_are_padded_and_framed_and_unknown_symbols_left_out() -> None:
    id_map = piper_model.phoneme_id_map()
    ids = phoneme_ids(["k", "\u2603", "n"], id_map)
    assert ids == [*id_map["^"], *id_map["_"], *id_map["k"], *id_map["_"], *id_map["n"], *id_map["_"], *id_map["$"]]


def test_a_phrase_is_rendered_by_onnxruntime_at_the_voice_rate_one_inference_a_sentence(voice: Path) -> None:
    synth = PiperSynthesizer(voice, DEFAULT_RATE_WPM)
    text = "Knip. Släpp långsamt, och vila."
    samples, rate = read_wav(io.BytesIO(synth.render(text)))
    assert rate == piper_model.SAMPLE_RATE
    assert len(lengths(text, synth)) == 2
    assert samples.size == sum(piper_model.samples_for(n, 1.0) for n in lengths(text, synth))
    # Scaled to full scale, as Piper does (the model's tone is at half scale).
    assert np.max(np.abs(samples)) == pytest.approx(1.0, abs=1e-3)


def test_a_faster_rate_gives_a_smaller_length_scale(voice: Path) -> None:
    synth = PiperSynthesizer(voice, 2 * DEFAULT_RATE_WPM)
    samples, _rate = read_wav(io.BytesIO(synth.render("Knip")))
    (n,) = lengths("Knip", synth)
    assert samples.size == piper_model.samples_for(n, 0.5)


def test_a_voice_of_several_speakers_is_given_a_speaker(tmp_path: Path) -> None:
    # onnxruntime refuses to run without its sid input.
    model = piper_model.build_voice(tmp_path, "sv_SE-two-medium", speakers=2)
    samples, _rate = read_wav(io.BytesIO(PiperSynthesizer(model, DEFAULT_RATE_WPM).render("Vila")))
    assert samples.size > piper_model.LEAD + piper_model.TRAIL


def test_trimming_puts_the_first_audible_sample_at_the_clip_start_over_neural_noise(tmp_path: Path) -> None:
    # Near-silence at -52 dBFS before scaling, -46 after: above SILENCE, as a noisy neural voice's may be.
    model = piper_model.build_voice(tmp_path, noise=2.5e-3)
    synth = PiperSynthesizer(model, DEFAULT_RATE_WPM)
    raw, rate = read_wav(io.BytesIO(synth.render("ett")))
    assert np.max(np.abs(raw[: piper_model.LEAD])) > SILENCE, "the test voice's silence is not as noisy as meant"
    clip = ClipCache(tmp_path / "clips", SV.voice, DEFAULT_RATE_WPM, rate, synth=synth).clip("ett")
    # The tone starts at phase 0 on sample LEAD, so the first audible sample is the next one (0.5 sin(2 pi 220 / sr)).
    onset = piper_model.LEAD + 1
    assert np.array_equal(clip[:100], raw[onset : onset + 100])
    voiced_end = piper_model.samples_for(lengths("ett", synth)[0], 1.0) - piper_model.TRAIL
    assert clip.size < voiced_end - onset + 0.05 * rate, "the trailing noise was kept"


def test_the_whole_programme_renders_with_piper_and_is_cached_on_disk(voice: Path) -> None:
    state = voice.parents[2]
    cfg = piper_config(state)
    cache = configured_cache(cfg, SV.voice, piper_model.SAMPLE_RATE)
    assert cache.fallback is None
    texts = piper_model.programme_phrases(SV)
    clips = {text: cache.keep(text) for text in texts}
    for text, clip in clips.items():
        assert clip.size > 0, text
        # Each clip starts at its onset: no leading silence, and its first sample is audible.
        assert abs(clip[0]) > SILENCE, text
    files = sorted(paths.clip_dir(state).glob("*.wav"))
    assert len(files) == len(texts)
    # Another process's cache finds them on disk: nothing is rendered again.
    again = configured_cache(cfg, SV.voice, piper_model.SAMPLE_RATE)
    mtimes = {f: f.stat().st_mtime_ns for f in files}
    for text in texts:
        assert np.array_equal(again.clip(text), clips[text])
    assert sorted(paths.clip_dir(state).glob("*.wav")) == files
    assert all(f.stat().st_mtime_ns >= mtimes[f] for f in files)


def test_the_cache_key_holds_engine_and_voice(voice: Path, tmp_path: Path) -> None:
    state = voice.parents[2]
    other = piper_model.build_voice(paths.voices_dir(state), "sv_SE-other-medium")
    piper = configured_cache(piper_config(state), SV.voice, 22050)
    piper_other = configured_cache(piper_config(state, other.stem), SV.voice, 22050)
    espeak = ClipCache(paths.clip_dir(state), SV.voice, DEFAULT_RATE_WPM, 22050)
    assert len({c.path_for("Knip") for c in (piper, piper_other, espeak)}) == 3


def espeak_path(cfg: Config, text: str) -> Path:
    return ClipCache(paths.clip_dir(cfg.state_dir), SV.voice, cfg.speech.rate, 22050).path_for(text)


@pytest.mark.parametrize(
    ("damage", "says"),
    [
        (lambda model: model.unlink(), "is not installed in"),
        (lambda model: model.write_bytes(model.read_bytes()[:100]), "cannot be loaded"),
        (lambda model: model.with_name(f"{model.name}.json").write_text("{}"), "has a broken"),
        (lambda model: model.with_name(f"{model.name}.json").write_text('{"audio":'), "has a broken"),
    ],
    ids=["missing", "truncated", "config-without-fields", "config-not-json"],
)
def test_a_missing_or_broken_voice_falls_back_to_espeak_and_says_how_to_fix_it_once(
    voice: Path, damage, says: str, caplog: pytest.LogCaptureFixture
) -> None:
    damage(voice)
    cfg = piper_config(voice.parents[2])
    with caplog.at_level(logging.WARNING, logger="voicecoach"):
        cache = configured_cache(cfg, SV.voice, 22050)
        clip = cache.clip("Knip")
    assert cache.fallback is not None
    assert says in cache.fallback and f"voicecoach voice fetch sv --voice {VOICE}" in cache.fallback
    assert [r.getMessage() for r in caplog.records] == [f"{cache.fallback}; speaking with espeak-ng instead"]
    # espeak-ng speaks, in the pack's voice, with the same cache key as an espeak-ng configuration.
    assert clip.size > 0 and cache.path_for("Knip") == espeak_path(cfg, "Knip")


def test_without_onnxruntime_it_falls_back_to_espeak(voice: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # None in sys.modules makes the import fail, as it does where the extra is not installed.
    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    cache = configured_cache(piper_config(voice.parents[2]), SV.voice, 22050)
    assert cache.fallback is not None and "onnxruntime" in cache.fallback and "[piper]" in cache.fallback
    assert cache.path_for("Knip") == espeak_path(piper_config(voice.parents[2]), "Knip")


def test_piper_without_a_voice_name_speaks_the_default_voice_and_espeak_has_no_fallback(tmp_path: Path) -> None:
    unnamed = configured_cache(piper_config(tmp_path, voice=""), SV.voice, 22050)
    # The default voice is not installed here: the fallback says how to fetch it.
    assert unnamed.fallback is not None and f"--voice {voices.DEFAULT_VOICE}" in unnamed.fallback
    cfg = config.load()
    assert configured_cache(replace(cfg, state_dir=tmp_path), SV.voice, 22050).fallback is None


def test_a_voice_that_fails_on_a_phrase_hands_over_to_espeak_once_and_the_phrase_is_said(
    voice: Path, caplog: pytest.LogCaptureFixture
) -> None:
    synth = PiperSynthesizer(voice, DEFAULT_RATE_WPM)
    state = voice.parents[2]
    cache = ClipCache(paths.clip_dir(state), SV.voice, DEFAULT_RATE_WPM, 22050, synth=synth)
    piper_clip = cache.clip("Knip")
    # Loaded and tried, then its phonemizer fails (as a timed-out or missing espeak-ng would).
    synth.config = replace(synth.config, espeak_voice="xx-none")
    with caplog.at_level(logging.WARNING, logger="voicecoach"):
        clips = [cache.clip(text) for text in ("Vila", "Släpp")]
    assert all(clip.size > 0 for clip in clips)
    assert cache.fallback is not None and "xx-none" in cache.fallback
    assert [r.getMessage() for r in caplog.records] == [f"{cache.fallback}; speaking with espeak-ng instead"]
    espeak = ClipCache(paths.clip_dir(state), SV.voice, DEFAULT_RATE_WPM, 22050)
    assert cache.path_for("Vila") == espeak.path_for("Vila")
    assert np.array_equal(cache.clip("Vila"), espeak.clip("Vila"))
    # What Piper had rendered stays in memory: a set that started in one voice is not cut.
    assert cache.clip("Knip") is piper_clip


def test_fetching_the_configured_voice_renders_the_whole_programme_with_progress(
    server: Server, state_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    built = piper_model.build_voice(tmp_path / "built", VOICE)
    files = (built.read_bytes(), built.with_suffix(".onnx.json").read_bytes())
    catalogued = voices.CATALOGUE[voices.DEFAULT_VOICE]
    spec = serve(
        server,
        replace(
            catalogued,
            name=VOICE,
            model=replace(catalogued.model, file_name=built.name),
            config=replace(catalogued.config, file_name=f"{built.name}.json"),
        ),
        files,
    )
    monkeypatch.setitem(voices.CATALOGUE, VOICE, spec)
    cfg_file = tmp_path / "config.toml"
    cfg_file.write_text(f'[speech]\nengine = "piper"\nvoice = "{VOICE}"\n', encoding="utf-8")

    assert main(["voice", "fetch", "sv", "--voice", VOICE, "--url", server.base, "--config", str(cfg_file)]) == 0

    out, err = capsys.readouterr()
    rendered = sorted(paths.clip_dir(state_dir).glob("*.wav"))
    assert out.splitlines()[-1] == f"rendered {len(rendered)} phrases into {paths.clip_dir(state_dir)}"
    assert "done 100%" in err and f"of {len(rendered)} phrases" in err
    # Every phrase a set of the programme says is there, in the Piper voice's cache key (not espeak-ng's).
    cfg = replace(config.load(cfg_file), state_dir=state_dir)
    cache = configured_cache(cfg, SV.voice, 22050)
    assert cache.fallback is None
    assert all(cache.path_for(text).exists() for text in piper_model.programme_phrases(SV))


def test_voice_render_renders_the_programme_in_the_configured_voice_after_a_change_of_it(
    voice: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    state = voice.parents[2]
    monkeypatch.setenv("VOICECOACH_STATE_DIR", str(state))
    cfg_file = tmp_path / "config.toml"
    for speech, renders in ((f'engine = "piper"\nvoice = "{VOICE}"', "in sv_SE-test-medium"), ("rate = 200", "")):
        cfg_file.write_text(f"[speech]\n{speech}\n", encoding="utf-8")
        assert main(["voice", "render", "--config", str(cfg_file)]) == 0
        out, err = capsys.readouterr()
        assert out.splitlines()[-1].startswith("rendered ") and renders in err and "done 100%" in err
        cache = configured_cache(replace(config.load(cfg_file), state_dir=state), SV.voice, 22050)
        assert cache.fallback is None
        assert all(cache.path_for(text).exists() for text in piper_model.programme_phrases(SV)), speech


def test_voice_render_of_a_voice_not_installed_says_how_to_fetch_it_and_renders_nothing(
    state_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg_file = tmp_path / "config.toml"
    cfg_file.write_text('[speech]\nengine = "piper"\nvoice = "sv_SE-nst-medium"\n', encoding="utf-8")
    assert main(["voice", "render", "--config", str(cfg_file)]) == 1
    out, err = capsys.readouterr()
    assert out == ""
    assert err.splitlines() == [
        f"voicecoach: error: {missing_voice_text('sv_SE-nst-medium', paths.voices_dir(state_dir))}"
    ]
    assert not paths.clip_dir(state_dir).exists() or not any(paths.clip_dir(state_dir).iterdir())
