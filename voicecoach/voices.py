"""Piper voices: the Swedish ones voicecoach knows, fetched and installed atomically into the state directory; listed.

An installed voice is a directory <voices>/NAME holding NAME.onnx and NAME.onnx.json, where the synthesizer looks
(paths.voices_dir). Both files download into the hidden <voices>/.NAME.part/ (each as FILE.part until it is whole and
verified, so an interrupted fetch resumes; voicecoach.download), and only when both are verified is that directory
renamed to <voices>/NAME: a failed fetch never leaves half a voice where the synthesizer would look.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from voicecoach import download
from voicecoach.download import DownloadError, RemoteFile

ESPEAK = "espeak"
PIPER = "piper"
ENGINES = (ESPEAK, PIPER)
# What `speech.voice = ""` means when speech.engine = "piper": the one voice trained on a CC0 corpus.
DEFAULT_VOICE = "sv_SE-nst-medium"
STAGING_SUFFIX = ".part"
HUB = "https://huggingface.co/rhasspy/piper-voices/resolve"


@dataclass(frozen=True)
class VoiceSpec:
    """One published Piper voice: its model, its config (.onnx.json), and the licence of its weights."""

    name: str
    lang: str
    licence: str
    model: RemoteFile
    config: RemoteFile

    @property
    def files(self) -> tuple[RemoteFile, RemoteFile]:
        return (self.model, self.config)


def _hub_voice(name: str, revision: str, licence: str, model: tuple[int, str], config: tuple[int, str]) -> VoiceSpec:
    """A voice at the hub's path for its name: <family>/<locale>/<speaker>/<quality>/<file> (voices.json's keys)."""
    locale, speaker, quality = name.split("-")
    folder = f"{HUB}/{revision}/{locale.split('_')[0]}/{locale}/{speaker}/{quality}"
    files = [
        RemoteFile(file_name, file_name, size, md5, f"{folder}/{file_name}")
        for file_name, (size, md5) in ((f"{name}.onnx", model), (f"{name}.onnx.json", config))
    ]
    return VoiceSpec(name, locale.split("_")[0], licence, *files)


# Sizes and md5 checksums (the hub publishes md5, not sha256) as listed in the hub's voices.json. The md5 only proves
# a file is the one listed there, not who made it. None of these was downloaded here (no network).
# - nst: from the copy of voices.json in the piper-plus 2.0.2 wheel (MIT), whose downloader fetches from the hub's
#   v1.0.0 revision. (The copy in wyoming-piper lists its .onnx.json at 4,157 bytes, md5 3a95d9b8…: the hub's
#   configs have been rewritten since; a mirror of the other one fails the check and says so.)
# - lisa and alma: not in that copy (they came to the hub later), so from the copy in rhasspy/wyoming-piper (MIT,
#   July 2026), which fetches from the hub's main revision.
# Licences (voices.json gives none): nst's weights follow its CC0 corpus (issue 12), alma's model card says CC BY 4.0,
# lisa's model card could not be read here, so its licence is unknown.
CATALOGUE: dict[str, VoiceSpec] = {
    voice.name: voice
    for voice in (
        _hub_voice(
            "sv_SE-nst-medium",
            "v1.0.0",
            "CC0 (the NST corpus)",
            (63_104_526, "20266cf58e93ca2140444b77398aea04"),
            (5_951, "a370e4dbc4acb86dfab4a43c28939b3c"),
        ),
        _hub_voice(
            "sv_SE-alma-medium",
            "main",
            "CC BY 4.0",
            (63_434_611, "93c03e7c0e2f21e78d123a3ee82d54c1"),
            (6_059, "658c543eee20a73194baeeef032eb190"),
        ),
        _hub_voice(
            "sv_SE-lisa-medium",
            "main",
            "unknown",
            (63_511_038, "46398d70bbb12d033e15e601a92cd711"),
            (7_239, "1a768f208277aa835e203a969df71345"),
        ),
    )
}
LANGUAGES = sorted({voice.lang for voice in CATALOGUE.values()})


def configured(engine: str, voice: str) -> str | None:
    """The Piper voice that speech.engine and speech.voice speak with, or None when they speak with espeak-ng."""
    if engine != PIPER:
        return None
    return voice or DEFAULT_VOICE


def fetch_command(name: str) -> str | None:
    """The voicecoach subcommand that installs the voice called name; None for one voicecoach cannot fetch."""
    known = CATALOGUE.get(name)
    return None if known is None else f"voice fetch {known.lang} --voice {name}"


def model_path(voices_dir: Path, name: str) -> Path:
    return voices_dir / name / f"{name}.onnx"


def config_path(voices_dir: Path, name: str) -> Path:
    return voices_dir / name / f"{name}.onnx.json"


def is_voice(voices_dir: Path, name: str) -> bool:
    """Both files of voice `name` are in voices_dir (an OSError such as a permission denied is the caller's)."""
    return model_path(voices_dir, name).is_file() and config_path(voices_dir, name).is_file()


@dataclass(frozen=True)
class InstalledVoice:
    name: str
    path: Path
    lang: str  # from the .onnx.json: its language code, else its espeak voice; "unknown" if it has neither
    sample_rate: int | None  # None: the .onnx.json is missing or unreadable
    size: int
    problem: str | None  # why the directory is not a usable voice, or None


def installed(voices_dir: Path) -> list[InstalledVoice]:
    """Every directory in voices_dir, with what its .onnx.json says; hidden ones are our own unfinished fetches."""
    found = []
    for entry, size in download.installed_directories(voices_dir):
        lang, rate, problem = _describe(voices_dir, entry.name)
        found.append(InstalledVoice(entry.name, entry, lang, rate, size, problem))
    return found


def _describe(voices_dir: Path, name: str) -> tuple[str, int | None, str | None]:
    if not model_path(voices_dir, name).is_file():
        return "unknown", None, f"no {name}.onnx"
    try:
        config = json.loads(config_path(voices_dir, name).read_text(encoding="utf-8"))
        rate = int(config["audio"]["sample_rate"])
    except FileNotFoundError:
        return "unknown", None, f"no {name}.onnx.json"
    except (OSError, ValueError, TypeError, KeyError):
        return "unknown", None, f"{name}.onnx.json is not a Piper voice config"
    language = config.get("language")
    espeak = config.get("espeak")
    code = language.get("code") if isinstance(language, dict) else None
    code = code or (espeak.get("voice") if isinstance(espeak, dict) else None)
    return str(code or "unknown"), rate, None


def fetch(spec: VoiceSpec, voices_dir: Path, mirror: str | None = None, stream: TextIO | None = None) -> Path:
    """Download, verify and install both files of `spec` into voices_dir; returns the installed voice's directory.

    A mirror is a directory URL holding the same file names. Raises DownloadError; nothing is installed then.
    """
    urls = [download.source_url(remote, mirror) for remote in spec.files]
    target = voices_dir / spec.name
    if target.exists():
        raise DownloadError(f"{target} already exists; delete it first to reinstall {spec.name}")
    staging = voices_dir / f".{spec.name}{STAGING_SUFFIX}"
    progress = download.Progress(stream)
    with download.writing_into(voices_dir, progress):
        staging.mkdir(parents=True, exist_ok=True)
        for remote, url in zip(spec.files, urls, strict=True):
            download.fetch_file(remote, url, staging / f"{remote.file_name}{STAGING_SUFFIX}", progress)
        for remote in spec.files:
            os.replace(staging / f"{remote.file_name}{STAGING_SUFFIX}", staging / remote.file_name)
        progress.note(f"installing into {target}")
        os.rename(staging, target)
    return target
