"""Speech models: fetch the official vosk model for a language, verify it and install it atomically; list them.

A download is kept as <models>/.partial/<name>.zip.part until it is whole, so an interrupted fetch resumes with an
HTTP Range request (voicecoach.download). Only a verified archive is extracted, into a hidden directory beside its
destination, and renamed into place: a failed or corrupt fetch never leaves a half-installed model where the
recognizer would look.
"""

from __future__ import annotations

import os
import shutil
import stat
import tempfile
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import TextIO

from voicecoach import download
from voicecoach.download import mib
from voicecoach.errors import UserError

PARTIAL_DIR = ".partial"
STAGING_PREFIX = ".extract-"
RUNTIME_GRAMMAR = "runtime grammar"
STATIC_GRAPH = "static graph"
NOT_A_MODEL = "not a vosk model"


class ModelError(UserError):
    """A model could not be fetched, verified or installed; the message says why and what to do."""


@dataclass(frozen=True)
class ModelSpec:
    """One published model archive: the zip holds a single top-level directory called `name`."""

    name: str
    lang: str
    size: int
    md5: str
    url: str

    @property
    def file_name(self) -> str:
        return f"{self.name}.zip"

    @property
    def remote(self) -> download.RemoteFile:
        return download.RemoteFile(self.name, self.file_name, self.size, self.md5, self.url)


# Sizes and checksums as published in the vosk model list (https://alphacephei.com/vosk/models/model-list.json).
# The md5 only proves the file is the one listed there, not who made it.
# en: these figures were not measured here (no network); they agree across several independent public copies of
# that list.
MODELS: dict[str, ModelSpec] = {
    "sv": ModelSpec(
        name="vosk-model-small-sv-rhasspy-0.15",
        lang="sv",
        size=303_504_931,
        md5="5ae431c65fe8636692118792daa22ecc",
        url="https://alphacephei.com/vosk/models/vosk-model-small-sv-rhasspy-0.15.zip",
    ),
    "en": ModelSpec(
        name="vosk-model-small-en-us-0.15",
        lang="en",
        size=41_205_931,
        md5="09ab50ccd62b674cbaa231b825f9c1cb",
        url="https://alphacephei.com/vosk/models/vosk-model-small-en-us-0.15.zip",
    ),
}
LANGUAGE_OF: dict[str, str] = {spec.name: spec.lang for spec in MODELS.values()}


def source_url(spec: ModelSpec, mirror: str | None) -> str:
    """The official URL, or the mirror's: a full URL to the zip, or a directory URL that holds the same file name."""
    return download.source_url(spec.remote, mirror, whole_file_suffix=".zip")


def _graph_dir(model: Path) -> Path:
    # Current models (layout v2) keep the graph in graph/; the older v1 layout keeps everything at the top.
    graph = model / "graph"
    return graph if graph.is_dir() else model


def has_runtime_graph(model: Path) -> bool:
    """True when the model can take a grammar at runtime (HCLr.fst + Gr.fst) rather than only its static HCLG."""
    graph = _graph_dir(model)
    return (graph / "HCLr.fst").is_file() and (graph / "Gr.fst").is_file()


def is_model(path: Path) -> bool:
    """An acoustic model plus a decoding graph: what vosk needs to load a directory."""
    acoustic = (path / "am" / "final.mdl").is_file() or (path / "final.mdl").is_file()
    return acoustic and ((_graph_dir(path) / "HCLG.fst").is_file() or has_runtime_graph(path))


@dataclass(frozen=True)
class InstalledModel:
    name: str
    path: Path
    lang: str
    mode: str
    size: int


def installed(models_dir: Path) -> list[InstalledModel]:
    """Every directory in models_dir, with the language it serves ("unknown" if the name is not ours) and its mode."""
    found = []
    for entry, size in download.installed_directories(models_dir):
        mode = NOT_A_MODEL if not is_model(entry) else RUNTIME_GRAMMAR if has_runtime_graph(entry) else STATIC_GRAPH
        found.append(InstalledModel(entry.name, entry, LANGUAGE_OF.get(entry.name, "unknown"), mode, size))
    return found


def fetch(spec: ModelSpec, models_dir: Path, mirror: str | None = None, stream: TextIO | None = None) -> Path:
    """Download, verify and install `spec` into models_dir; returns the installed model directory.

    Progress and steps go to `stream` (None: silent). Raises DownloadError, whose message says whether the partial
    download was kept for resuming or removed as corrupt; in every failure nothing is installed.
    """
    url = source_url(spec, mirror)
    target = models_dir / spec.name
    if target.exists():
        raise ModelError(f"{target} already exists; delete it first to reinstall {spec.name}")
    part = models_dir / PARTIAL_DIR / f"{spec.file_name}.part"
    progress = download.Progress(stream)
    with download.writing_into(models_dir, progress):
        try:
            part.parent.mkdir(parents=True, exist_ok=True)
            download.fetch_file(spec.remote, url, part, progress)
            progress.note(f"extracting into {models_dir}")
            _install(url, part, spec, models_dir)
            part.unlink()
        finally:
            download.remove_if_empty(part.parent)
    return target


def _install(url: str, part: Path, spec: ModelSpec, models_dir: Path) -> None:
    """Extract beside the destination (same filesystem), check it is a model, then rename it into place."""
    for stale in models_dir.glob(f"{STAGING_PREFIX}{spec.name}-*"):
        shutil.rmtree(stale, ignore_errors=True)  # left by a run that lost power mid-extraction
    staging = Path(tempfile.mkdtemp(prefix=f"{STAGING_PREFIX}{spec.name}-", dir=models_dir))
    try:
        try:
            with zipfile.ZipFile(part) as archive:
                members = archive.infolist()
                problem = _bad_members(members)
                if problem:
                    raise download.corrupt(part, f"{spec.file_name} from {url} is bad: it {problem}")
                needed = sum(m.file_size for m in members)
                free = shutil.disk_usage(models_dir).free
                if free < needed:
                    raise ModelError(
                        f"{models_dir} has {mib(free)} free but {spec.name} needs {mib(needed)} unpacked; "
                        "free some space (the download is kept) and run the command again"
                    )
                archive.extractall(staging)
        except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError) as exc:
            raise download.corrupt(part, f"{spec.file_name} from {url} is not a readable zip ({exc})") from None
        root = _model_root(staging, spec.name)
        if root is None:
            raise download.corrupt(part, f"{spec.file_name} from {url} holds no vosk model (no am/final.mdl and graph)")
        os.rename(root, models_dir / spec.name)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _escapes(name: str) -> bool:
    path = PurePosixPath(name.replace("\\", "/"))
    return path.is_absolute() or ".." in path.parts


def _bad_members(members: list[zipfile.ZipInfo]) -> str | None:
    """What makes the entries unsafe or impossible to extract, or None. A vosk model is plain files and folders:
    a symbolic link (which zipfile would write as a file) or a file that another entry needs as a folder is bad."""
    files: set[PurePosixPath] = set()
    parents: set[PurePosixPath] = set()
    for member in members:
        if _escapes(member.filename):
            return f"has a path outside its folder: {member.filename}"
        if stat.S_ISLNK(member.external_attr >> 16):
            return f"has a symbolic link, {member.filename}"
        path = PurePosixPath(member.filename.replace("\\", "/"))
        parents.update(path.parents)
        if not member.is_dir():
            files.add(path)
    both = sorted(files & parents)
    return f"has {both[0]} both as a file and as a folder" if both else None


def _model_root(staging: Path, name: str) -> Path | None:
    """The extracted model: the folder named like the archive, else a single top-level folder, else the top."""
    candidates = [staging / name]
    entries = list(staging.iterdir())
    if len(entries) == 1 and entries[0].is_dir():
        candidates.append(entries[0])
    candidates.append(staging)
    return next((c for c in candidates if c.is_dir() and is_model(c)), None)
