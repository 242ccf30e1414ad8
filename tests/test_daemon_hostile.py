"""The daemon under bad input and a full or read-only disk (issue 10; too few file descriptors:
test_daemon_descriptors.py): a real `voicecoach run` with a real socket and journal, playing into the `pulse`
fixture's virtual speaker, a fake NOTIFY_SOCKET with a 4 s watchdog. Disks are tmpfs mounts; where the machine does
not allow them (not root, no mount), those tests skip and say why.

Also: no reminder before the system clock is synchronised (a fake timedatectl says it is not).

Whatever goes wrong, the daemon answers the next `ctl` request, says in Swedish what went wrong where she would
otherwise hear nothing, logs it in one line, and keeps pinging the watchdog.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import socket
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
from cues import SILENT, find_clip, loud_spans
from daemon_harness import Daemon, DaemonError, new_lines, no_model, pings_go_on
from pulse import RATE, PulseServer

from voicecoach.coach import sentences, sentences_of
from voicecoach.config import DEFAULT_RATE_WPM
from voicecoach.daemon import run as daemon
from voicecoach.engine.language import load_pack
from voicecoach.sound.clips import ClipCache
from voicecoach.training.conversation import TIMESYNC_FLAG, UNSYNCHRONISED
from voicecoach.training.progress_texts import load_phrases, to_render

pytestmark = pytest.mark.audio

SV = load_pack("sv")
PHRASES = load_phrases("sv")
WATCHDOG_S = 4.0
# A recorded phrase matches its clip this well when it was played whole (1.0: a perfect copy at any gain).
WHOLE = 0.9


# -- helpers -----------------------------------------------------------------------------------------------------


def raw(d: Daemon, line: bytes) -> dict[str, object]:
    """Send one raw request line on a connection of its own; the reply."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(30)
        sock.connect(str(d.socket))
        sock.sendall(line)
        with sock.makefile("rb") as stream:
            reply = stream.readline()
    assert reply, "the daemon closed the connection without a reply"
    return json.loads(reply)


def say(text: str) -> bytes:
    return json.dumps({"intent": "say", "text": text}).encode() + b"\n"


def quiet(status: dict[str, object]) -> bool:
    return status["speaking_s"] == 0 and status["state"] == "idle"


def played(
    pulse: PulseServer, d: Daemon, action: Callable[[], object], until: Callable[[dict[str, object]], bool] = quiet
) -> np.ndarray:
    """What the speaker played from just before action until the daemon's status says until (by default: until
    it has nothing more to say)."""
    d.wait_status(quiet, what="quiet before the recording")
    recording = pulse.record()
    try:
        recording.wait_for(RATE // 10)
        action()
        d.wait_status(until, timeout=60, what="the end of what is recorded")
        # The output stream's latency, and a little: the last words are still on their way.
        recording.wait_for(recording.frames + RATE)
    finally:
        samples = recording.stop()
    return samples


def heard(
    pulse: PulseServer, d: Daemon, text: str, action: Callable[[], object], until: Callable[..., bool] = quiet
) -> float:
    """How well the clips of text, as the daemon stored them (a sentence each: it says text a sentence at a time), are
    found in what was played while action ran, the worst of them (see WHOLE). (espeak-ng renders a long text a
    little differently each time, so the clips must be the daemon's own.)"""
    samples = played(pulse, d, action, until)
    cache = ClipCache(d.state_dir / "clips", SV.voice, DEFAULT_RATE_WPM, RATE)
    return min(find_clip(samples, cache.clip(s), samples.size // 2, samples.size).score for s in sentences(text))


def mount_tmpfs(path: Path, size: str) -> None:
    path.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size},mode=0755", "tmpfs", str(path)], check=False)
    if done.returncode != 0:
        pytest.skip(f"a full or read-only disk is a tmpfs mount, and this machine refused one (not root?): {path}")


@pytest.fixture
def tmpfs(tmp_path: Path) -> Iterator[Path]:
    """An empty 32 MB tmpfs for a state directory, unmounted afterwards."""
    path = tmp_path / "state"
    mount_tmpfs(path, "32m")
    try:
        yield path
    finally:
        subprocess.run(["umount", "--lazy", str(path)], check=False)


def fill(disk: Path) -> Path:
    """Fill a file system to the last byte; the filler file, to remove to free it."""
    filler = disk / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        for size in (65536, 1):
            with contextlib.suppress(OSError):
                while os.write(fd, b"\0" * size):
                    pass
    finally:
        os.close(fd)
    return filler


# -- one daemon for the requests ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def coach(pulse: PulseServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Daemon]:
    root = tmp_path_factory.mktemp("hostile")
    with Daemon(root, no_model(root), pulse.environ(), WATCHDOG_S) as d:
        d.wait_ready()
        d.wait_rendered()
        yield d


@pytest.fixture
def idle(coach: Daemon) -> Iterator[Daemon]:
    """The shared daemon, quiet again after the test."""
    yield coach
    if coach.running and coach.status()["speaking_s"] > 0:
        coach.ctl("stop")


@pytest.mark.parametrize(
    ("line", "error"),
    [
        (say("."), "say needs words: a text with at least one letter or digit"),
        (say("\u200b"), "say needs words"),
        (b'{"intent": "say", "text": "\\ud800 hej"}\n', "say's text is not valid Unicode (it has a lone surrogate)"),
    ],
    ids=["full stop", "zero-width space", "lone surrogate"],
)
def test_text_that_cannot_be_said_is_refused_up_front_and_the_channel_keeps_serving(
    idle: Daemon, line: bytes, error: str
) -> None:
    logged = len(idle.log_lines())
    reply = raw(idle, line)
    assert reply["ok"] is False
    assert str(reply["error"]).startswith(error)
    assert idle.status()["state"] == "idle"
    pings_go_on(idle)
    assert new_lines(idle, logged, "ERROR") == []
    assert "Traceback" not in idle.log()


def test_ctl_say_refuses_a_full_stop_before_looking_for_the_daemon(idle: Daemon) -> None:
    with pytest.raises(DaemonError, match=r"exited 2: voicecoach: error: say needs words"):
        idle.ctl("say", ".")


def test_a_text_espeak_says_as_silence_gets_an_error_reply_and_the_notice_is_said(
    idle: Daemon, pulse: PulseServer
) -> None:
    # An Arabic-Indic zero is a digit, so it passes the check up front; espeak-ng's Swedish voice says nothing.
    logged = len(idle.log_lines())
    replies: list[dict[str, object]] = []
    score = heard(pulse, idle, SV.cues["failed"], lambda: replies.append(raw(idle, say("\u0660"))))
    assert replies[0]["ok"] is False
    assert "rendered '\u0660' as silence" in str(replies[0]["error"])
    assert score > WHOLE, f"the notice {SV.cues['failed']!r} was not heard (match {score:.2f})"
    errors = new_lines(idle, logged, "ERROR")
    assert len(errors) == 1 and "as silence" in errors[0], errors
    assert idle.status()["state"] == "idle"
    pings_go_on(idle)
    assert "Traceback" not in idle.log()


def test_deeply_nested_json_gets_one_error_reply_and_no_traceback(idle: Daemon) -> None:
    logged = len(idle.log_lines())
    reply = raw(idle, b"[" * 2000 + b"]" * 2000 + b"\n")
    assert reply["ok"] is False
    assert str(reply["error"]).startswith('a request is a flat JSON object with an "intent" string')
    assert idle.status()["state"] == "idle"
    assert idle.log_lines()[logged:] == []
    assert "Traceback" not in idle.log()


def long_text(n: int) -> str:
    return f"Text nummer {n}. " + "Det här är en lång mening som bara ska sägas en enda gång. " * 8


def test_say_is_refused_while_a_minute_of_speech_waits_and_stop_between_sets_silences_it(idle: Daemon) -> None:
    refusal = None
    for n in range(10):
        try:
            idle.ctl("say", long_text(n))
        except DaemonError as exc:
            refusal = str(exc)
            break
    assert refusal is not None, "ten long texts were all queued"
    assert "s of speech wait to be said already: wait, or end it with 'voicecoach ctl stop'" in refusal
    status = idle.status()
    assert (status["state"], status["speaking_s"] > daemon.MAX_SPEAKING_S) == ("idle", True)
    assert "speaking" in idle.ctl("status")
    idle.ctl("stop")
    assert idle.status()["speaking_s"] == 0
    with pytest.raises(DaemonError, match=r"stop means nothing now \(idle\)"):
        idle.ctl("stop")


# -- a disk that is full or read-only ------------------------------------------------------------------------------


def test_speech_on_a_full_disk_is_said_from_memory(pulse: PulseServer, tmp_path: Path, tmpfs: Path) -> None:
    root = tmp_path / "daemon"
    with Daemon(root, no_model(root), pulse.environ(), WATCHDOG_S, state_dir=tmpfs) as d:
        d.wait_ready()
        d.wait_rendered()
        filler = fill(tmpfs)
        logged = len(d.log_lines())
        # Not rendered ahead: what `ctl say` says is rendered when said.
        text = "Det här har aldrig sagts förut, och disken är full."
        samples = played(pulse, d, lambda: d.ctl("say", text))
        # It could not be stored, so there is no clip of the daemon's own to compare with: it is said about as long
        # as a render of it.
        expected = ClipCache(tmp_path / "clips", SV.voice, DEFAULT_RATE_WPM, RATE).duration(text)
        spoken = sum(b - a for a, b in loud_spans(samples, RATE, SILENT)) / RATE
        assert spoken > expected / 2, f"{spoken:.1f} s were said; the text takes {expected:.1f} s"
        warnings = new_lines(d, logged, "WARNING")
        assert warnings == [
            f"WARNING: the clip cache {tmpfs / 'clips'} cannot be written (No space left on device): "
            "new phrases are kept in memory only"
        ]
        assert new_lines(d, logged, "ERROR") == []
        pings_go_on(d)
        filler.unlink()
        d.ctl("say", "Nu finns det plats igen.")
        assert d.status()["state"] == "idle"
        assert "Traceback" not in d.log()


def test_what_is_said_between_sets_is_rendered_ahead_once(pulse: PulseServer, tmp_path: Path) -> None:
    root = tmp_path / "daemon"
    between = sentences_of(to_render(PHRASES))
    with Daemon(root / "first", no_model(root), pulse.environ(), WATCHDOG_S) as d:
        d.wait_ready()
        d.wait_rendered()
        cache = ClipCache(d.state_dir / "clips", SV.voice, DEFAULT_RATE_WPM, RATE)
        assert cache.missing(between) == []
        assert [line for line in d.log_lines() if re.match(r"INFO: \d+ phrases said between sets rendered", line)]
        # A render replaces the file (a new inode); reading it only touches it.
        written = {text: cache.path_for(text).stat().st_ino for text in between}
        assert d.terminate() == 0
    with Daemon(root / "second", no_model(root), pulse.environ(), WATCHDOG_S, state_dir=d.state_dir) as again:
        again.wait_ready()
        assert again.status()["rendering"] == 0
        again.ctl("progress")
        again.wait_status(quiet, what="the progress said")
    assert not any("between sets" in line for line in again.log_lines())
    # Said from the disk: rendered once, by the first daemon.
    assert {text: cache.path_for(text).stat().st_ino for text in between} == written


def test_a_set_starts_with_a_read_only_state_directory_and_says_the_journal_is_off(
    pulse: PulseServer, tmp_path: Path, tmpfs: Path
) -> None:
    root = tmp_path / "daemon"
    # A first run leaves the journal and the clips of every phrase it said before; then the disk turns read-only.
    with Daemon(root / "first", no_model(root), pulse.environ(), WATCHDOG_S, state_dir=tmpfs) as d:
        d.wait_ready()
        d.wait_rendered()
        assert d.terminate() == 0
    subprocess.run(["mount", "-o", "remount,ro", str(tmpfs)], check=True)
    with Daemon(root / "second", no_model(root), pulse.environ(), WATCHDOG_S, state_dir=tmpfs) as d:
        d.wait_ready()
        notice = PHRASES.text["journal_off"]
        # The notice comes before the set's introduction, and that before the first repetition.
        score = heard(pulse, d, notice, lambda: d.ctl("start", "styrka"), lambda s: s["rep"] is not None)
        assert score > WHOLE, f"{notice!r} was not heard (match {score:.2f})"
        assert d.status()["exercise"] == "strength"
        d.ctl("stop")
        d.wait_status(lambda s: s["state"] == "idle", what="idle after stop")
        pings_go_on(d)
        assert "Traceback" not in d.log()


# -- a clock that is not synchronised ------------------------------------------------------------------------------


def test_before_the_clock_is_synchronised_status_says_why_no_reminder_comes(pulse: PulseServer, tmp_path: Path) -> None:
    if TIMESYNC_FLAG.exists():
        pytest.skip(f"{TIMESYNC_FLAG} exists here (systemd-timesyncd has set the clock): it cannot be hidden")
    # A timedatectl first on PATH that says what systemd says before NTP has been reached.
    tools = tmp_path / "bin"
    tools.mkdir()
    (tools / "timedatectl").write_text("#!/bin/sh\necho no\n")
    (tools / "timedatectl").chmod(0o755)
    settings = tmp_path / "config.toml"
    settings.write_text('[reminders]\nenabled = true\ntimes = ["08:00"]\nquiet_hours = ""\n', encoding="utf-8")
    env = {**pulse.environ(), "PATH": f"{tools}{os.pathsep}{os.environ['PATH']}"}
    root = tmp_path / "daemon"
    with Daemon(root, [*no_model(root), "--config", str(settings)], env, WATCHDOG_S) as d:
        d.wait_ready()
        d.wait_rendered()
        assert d.status()["reminders"] == UNSYNCHRONISED
        assert f"reminders: {UNSYNCHRONISED}" in d.ctl("status")
        d.ctl("snooze", "30")
        d.wait_log(lambda line: "the system clock is not synchronised yet" in line, what="the refused snooze")
