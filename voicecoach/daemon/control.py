"""The local control channel: a Unix socket that speaks one JSON object a line, never TCP.

The server turns each request line into a plain Intent and puts it, with a reply callback, on the daemon's
asyncio queue: the same path a spoken command takes. The client is what `voicecoach ctl` uses.

    -> {"intent": "start", "exercise": "styrka"}
    <- {"ok": true, "message": "..."}
    -> {"intent": "status"}
    <- {"ok": true, "state": "session", "exercise": "strength", "rep": 3, "reps": 10, "microphone": true, ...}
    -> {"intent": "pause"}
    <- {"ok": false, "error": "nothing to pause: no session is running"}
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
import stat
import unicodedata
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from types import TracebackType
from typing import Any

from voicecoach import config, paths
from voicecoach.daemon.unix_server import Client, UnixServer
from voicecoach.engine.programme import ProgrammeError, find_exercise
from voicecoach.errors import UserError
from voicecoach.intents import MAX_SNOOZE_MIN, VOCABULARY, Intent, Name, Slot
from voicecoach.sound import volume

SOCKET_NAME = "control.sock"
# The system unit's RuntimeDirectory=voicecoach; a client outside the unit has no $RUNTIME_DIRECTORY to find it.
SYSTEM_RUNTIME_DIR = Path("/run/voicecoach")
SOCKET_MODE = 0o660
# Every intent but "help", which says aloud what can be said ('voicecoach commands' lists it at a terminal).
FIRST = (Name.STATUS, Name.START, Name.SAY)
INTENTS = (*FIRST, *(name for name in VOCABULARY if name not in (*FIRST, Name.HELP)))
# A request is a short command; a longer line is a confused or hostile client.
MAX_LINE = 4096
MAX_SAY = 500
# `ctl` opens one connection a request and closes it. More than this at once is a stuck or hostile client: each new
# connection then closes the one that has waited longest for a request, so `ctl` still gets through.
MAX_CLIENTS = 16
# A daemon that takes longer than this to answer one request is stuck; the client is told so, not left hanging.
REPLY_TIMEOUT_S = 10.0
CLIENT_TIMEOUT_S = REPLY_TIMEOUT_S + 5.0
HOW_TO_START = "start it with systemctl start voicecoach"

Reply = dict[str, object]


class ControlError(UserError):
    """The daemon cannot be reached, or it refused a request; the message says which and what to do."""


def intent_json(intent: Intent) -> dict[str, object]:
    """An intent as a request line's object."""
    extra = {"exercise": intent.exercise, "text": intent.text, "minutes": intent.minutes, "level": intent.level}
    return {"intent": str(intent.name)} | {k: v for k, v in extra.items() if v is not None}


def parse_intent(data: object) -> Intent:
    """Validate a decoded request; ValueError says what is wrong in words a `ctl` user understands."""
    if not isinstance(data, dict) or not isinstance(data.get("intent"), str):
        raise ValueError('a request is a JSON object with an "intent" string')
    raw = data["intent"]
    if raw not in INTENTS:
        raise ValueError(f"unknown intent {raw!r}: use one of {', '.join(INTENTS)}")
    name = Name(raw)
    extra = set(data) - set(VOCABULARY[name].slots) - {"intent"}
    if extra:
        raise ValueError(f"{name} takes no {', '.join(sorted(extra))}")
    if name is Name.START:
        exercise = data.get(Slot.EXERCISE)
        if not isinstance(exercise, str):
            raise ValueError("start needs an exercise")
        try:
            return Intent(name, exercise=find_exercise(exercise).key)
        except ProgrammeError as exc:
            raise ValueError(str(exc)) from None
    if name is Name.SAY:
        return Intent(name, text=say_text(data.get(Slot.TEXT)))
    if name is Name.SNOOZE:
        minutes = data.get(Slot.MINUTES)
        if isinstance(minutes, bool) or not isinstance(minutes, int) or not 1 <= minutes <= MAX_SNOOZE_MIN:
            raise ValueError(f"snooze needs minutes, a whole number from 1 to {MAX_SNOOZE_MIN}")
        return Intent(name, minutes=minutes)
    if name is Name.VOLUME:
        level = data.get(Slot.LEVEL)
        if level is not None and not isinstance(level, str):
            raise ValueError('volume\'s level is a string: "+3", "-3" or a level such as "-12dB"')
        volume.parse_request(level)
        return Intent(name, level=level)
    return Intent(name)


def say_text(text: object) -> str:
    """The text of a say request, whitespace tidied; ValueError for one that would be said as silence or not at all."""
    if not isinstance(text, str) or not text.strip() or len(text) > MAX_SAY:
        raise ValueError(f"say needs a text of 1 to {MAX_SAY} characters")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        # JSON's \ud800 escapes can name half of a character; no speech synthesizer can say it.
        raise ValueError("say's text is not valid Unicode (it has a lone surrogate)") from None
    # espeak-ng says punctuation, format characters (a zero-width space) and the like as silence.
    if not any(unicodedata.category(c)[0] in "LN" for c in text):
        raise ValueError("say needs words: a text with at least one letter or digit")
    return " ".join(text.split())


@dataclass(frozen=True)
class Request:
    """An intent from the socket and how to answer it. reply may be called from any thread, once."""

    intent: Intent
    reply: Callable[[Reply], object]


def ok(**extra: object) -> Reply:
    return {"ok": True, **extra}


def failed(message: str) -> Reply:
    """A refusal; message is one sentence the `ctl` user sees after "voicecoach: error:"."""
    return {"ok": False, "error": message}


@dataclass(frozen=True)
class DaemonStatus:
    """The answer to `status`, what `ctl status --json` prints: the devices, then Coach.status()'s fields."""

    state: str
    microphone: bool
    speaker: bool
    model: bool
    exercise: str | None = None
    rep: int | None = None
    reps: int | None = None
    reps_done: int | None = None
    paused: bool = False
    # The coach asked something after a set and listens for "ja" or "nej".
    question: bool = False
    # Seconds still to be said of what was said outside a set (a `ctl say`, progress); `ctl stop` ends it.
    speaking_s: float = 0.0
    # When the next reminder is due, or why none is (Conversation.reminder_status).
    reminders: str = ""
    # Why the configured Piper voice is not the one speaking (espeak-ng speaks instead; ClipCache.fallback).
    voice_fallback: str | None = None
    # Phrases said between sets still to be rendered ahead, while idle (after a new voice, rate or pack).
    rendering: int = 0
    # Her level in dB under [audio] volume (`ctl volume`), and whether it is the night's (the quiet hours).
    volume_db: float = 0.0
    night: bool = False
    # How the seconds of a hold are counted from the next set on: "words" or "ticks" ([speech] counts, or as said).
    counts: str = config.WORDS

    def as_json(self) -> dict[str, object]:
        return asdict(self)

    def as_reply(self) -> Reply:
        return ok(**self.as_json())

    @staticmethod
    def from_reply(reply: Mapping[str, object]) -> DaemonStatus:
        known = {f.name for f in fields(DaemonStatus)}
        try:
            given: dict[str, Any] = {k: v for k, v in reply.items() if k in known}
            return DaemonStatus(**given)
        except TypeError:
            raise ControlError("the daemon's status lacks a field: is it another voicecoach version?") from None

    def describe(self) -> str:
        """Lines for a person: the session, the devices, and the reminders where the daemon tells them."""
        session = self.state
        if self.exercise is not None:
            details = [self.exercise]
            if self.rep is not None and self.reps is not None:
                details.append(f"repetition {self.rep} of {self.reps}")
            if self.paused:
                details.append("paused")
            session += f" ({', '.join(details)})"
        elif self.question:
            session += " (waiting for the answer to a question: yes or no)"
        elif self.speaking_s > 0:
            session += f" (speaking, {self.speaking_s:.0f} s more; voicecoach ctl stop ends it)"
        up = {True: "up", False: "down"}
        devices = f"microphone {up[self.microphone]}, speaker {up[self.speaker]}"
        model = "model loaded" if self.model else "no speech model (voice control off)"
        reminders = f"\nreminders: {self.reminders}" if self.reminders else ""
        voice = (
            f"\nvoice: espeak-ng, not the configured Piper voice: {self.voice_fallback}" if self.voice_fallback else ""
        )
        if self.rendering:
            voice += f"\nvoice: rendering {self.rendering} phrases said between sets ahead, while idle"
        level = f"volume: {volume.describe(self.volume_db)}{', the night level' if self.night else ''}"
        counting = "a soft tick a second" if self.counts == config.TICKS else "the seconds said aloud"
        return f"state: {session}\n{devices}, {model}\n{level}\nholds: {counting}{reminders}{voice}"


# -- where the socket lives ------------------------------------------------------------------------------------------


def socket_path(state_dir: Path | None = None, environ: Mapping[str, str] | None = None) -> Path:
    """Where the daemon listens: $RUNTIME_DIRECTORY, else $XDG_RUNTIME_DIR/voicecoach, else the state directory."""
    env = os.environ if environ is None else environ
    if env.get("RUNTIME_DIRECTORY"):
        # systemd joins several RuntimeDirectory= entries with ':'; ours is the first.
        return Path(env["RUNTIME_DIRECTORY"].split(":")[0]) / SOCKET_NAME
    if env.get("XDG_RUNTIME_DIR"):
        return Path(env["XDG_RUNTIME_DIR"]) / "voicecoach" / SOCKET_NAME
    return (paths.state_dir() if state_dir is None else state_dir) / SOCKET_NAME


def candidate_paths(environ: Mapping[str, str] | None = None) -> list[Path]:
    """Where a client looks, in order: the daemon's own choice as seen from here, then the system service's."""
    env = os.environ if environ is None else environ
    found = [socket_path(environ=env), SYSTEM_RUNTIME_DIR / SOCKET_NAME, paths.state_dir() / SOCKET_NAME]
    return list(dict.fromkeys(found))


def _listening(path: Path) -> bool:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        try:
            probe.connect(str(path))
        except OSError:
            return False
    return True


# -- server ----------------------------------------------------------------------------------------------------------


class ControlServer:
    """Serves the socket on the running asyncio loop; requests go to queue, answers come back through reply."""

    def __init__(self, path: Path, queue: asyncio.Queue[Request]) -> None:
        self.path = path
        self._queue = queue
        goodbye = _line(failed(f"closed: {MAX_CLIENTS} connections were open and this one was idle longest"))
        self._server = UnixServer(path, SOCKET_MODE, self._serve, MAX_LINE, MAX_CLIENTS, goodbye)

    async def __aenter__(self) -> ControlServer:
        await self.start()
        return self

    async def __aexit__(
        self, _type: type[BaseException] | None, _exc: BaseException | None, _tb: TracebackType | None
    ) -> None:
        await self.close()

    async def start(self) -> None:
        self._clear_stale()
        self.path.parent.mkdir(mode=0o750, parents=True, exist_ok=True)
        try:
            # Owner and group only (SOCKET_MODE): the group is how an administrator grants `voicecoach ctl`.
            self._server.start()
        except OSError as exc:
            raise ControlError(f"cannot listen on {self.path}: {exc.strerror}; check the runtime directory") from None

    def problem(self) -> str | None:
        """What keeps `ctl` from being served, or None while it is served."""
        problem = self._server.problem()
        return None if problem is None else f"control socket {self.path}: {problem}"

    def _clear_stale(self) -> None:
        try:
            mode = os.lstat(self.path).st_mode
        except FileNotFoundError:
            return
        if not stat.S_ISSOCK(mode):
            raise ControlError(f"{self.path} exists and is not a socket; move it away and start again")
        if _listening(self.path):
            raise ControlError(f"another voicecoach daemon is listening on {self.path}; stop it first")
        # Left behind by a daemon that crashed: nobody answers on it.
        self.path.unlink()

    async def close(self) -> None:
        await self._server.close()

    async def _serve(self, reader: asyncio.StreamReader, client: Client) -> None:
        while True:
            try:
                line = await reader.readline()
            except ValueError:
                # StreamReader turns a line longer than its limit into ValueError; the stream is unusable now.
                await _send(client.writer, failed(f"a request must be one line of at most {MAX_LINE} bytes"))
                return
            if not line or client.closed:
                return
            client.busy()
            await _send(client.writer, await self._answer(line))
            client.idle()

    async def _answer(self, line: bytes) -> Reply:
        try:
            intent = parse_intent(json.loads(line))
        except UnicodeDecodeError:
            return failed("a request must be UTF-8 JSON")
        except json.JSONDecodeError:
            return failed("a request must be one JSON object a line")
        except RecursionError:
            return failed('a request is a flat JSON object with an "intent" string, not nested this deep')
        except ValueError as exc:
            return failed(str(exc))
        loop = asyncio.get_running_loop()
        answer: asyncio.Future[Reply] = loop.create_future()

        def settle(reply: Reply) -> None:
            if not answer.done():
                answer.set_result(reply)

        await self._queue.put(Request(intent, lambda reply: loop.call_soon_threadsafe(settle, reply)))
        try:
            return await asyncio.wait_for(answer, REPLY_TIMEOUT_S)
        except TimeoutError:
            return failed(f"the daemon did not answer {str(intent.name)!r} within {REPLY_TIMEOUT_S:.0f} s; see its log")


def _line(reply: Reply) -> bytes:
    # A message may quote what the client sent, lone surrogates included; they must not stop the reply.
    return json.dumps(reply, ensure_ascii=False).encode("utf-8", errors="replace") + b"\n"


async def _send(writer: asyncio.StreamWriter, reply: Reply) -> None:
    writer.write(_line(reply))
    await writer.drain()


# -- client ----------------------------------------------------------------------------------------------------------


def find_socket(environ: Mapping[str, str] | None = None) -> Path:
    """The first candidate socket that exists; ControlError naming every place looked when there is none."""
    candidates = candidate_paths(environ)
    for path in candidates:
        with contextlib.suppress(OSError):
            if stat.S_ISSOCK(os.stat(path).st_mode):
                return path
    where = " or ".join(str(p) for p in candidates)
    raise ControlError(f"the daemon is not running (no socket at {where}): {HOW_TO_START}")


def request(intent: Intent, path: Path | None = None, timeout: float = CLIENT_TIMEOUT_S) -> Reply:
    """Send one intent and return the daemon's reply; a refusal or an unreachable daemon raises ControlError."""
    target = find_socket() if path is None else path
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        try:
            sock.connect(str(target))
            sock.sendall(json.dumps(intent_json(intent), ensure_ascii=False).encode("utf-8") + b"\n")
            with sock.makefile("rb") as stream:
                line = stream.readline(MAX_LINE * 16)
        except (FileNotFoundError, ConnectionRefusedError):
            raise ControlError(f"the daemon is not running (no socket at {target}): {HOW_TO_START}") from None
        except PermissionError:
            raise ControlError(
                f"permission denied on {target}: add yourself to the daemon's group "
                "(sudo usermod -aG voicecoach $USER) and log in again"
            ) from None
        except TimeoutError:
            raise ControlError(f"the daemon did not answer within {timeout:.0f} s; see its log") from None
        except OSError as exc:
            raise ControlError(f"cannot talk to the daemon at {target}: {exc.strerror or exc}") from None
    try:
        reply = json.loads(line)
    except json.JSONDecodeError:
        reply = None
    if not isinstance(reply, dict):
        raise ControlError(f"the daemon at {target} closed the connection without a proper answer; see its log")
    if reply.get("ok") is not True:
        raise ControlError(str(reply.get("error", "the daemon refused the request")))
    return reply
