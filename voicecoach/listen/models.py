"""Speech models: fetch the official vosk model for a language, verify it and install it atomically; list them.

A download is kept as <models>/.partial/<name>.zip.part until it is whole, so an interrupted fetch resumes with an
HTTP Range request. Only a verified archive is extracted, into a hidden directory beside its destination, and renamed
into place: a failed or corrupt fetch never leaves a half-installed model where the recognizer would look.
"""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import os
import re
import shutil
import stat
import tempfile
import urllib.error
import urllib.parse
import urllib.request
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import TextIO

from voicecoach.errors import UserError

CHUNK = 1 << 16
# Seconds without a byte before a connect or read gives up; a stalled mirror should fail, not hang forever.
TIMEOUT_S = 60
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


def mib(n: int) -> str:
    return f"{n / 2**20:.1f} MiB"


def source_url(spec: ModelSpec, mirror: str | None) -> str:
    """The official URL, or the mirror's: a full URL to the zip, or a directory URL that holds the same file name."""
    if not mirror:
        return spec.url
    try:
        parts = urllib.parse.urlsplit(mirror)
        usable = parts.scheme in ("http", "https") and bool(parts.hostname) and parts.port != 0
    except ValueError:  # an unclosed IPv6 bracket, a port that is not a number
        usable = False
    if not usable:
        raise ModelError(
            f"--url {mirror!r} is not an http:// or https:// URL; give the mirror's address,"
            " e.g. --url https://mirror.example/vosk/"
        )
    if mirror.endswith(".zip"):
        return mirror
    return f"{mirror.rstrip('/')}/{spec.file_name}"


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


def _tree_size(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file() and not f.is_symlink())


def installed(models_dir: Path) -> list[InstalledModel]:
    """Every directory in models_dir, with the language it serves ("unknown" if the name is not ours) and its mode."""
    if not models_dir.is_dir():
        return []
    found = []
    for entry in sorted(models_dir.iterdir()):
        # Hidden entries are our own partial downloads and staging directories.
        if entry.name.startswith(".") or not entry.is_dir():
            continue
        mode = NOT_A_MODEL if not is_model(entry) else RUNTIME_GRAMMAR if has_runtime_graph(entry) else STATIC_GRAPH
        found.append(InstalledModel(entry.name, entry, LANGUAGE_OF.get(entry.name, "unknown"), mode, _tree_size(entry)))
    return found


class Progress:
    """Download progress on a stream: a redrawn bar on a terminal, a plain line every 10 % anywhere else (logs)."""

    WIDTH = 30

    def __init__(self, stream: TextIO | None) -> None:
        self.stream = stream
        self.tty = bool(stream is not None and stream.isatty())
        self._shown: int | None = None
        self._bar_open = False

    def note(self, text: str) -> None:
        if self.stream is None:
            return
        self.close()
        print(text, file=self.stream, flush=True)

    def update(self, done: int, total: int) -> None:
        if self.stream is None or total <= 0:
            return
        # Redraw only when the shown figure changes: a per-mille step on a terminal, a 10 % step elsewhere.
        step = done * 1000 // total if self.tty else done * 10 // total
        if step == self._shown:
            return
        self._shown = step
        percent = done * 100 // total
        if self.tty:
            filled = done * self.WIDTH // total
            bar = "#" * filled + "." * (self.WIDTH - filled)
            self.stream.write(f"\r[{bar}] {percent:3d}%  {mib(done)} of {mib(total)}")
            self._bar_open = True
        else:
            self.stream.write(f"downloaded {percent}% ({mib(done)} of {mib(total)})\n")
        self.stream.flush()

    def close(self) -> None:
        """End a bar left open on the terminal line."""
        if self._bar_open and self.stream is not None:
            self.stream.write("\n")
            self._bar_open = False


def fetch(spec: ModelSpec, models_dir: Path, mirror: str | None = None, stream: TextIO | None = None) -> Path:
    """Download, verify and install `spec` into models_dir; returns the installed model directory.

    Progress and steps go to `stream` (None: silent). Raises ModelError, whose message says whether the partial
    download was kept for resuming or removed as corrupt; in every failure nothing is installed.
    """
    url = source_url(spec, mirror)
    target = models_dir / spec.name
    if target.exists():
        raise ModelError(f"{target} already exists; delete it first to reinstall {spec.name}")
    part = models_dir / PARTIAL_DIR / f"{spec.file_name}.part"
    progress = Progress(stream)
    try:
        part.parent.mkdir(parents=True, exist_ok=True)
        _download(url, part, spec, progress)
        progress.note("verifying checksum")
        _verify(url, part, spec)
        progress.note(f"extracting into {models_dir}")
        _install(url, part, spec, models_dir)
        part.unlink()
    except OSError as exc:
        # Network errors are turned into ModelError where they happen, so what reaches here is the local disk.
        where = exc.filename or models_dir
        problem = exc.strerror or exc
        raise ModelError(f"cannot write {where}: {problem}; choose a writable directory with --dir") from None
    finally:
        progress.close()  # so an error message starts on its own line, not after the bar
        _remove_if_empty(part.parent)
    return target


def _remove_if_empty(directory: Path) -> None:
    with contextlib.suppress(OSError):  # another model's partial download is still in it
        directory.rmdir()


def _corrupt(part: Path, problem: str) -> ModelError:
    """Remove a download that can never become valid, so the next fetch starts clean, and say so."""
    part.unlink(missing_ok=True)
    return ModelError(
        f"{problem}; the download was removed and nothing was installed; "
        "run the command again, or pass --url with a mirror of the official file"
    )


def _network_error(url: str, exc: BaseException) -> ModelError:
    if isinstance(exc, urllib.error.HTTPError):
        reason = f"the server answered HTTP {exc.code} {exc.reason}"
    elif isinstance(exc, urllib.error.URLError):
        reason = str(exc.reason)
    else:
        reason = str(exc) or type(exc).__name__
    return ModelError(
        f"cannot download {url}: {reason}; nothing was installed; check the network, or pass --url with a mirror"
    )


_CONTENT_RANGE = re.compile(r"bytes (\d+)-\d+/(\d+|\*)")


def _download(url: str, part: Path, spec: ModelSpec, progress: Progress) -> None:
    """Bring `part` up to spec.size bytes, resuming from what it already holds."""
    have = part.stat().st_size if part.exists() else 0
    if have > spec.size:
        part.unlink()
        have = 0
    if have == spec.size:
        return  # a previous run finished downloading; verification decides whether it is good
    headers = {"User-Agent": "voicecoach"}
    if have:
        headers["Range"] = f"bytes={have}-"
    try:
        response = urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=TIMEOUT_S)
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and have:
            raise _corrupt(part, f"{url} cannot continue the partial download of {spec.name}") from None
        raise _network_error(url, exc) from None
    except (OSError, http.client.HTTPException) as exc:
        raise _network_error(url, exc) from None
    with response:
        if response.status == 206:
            match = _CONTENT_RANGE.match(response.headers.get("Content-Range", ""))
            if not match or int(match.group(1)) != have:
                raise _corrupt(part, f"{url} answered the request to resume {spec.name} with the wrong part")
            total = None if match.group(2) == "*" else int(match.group(2))
        else:
            # The server ignored the Range header (or never saw one) and sends the whole file: start again.
            length = response.headers.get("Content-Length")
            total = int(length) if length and length.isdigit() else None
            if have:
                progress.note(f"{url} does not resume downloads; starting {spec.name} again")
            have = 0
        if total is not None and total != spec.size:
            raise _corrupt(part, f"{url} serves {total} bytes, but {spec.name} is {spec.size} bytes")
        if have:
            progress.note(f"resuming {spec.name} from {url} at {mib(have)} of {mib(spec.size)}")
        else:
            progress.note(f"downloading {spec.name} ({mib(spec.size)}) from {url}")
        free = shutil.disk_usage(part.parent).free
        if free < spec.size - have:
            raise ModelError(
                f"{part.parent} has {mib(free)} free but the download needs {mib(spec.size - have)} more; "
                "free some space or choose another directory with --dir"
            )
        have = _receive(response, part, have, spec, url, progress)
    if have < spec.size:
        raise ModelError(
            f"the download from {url} broke off at {mib(have)} of {mib(spec.size)}; nothing was installed; "
            "run the same command again to resume, or pass --url with a mirror"
        )


def _receive(
    response: http.client.HTTPResponse, part: Path, have: int, spec: ModelSpec, url: str, progress: Progress
) -> int:
    """Append the body to `part` (or rewrite it when have == 0); returns how many bytes `part` holds."""
    with part.open("ab" if have else "wb") as out:
        while True:
            try:
                chunk = response.read(CHUNK)
            except (OSError, http.client.HTTPException):
                break  # a dropped connection: what arrived is kept for the next run to resume from
            if not chunk:
                break
            if have + len(chunk) > spec.size:
                raise _corrupt(part, f"{url} sent more than the {spec.size} bytes of {spec.name}")
            out.write(chunk)
            have += len(chunk)
            progress.update(have, spec.size)
    return have


def _verify(url: str, part: Path, spec: ModelSpec) -> None:
    with part.open("rb") as f:
        digest = hashlib.file_digest(f, "md5").hexdigest()
    if digest != spec.md5:
        raise _corrupt(part, f"{spec.file_name} from {url} is corrupt (md5 {digest}, expected {spec.md5})")


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
                    raise _corrupt(part, f"{spec.file_name} from {url} is bad: it {problem}")
                needed = sum(m.file_size for m in members)
                free = shutil.disk_usage(models_dir).free
                if free < needed:
                    raise ModelError(
                        f"{models_dir} has {mib(free)} free but {spec.name} needs {mib(needed)} unpacked; "
                        "free some space (the download is kept) and run the command again"
                    )
                archive.extractall(staging)
        except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError) as exc:
            raise _corrupt(part, f"{spec.file_name} from {url} is not a readable zip ({exc})") from None
        root = _model_root(staging, spec.name)
        if root is None:
            raise _corrupt(part, f"{spec.file_name} from {url} holds no vosk model (no am/final.mdl and graph)")
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
