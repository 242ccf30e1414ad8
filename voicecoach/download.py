"""Downloading one published file: resumed with an HTTP Range request, checked against its published size and md5.

`voicecoach model fetch` (a vosk zip) and `voicecoach voice fetch` (a Piper voice's two files) both fetch through
here. A download grows in a `.part` file until it is whole; a dropped connection keeps it, so the next run asks only
for the rest. What can never become the published file (wrong size, wrong checksum) is removed, so the next run
starts clean. Installing the verified file is the caller's part, each in its own atomic way.
"""

from __future__ import annotations

import contextlib
import hashlib
import re
import shutil
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from voicecoach.errors import UserError

if TYPE_CHECKING:
    import http.client

CHUNK = 1 << 16
# Seconds without a byte before a connect or read gives up; a stalled mirror should fail, not hang forever.
TIMEOUT_S = 60


class DownloadError(UserError):
    """A file could not be fetched, verified or installed; the message says why and what to do."""


@dataclass(frozen=True)
class RemoteFile:
    """One published file: the name messages give it, its file name on a mirror, its size, md5 and official URL."""

    name: str
    file_name: str
    size: int
    md5: str
    url: str


def mib(n: int) -> str:
    return f"{n / 2**20:.1f} MiB"


def installed_directories(parent: Path) -> list[tuple[Path, int]]:
    """The directories installed in parent, by name, each with its size in bytes; hidden ones are our own unfinished
    fetches and staging directories, and are left out."""
    if not parent.is_dir():
        return []
    return [
        (entry, sum(f.stat().st_size for f in entry.rglob("*") if f.is_file() and not f.is_symlink()))
        for entry in sorted(parent.iterdir())
        if not entry.name.startswith(".") and entry.is_dir()
    ]


def source_url(remote: RemoteFile, mirror: str | None, whole_file_suffix: str | None = None) -> str:
    """The official URL, or the mirror's: a directory URL that holds the same file name, or (when the mirror ends in
    whole_file_suffix) the file's own URL."""
    if not mirror:
        return remote.url
    try:
        parts = urllib.parse.urlsplit(mirror)
        usable = parts.scheme in ("http", "https") and bool(parts.hostname) and parts.port != 0
    except ValueError:  # an unclosed IPv6 bracket, a port that is not a number
        usable = False
    if not usable:
        raise DownloadError(
            f"--url {mirror!r} is not an http:// or https:// URL; give the mirror's address,"
            " e.g. --url https://mirror.example/voicecoach/"
        )
    if whole_file_suffix and mirror.endswith(whole_file_suffix):
        return mirror
    return f"{mirror.rstrip('/')}/{remote.file_name}"


class Progress:
    """Download progress on a stream: a redrawn bar on a terminal, a plain line every 10 % anywhere else (logs)."""

    WIDTH = 30

    def __init__(self, stream: TextIO | None, unit: str = "bytes") -> None:
        self.stream = stream
        # "bytes" are shown in MiB; any other unit as a count of it.
        self.unit = unit
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
        amount = f"{mib(done)} of {mib(total)}" if self.unit == "bytes" else f"{done} of {total} {self.unit}"
        if self.tty:
            filled = done * self.WIDTH // total
            bar = "#" * filled + "." * (self.WIDTH - filled)
            self.stream.write(f"\r[{bar}] {percent:3d}%  {amount}")
            self._bar_open = True
        else:
            self.stream.write(f"{'downloaded' if self.unit == 'bytes' else 'done'} {percent}% ({amount})\n")
        self.stream.flush()

    def close(self) -> None:
        """End a bar left open on the terminal line; the next file's bar starts from nothing."""
        if self._bar_open and self.stream is not None:
            self.stream.write("\n")
            self._bar_open = False
        self._shown = None


@contextlib.contextmanager
def writing_into(directory: Path, progress: Progress) -> Iterator[None]:
    """Around a fetch into directory: a local disk error becomes one line, and an open bar is ended before it."""
    try:
        yield
    except OSError as exc:
        # Network errors are turned into DownloadError where they happen, so what reaches here is the local disk.
        where = exc.filename or directory
        problem = exc.strerror or exc
        raise DownloadError(f"cannot write {where}: {problem}; choose a writable directory with --dir") from None
    finally:
        progress.close()  # so an error message starts on its own line, not after the bar


def remove_if_empty(directory: Path) -> None:
    with contextlib.suppress(OSError):  # another download is still in it
        directory.rmdir()


def corrupt(part: Path, problem: str) -> DownloadError:
    """Remove a download that can never become valid, so the next fetch starts clean, and say so."""
    part.unlink(missing_ok=True)
    return DownloadError(
        f"{problem}; the download was removed and nothing was installed; "
        "run the command again, or pass --url with a mirror of the official file"
    )


def fetch_file(remote: RemoteFile, url: str, part: Path, progress: Progress) -> None:
    """Bring `part` to the whole of `remote` from url (resuming what it holds) and verify its md5."""
    _download(url, part, remote, progress)
    progress.note(f"verifying the checksum of {remote.file_name}")
    with part.open("rb") as f:
        digest = hashlib.file_digest(f, "md5").hexdigest()
    if digest != remote.md5:
        raise corrupt(part, f"{remote.file_name} from {url} is corrupt (md5 {digest}, expected {remote.md5})")


def _network_error(url: str, exc: BaseException) -> DownloadError:
    import urllib.error

    if isinstance(exc, urllib.error.HTTPError):
        reason = f"the server answered HTTP {exc.code} {exc.reason}"
    elif isinstance(exc, urllib.error.URLError):
        reason = str(exc.reason)
    else:
        reason = str(exc) or type(exc).__name__
    return DownloadError(
        f"cannot download {url}: {reason}; nothing was installed; check the network, or pass --url with a mirror"
    )


_CONTENT_RANGE = re.compile(r"bytes (\d+)-\d+/(\d+|\*)")


def _download(url: str, part: Path, remote: RemoteFile, progress: Progress) -> None:
    """Bring `part` up to remote.size bytes, resuming from what it already holds."""
    # Imported here: with what they pull in (ssl, email) they took ~45 ms of every start of the coach, which
    # downloads nothing (voicecoach.voices imports this module to list what is installed).
    import http.client
    import urllib.error
    import urllib.request

    have = part.stat().st_size if part.exists() else 0
    if have > remote.size:
        part.unlink()
        have = 0
    if have == remote.size:
        return  # a previous run finished downloading; verification decides whether it is good
    headers = {"User-Agent": "voicecoach"}
    if have:
        headers["Range"] = f"bytes={have}-"
    try:
        response = urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=TIMEOUT_S)
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and have:
            raise corrupt(part, f"{url} cannot continue the partial download of {remote.name}") from None
        raise _network_error(url, exc) from None
    except (OSError, http.client.HTTPException) as exc:
        raise _network_error(url, exc) from None
    with response:
        if response.status == 206:
            match = _CONTENT_RANGE.match(response.headers.get("Content-Range", ""))
            if not match or int(match.group(1)) != have:
                raise corrupt(part, f"{url} answered the request to resume {remote.name} with the wrong part")
            total = None if match.group(2) == "*" else int(match.group(2))
        else:
            # The server ignored the Range header (or never saw one) and sends the whole file: start again.
            length = response.headers.get("Content-Length")
            total = int(length) if length and length.isdigit() else None
            if have:
                progress.note(f"{url} does not resume downloads; starting {remote.name} again")
            have = 0
        if total is not None and total != remote.size:
            raise corrupt(part, f"{url} serves {total} bytes, but {remote.name} is {remote.size} bytes")
        if have:
            progress.note(f"resuming {remote.name} from {url} at {mib(have)} of {mib(remote.size)}")
        else:
            progress.note(f"downloading {remote.name} ({mib(remote.size)}) from {url}")
        free = shutil.disk_usage(part.parent).free
        if free < remote.size - have:
            raise DownloadError(
                f"{part.parent} has {mib(free)} free but the download needs {mib(remote.size - have)} more; "
                "free some space or choose another directory with --dir"
            )
        have = _receive(response, part, have, remote, url, progress)
    if have < remote.size:
        raise DownloadError(
            f"the download from {url} broke off at {mib(have)} of {mib(remote.size)}; nothing was installed; "
            "run the same command again to resume, or pass --url with a mirror"
        )


def _receive(
    response: http.client.HTTPResponse, part: Path, have: int, remote: RemoteFile, url: str, progress: Progress
) -> int:
    """Append the body to `part` (or rewrite it when have == 0); returns how many bytes `part` holds."""
    import http.client

    with part.open("ab" if have else "wb") as out:
        while True:
            try:
                chunk = response.read(CHUNK)
            except (OSError, http.client.HTTPException):
                break  # a dropped connection: what arrived is kept for the next run to resume from
            if not chunk:
                break
            if have + len(chunk) > remote.size:
                raise corrupt(part, f"{url} sent more than the {remote.size} bytes of {remote.name}")
            out.write(chunk)
            have += len(chunk)
            progress.update(have, remote.size)
    return have
