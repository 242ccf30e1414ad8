"""Which voice speaks: the configured Piper voice where it is installed and runs, else espeak-ng, so that a set never
fails because of the voice. The cache logs the reason for a fallback once and keeps it (ClipCache.fallback)."""

from __future__ import annotations

from voicecoach import paths, voices
from voicecoach.config import Config
from voicecoach.sound.clips import ClipCache, Synth
from voicecoach.sound.piper import PiperSynthesizer, VoiceError


def configured_cache(cfg: Config, pack_voice: str, sample_rate: int, disk_budget: int | None = None) -> ClipCache:
    """The clip cache as the configuration has it: in its state directory, in its [speech] engine, voice (else the
    pack's) and rate. The daemon and every command take this one, so a phrase rendered by one is found by the others."""
    speech = cfg.speech
    synth: Synth | None = None
    fallback: str | None = None
    espeak_voice = speech.voice or pack_voice
    piper_voice = voices.configured(speech.engine, speech.voice)
    if piper_voice is not None:
        # The voice setting names the Piper voice; espeak-ng, if it must stand in, speaks the pack's voice.
        espeak_voice = pack_voice
        try:
            synth = PiperSynthesizer(voices.model_path(paths.voices_dir(cfg.state_dir), piper_voice), speech.rate)
        except VoiceError as exc:
            fallback = str(exc)
    return ClipCache(
        paths.clip_dir(cfg.state_dir),
        espeak_voice,
        speech.rate,
        sample_rate,
        disk_budget=disk_budget,
        synth=synth,
        fallback=fallback,
    )
