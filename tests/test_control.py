"""The control socket: requests become plain intents on the daemon's queue, replies come back, and only Unix sockets."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import stat
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

from voicecoach.cli.main import main
from voicecoach.coach import Coach
from voicecoach.daemon import control
from voicecoach.daemon.control import ControlError, ControlServer, DaemonStatus, Request
from voicecoach.engine.language import Pack
from voicecoach.engine.programme import find_exercise
from voicecoach.intents import Intent
from voicecoach.sound.mixer import Mixer

RUNNING = DaemonStatus(
    state="session", microphone=True, speaker=False, model=False, exercise="strength", rep=3, reps=10, reps_done=2
)


def fake_daemon(request: Request) -> None:
    """Answers the way the daemon will: status, a refusal for pause, and an echo of everything else."""
    if request.intent.name == "status":
        request.reply(RUNNING.as_reply())
    elif request.intent.name == "pause":
        request.reply(control.failed("nothing to pause: no session is running"))
    else:
        request.reply(control.ok(message=f"did {control.intent_json(request.intent)}"))


@asynccontextmanager
async def daemon(path: Path, answer: Callable[[Request], None] = fake_daemon) -> AsyncIterator[list[Intent]]:
    """A ControlServer with a consumer task standing in for the daemon; yields the intents it took off the queue."""
    queue: asyncio.Queue[Request] = asyncio.Queue()
    seen: list[Intent] = []

    async def consume() -> None:
        while True:
            request = await queue.get()
            seen.append(request.intent)
            answer(request)

    async with ControlServer(path, queue):
        task = asyncio.create_task(consume())
        try:
            yield seen
        finally:
            task.cancel()


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "run" / control.SOCKET_NAME


async def raw(path: Path, *lines: bytes) -> list[dict[str, object]]:
    """Send raw lines on one connection and read one reply a line."""
    reader, writer = await asyncio.open_unix_connection(str(path))
    replies = []
    for line in lines:
        writer.write(line)
        await writer.drain()
        replies.append(json.loads(await reader.readline()))
    writer.close()
    return replies


def test_round_trip_through_the_queue(path: Path) -> None:
    async def scenario() -> None:
        async with daemon(path) as seen:
            start = await asyncio.to_thread(control.request, Intent("start", exercise="strength"), path)
            status = await asyncio.to_thread(control.request, Intent("status"), path)
            with pytest.raises(ControlError, match=r"^nothing to pause: no session is running$"):
                await asyncio.to_thread(control.request, Intent("pause"), path)
            assert seen == [Intent("start", exercise="strength"), Intent("status"), Intent("pause")]
        assert start == {"ok": True, "message": "did {'intent': 'start', 'exercise': 'strength'}"}
        assert DaemonStatus.from_reply(status) == RUNNING

    asyncio.run(scenario())


def test_socket_is_unix_only_mode_0660_and_removed_on_close(path: Path) -> None:
    async def scenario() -> None:
        queue: asyncio.Queue[Request] = asyncio.Queue()
        server = ControlServer(path, queue)
        await server.start()
        try:
            assert stat.S_ISSOCK(os.stat(path).st_mode)
            assert stat.S_IMODE(os.stat(path).st_mode) == 0o660
            # Listening as a Unix socket (the kernel's list of them), and on nothing else: the server opens no other.
            assert str(path) in Path("/proc/self/net/unix").read_text()
        finally:
            await server.close()
        assert not path.exists()

    asyncio.run(scenario())


def test_several_requests_on_one_connection_and_swedish_names_normalised(path: Path) -> None:
    async def scenario() -> list[dict[str, object]]:
        async with daemon(path) as seen:
            replies = await raw(
                path,
                '{"intent": "start", "exercise": "Uthållighet"}\n'.encode(),
                b'{"intent": "say", "text": "  hej \\n  d\xc3\xa5  "}\n',
                b'{"intent": "resume"}\n',
            )
            assert seen == [Intent("start", exercise="endurance"), Intent("say", text="hej då"), Intent("resume")]
            return replies

    assert [r["ok"] for r in asyncio.run(scenario())] == [True, True, True]


@pytest.mark.parametrize(
    ("line", "error"),
    [
        (b"pause\n", "a request must be one JSON object a line"),
        (b"[1, 2]\n", 'a request is a JSON object with an "intent" string'),
        (b'{"intent": "dance"}\n', "unknown intent 'dance': use one of status, start, say, pause, resume, stop"),
        (b'{"intent": "start"}\n', "start needs an exercise"),
        (b'{"intent": "start", "exercise": "yoga"}\n', "unknown exercise 'yoga'"),
        (b'{"intent": "say", "text": "   "}\n', f"say needs a text of 1 to {control.MAX_SAY} characters"),
        (b'{"intent": "stop", "exercise": "speed"}\n', "stop takes no exercise"),
        (b'{"intent": "status"\xff}\n', "a request must be UTF-8 JSON"),
        (b'{"intent": "snooze"}\n', "snooze needs minutes, a whole number from 1 to 720"),
        (b'{"intent": "snooze", "minutes": 0}\n', "snooze needs minutes"),
        (b'{"intent": "snooze", "minutes": true}\n', "snooze needs minutes"),
        (b'{"intent": "yes", "minutes": 5}\n', "yes takes no minutes"),
        (b'{"intent": "volume", "level": "loud"}\n', "volume 'loud' is neither a change nor a level; use +3 or -3"),
        (b'{"intent": "volume", "level": "-40dB"}\n', "a volume of -40 dB is out of range; use -30 to 0 dB"),
        (b'{"intent": "volume", "level": -3}\n', "volume's level is a string"),
        (b'{"intent": "say", "text": "..."}\n', "say needs words: a text with at least one letter or digit"),
        ('{"intent": "say", "text": "\u200b"}\n'.encode(), "say needs words"),
        (b'{"intent": "say", "text": "\\u200b \\ud83d\\ude00 !"}\n', "say needs words"),
        (b'{"intent": "say", "text": "\\ud800 hej"}\n', "say's text is not valid Unicode (it has a lone surrogate)"),
        (b"[" * 2000 + b"]" * 2000 + b"\n", 'a request is a flat JSON object with an "intent" string'),
        (b'{"intent": "status", "\\udc80": 1}\n', "status takes no ?"),
    ],
)
def test_bad_requests_are_refused_without_reaching_the_daemon(path: Path, line: bytes, error: str) -> None:
    async def scenario() -> tuple[list[dict[str, object]], list[Intent]]:
        async with daemon(path) as seen:
            # The connection stays usable after a refusal.
            return await raw(path, line, b'{"intent": "status"}\n'), list(seen)

    (refusal, after), seen = asyncio.run(scenario())
    assert refusal["ok"] is False
    assert str(refusal["error"]).startswith(error)
    assert after["ok"] is True
    assert seen == [Intent("status")]


def test_at_the_cap_a_new_connection_closes_the_one_idle_longest(path: Path) -> None:
    async def scenario() -> tuple[bytes, dict[str, object], dict[str, object]]:
        async with daemon(path):
            held = []
            for _ in range(control.MAX_CLIENTS):
                held.append(await asyncio.open_unix_connection(str(path)))
                # Each is taken in before the next comes, so the first is the one idle longest.
                await asyncio.sleep(0.01)
            newcomer = (await raw(path, b'{"intent": "status"}\n'))[0]
            goodbye = await asyncio.wait_for(held[0][0].read(), 5)
            # The others still wait for a request, and are answered.
            reader, writer = held[1]
            writer.write(b'{"intent": "status"}\n')
            second = json.loads(await reader.readline())
            for _reader, writer in held:
                writer.close()
            return goodbye, newcomer, second

    goodbye, newcomer, second = asyncio.run(scenario())
    assert (newcomer["ok"], second["ok"]) == (True, True)
    assert json.loads(goodbye) == {
        "ok": False,
        "error": f"closed: {control.MAX_CLIENTS} connections were open and this one was idle longest",
    }


def test_an_overlong_line_is_refused_and_the_connection_closed(path: Path) -> None:
    async def scenario() -> tuple[dict[str, object], bytes]:
        async with daemon(path):
            reader, writer = await asyncio.open_unix_connection(str(path))
            writer.write(b"x" * (control.MAX_LINE * 2) + b"\n")
            await writer.drain()
            reply = json.loads(await reader.readline())
            rest = await reader.read()
            writer.close()
            return reply, rest

    reply, rest = asyncio.run(scenario())
    assert reply == {"ok": False, "error": f"a request must be one line of at most {control.MAX_LINE} bytes"}
    assert rest == b""


def test_a_daemon_that_never_answers_gets_a_timeout_reply(path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(control, "REPLY_TIMEOUT_S", 0.01)

    async def scenario() -> list[dict[str, object]]:
        async with daemon(path, answer=lambda _request: None):
            return await raw(path, b'{"intent": "stop"}\n')

    [reply] = asyncio.run(scenario())
    assert reply["ok"] is False
    assert str(reply["error"]).startswith("the daemon did not answer 'stop'")


def test_a_stale_socket_is_replaced(path: Path) -> None:
    path.parent.mkdir(parents=True)
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as dead:
        dead.bind(str(path))
    assert path.exists()

    async def scenario() -> dict[str, object]:
        async with daemon(path):
            return await asyncio.to_thread(control.request, Intent("status"), path)

    assert asyncio.run(scenario())["state"] == "session"


def test_a_live_socket_is_not_stolen(path: Path) -> None:
    async def scenario() -> None:
        async with daemon(path):
            with pytest.raises(ControlError, match="another voicecoach daemon is listening on"):
                await ControlServer(path, asyncio.Queue()).start()
            assert (await asyncio.to_thread(control.request, Intent("status"), path))["ok"] is True

    asyncio.run(scenario())


def test_a_file_in_the_way_is_an_error(path: Path) -> None:
    path.parent.mkdir(parents=True)
    path.write_text("not a socket")
    with pytest.raises(ControlError, match="exists and is not a socket"):
        asyncio.run(ControlServer(path, asyncio.Queue()).start())


def test_ctl_without_a_daemon_says_how_to_start_it(path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["ctl", "--socket", str(path), "pause"]) == 1
    assert capsys.readouterr().err.strip() == (
        f"voicecoach: error: the daemon is not running (no socket at {path}): start it with systemctl start voicecoach"
    )


def test_find_socket_lists_every_place_it_looked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VOICECOACH_STATE_DIR", str(tmp_path / "state"))
    env = {"XDG_RUNTIME_DIR": str(tmp_path / "xdg")}
    with pytest.raises(ControlError) as caught:
        control.find_socket(env)
    assert str(caught.value) == (
        f"the daemon is not running (no socket at {tmp_path / 'xdg' / 'voicecoach' / 'control.sock'} or "
        f"{control.SYSTEM_RUNTIME_DIR / 'control.sock'} or {tmp_path / 'state' / 'control.sock'}): "
        "start it with systemctl start voicecoach"
    )


def test_ctl_status_finds_the_user_daemon_and_prints_json_or_words(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("RUNTIME_DIRECTORY", raising=False)
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path))
    path = control.socket_path()
    assert path == tmp_path / "voicecoach" / control.SOCKET_NAME

    async def scenario() -> tuple[int, int, int]:
        async with daemon(path) as seen:
            codes = (
                await asyncio.to_thread(main, ["ctl", "status", "--json"]),
                await asyncio.to_thread(main, ["ctl", "status"]),
                await asyncio.to_thread(main, ["ctl", "say", "hej", "då"]),
            )
            assert seen[-1] == Intent("say", text="hej då")
            return codes

    assert asyncio.run(scenario()) == (0, 0, 0)
    out = capsys.readouterr().out.splitlines()
    assert json.loads(out[0]) == RUNNING.as_json()
    assert out[1:5] == [
        "state: session (strength, repetition 3 of 10)",
        "microphone up, speaker down, no speech model (voice control off)",
        "volume: 0 dB (the loudest: [audio] volume)",
        "holds: the seconds said aloud",
    ]
    assert out[5] == "did {'intent': 'say', 'text': 'hej då'}"


def test_ctl_checks_the_exercise_before_looking_for_the_daemon(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["ctl", "--socket", "/nonexistent/control.sock", "start", "yoga"]) == 2
    assert "unknown exercise 'yoga'" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"RUNTIME_DIRECTORY": "/run/voicecoach:/run/other", "XDG_RUNTIME_DIR": "/run/user/7"}, "/run/voicecoach"),
        ({"XDG_RUNTIME_DIR": "/run/user/7"}, "/run/user/7/voicecoach"),
        ({}, "/var/lib/vc"),
    ],
)
def test_socket_path_prefers_systemds_runtime_directory(env: dict[str, str], expected: str) -> None:
    assert control.socket_path(Path("/var/lib/vc"), env) == Path(expected) / control.SOCKET_NAME


def test_an_idle_coachs_status_fills_the_daemon_status(sv: Pack) -> None:
    # The daemon answers status with the coach's own fields plus the devices; an idle coach needs no clips.
    coach = Coach(Mixer(16000), clips=None, pack=sv, exercises=find_exercise)  # type: ignore[arg-type]
    status = DaemonStatus(**coach.status(), microphone=False, speaker=True, model=True)
    assert status.describe() == (
        "state: idle\nmicrophone down, speaker up, model loaded\nvolume: 0 dB (the loudest: [audio] volume)\n"
        "holds: the seconds said aloud"
    )
    assert DaemonStatus.from_reply(status.as_reply()) == status


def test_holds_counted_with_ticks_say_so() -> None:
    status = DaemonStatus("idle", True, True, True, counts="ticks")
    assert "holds: a soft tick a second" in status.describe().splitlines()
    assert DaemonStatus.from_reply(status.as_reply()).counts == "ticks"


def test_a_paused_set_says_so() -> None:
    status = DaemonStatus("session", True, True, True, exercise="speed", rep=4, reps=10, reps_done=3, paused=True)
    assert status.describe().splitlines()[0] == "state: session (speed, repetition 4 of 10, paused)"


def test_speech_still_to_say_and_the_reminders_are_described() -> None:
    status = DaemonStatus("idle", True, True, True, speaking_s=42.4, reminders="next at 2024-06-03 18:00")
    assert status.describe().splitlines() == [
        "state: idle (speaking, 42 s more; voicecoach ctl stop ends it)",
        "microphone up, speaker up, model loaded",
        "volume: 0 dB (the loudest: [audio] volume)",
        "holds: the seconds said aloud",
        "reminders: next at 2024-06-03 18:00",
    ]


def test_a_voice_that_fell_back_to_espeak_says_why() -> None:
    why = "the Piper voice sv_SE-nst-medium is not installed: run 'voicecoach voice fetch sv --voice sv_SE-nst-medium'"
    status = DaemonStatus("idle", True, True, True, voice_fallback=why)
    assert status.describe().splitlines()[-1] == f"voice: espeak-ng, not the configured Piper voice: {why}"
    assert DaemonStatus.from_reply(status.as_reply()).voice_fallback == why
    assert "voice" not in DaemonStatus("idle", True, True, True).describe()


def test_status_says_how_many_phrases_are_still_rendered_ahead() -> None:
    status = DaemonStatus("idle", True, True, True, rendering=42)
    assert status.describe().splitlines()[-1] == "voice: rendering 42 phrases said between sets ahead, while idle"
    assert DaemonStatus.from_reply(status.as_reply()).rendering == 42


def test_a_waiting_question_says_so() -> None:
    status = DaemonStatus("idle", True, True, True, question=True)
    assert status.describe().splitlines()[0] == "state: idle (waiting for the answer to a question: yes or no)"
    assert DaemonStatus.from_reply(status.as_reply()).question is True


def test_a_status_without_the_device_fields_is_refused() -> None:
    with pytest.raises(ControlError, match="lacks a field"):
        DaemonStatus.from_reply({"ok": True, "state": "idle"})


def test_every_session_intent_of_the_coach_is_a_ctl_command(path: Path) -> None:
    async def scenario() -> list[Intent]:
        async with daemon(path, answer=lambda request: request.reply(control.ok())) as seen:
            for command in ("pause", "resume", "next", "repeat", "how-many-left", "cant", "stop"):
                assert await asyncio.to_thread(main, ["ctl", "--socket", str(path), command]) == 0
            return list(seen)

    names = [intent.name for intent in asyncio.run(scenario())]
    assert names == ["pause", "resume", "next", "repeat", "how_many_left", "cant", "stop"]


def test_the_coachs_idle_intents_are_ctl_commands(path: Path) -> None:
    async def scenario() -> list[Intent]:
        async with daemon(path, answer=lambda request: request.reply(control.ok())) as seen:
            for command in (
                ["start-next"],
                ["progress"],
                ["yes"],
                ["no"],
                ["snooze", "30"],
                ["leak"],
                ["pad"],
                ["undo"],
            ):
                assert await asyncio.to_thread(main, ["ctl", "--socket", str(path), *command]) == 0
            return list(seen)

    assert asyncio.run(scenario()) == [
        Intent("start_next"),
        Intent("progress"),
        Intent("yes"),
        Intent("no"),
        Intent("snooze", minutes=30),
        Intent("leak"),
        Intent("pad"),
        Intent("undo"),
    ]


def test_the_level_and_whether_it_is_the_nights_are_in_the_status() -> None:
    status = DaemonStatus("idle", True, True, True, volume_db=-12.0, night=True)
    assert status.describe().splitlines()[2] == "volume: -12 dB, the night level"
    assert DaemonStatus.from_reply(status.as_reply()) == status


def test_ctl_volume_tells_or_changes_the_level(path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    async def scenario() -> list[Intent]:
        async with daemon(path, answer=lambda request: request.reply(control.ok(message="volume -3 dB"))) as seen:
            for level in ([], ["+3"], ["-6"], ["-12dB"], ["0"]):
                assert await asyncio.to_thread(main, ["ctl", "--socket", str(path), "volume", *level]) == 0
            return list(seen)

    assert asyncio.run(scenario()) == [
        Intent("volume"),
        Intent("volume", level="+3"),
        Intent("volume", level="-6"),
        Intent("volume", level="-12dB"),
        Intent("volume", level="0"),
    ]
    assert capsys.readouterr().out.splitlines() == ["volume -3 dB"] * 5


def test_ctl_volume_checks_the_level_before_looking_for_the_daemon(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["ctl", "--socket", "/nonexistent/control.sock", "volume", "+5dB"]) == 2
    assert "a volume of 5 dB is out of range; use -30 to 0 dB" in capsys.readouterr().err
