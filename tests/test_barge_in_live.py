"""Barge-in in rooms where the microphone hears the speaker: a set narrated in Korean (tests/data/narration-ko.toml,
whose lines say the Korean command phrases, as the Swedish narration says its own) through the private PulseAudio's
echo routes, with the one real model installable here. The narration alone must never be taken for a command (in
the loopback and canceller rooms it still is, now and then: such a run is a known failure, see KNOWN_FALSE_ACCEPTS);
her pause and stop, said over it, and her resume, must be acted on.

The routes (tests/pulse.py): the microphone is the speaker's monitor (one clock); a loopback 120 ms late whose
adaptive resampler makes the delay drift (two devices), with her voice as loud as the echo and 6 dB quieter; and the
same loopback behind PulseAudio's WebRTC echo canceller, as PipeWire's echo-cancel module puts one in front on
Raspberry Pi OS: there the coach records the microphone behind the canceller (which cuts her voice while the coach
speaks), so that room is the two-device room again, with the canceller's sink in the speaker's path.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from live_session import LiveSession, SessionEnded
from pulse import MICROPHONE, EchoRoute, PulseServer
from speech_corpus import KO_COMMANDS, VOICE_TRIES, phrase_wavs, require_ko_model, say_until

from voicecoach.cli.main import NOTHING_NOW
from voicecoach.sound.clips import read_wav, write_wav

KO_NARRATION = Path(__file__).parent / "data" / "narration-ko.toml"
# Hang guards only; nothing is measured against them.
FIRST_REP_S = 180.0
NARRATION_S = 60.0
HEARD_S = 10.0
EXIT_S = 30.0
# (route, the echo's delay in ms where it has one, how much louder the echo is than her voice in dB)
ROOMS = [("monitor", 0, 0.0), ("loopback", 120, 0.0), ("loopback", 120, 6.0), ("canceller", 120, 0.0)]
ROOM_IDS = [f"{route}-{delay}ms-echo{echo:+.0f}dB" for route, delay, echo in ROOMS]


def her_voice(directory: Path, quieter_db: float) -> dict[str, Path]:
    """The test phrases as she says them, quieter_db below the narration's level (both are espeak-ng at its own)."""
    wavs = phrase_wavs(directory)
    for wav in wavs.values():
        samples, rate = read_wav(wav)
        write_wav(wav, samples * 10 ** (-quieter_db / 20), rate)
    return wavs


def acted_on(lines: list[str]) -> list[str]:
    """What was heard in these lines of a session and changed the set: not a resume while it runs, which she cannot
    notice (it is still a false accept in benchmarks/listening_live.py, which counts every command heard from the
    narration)."""
    heard = [line.split("heard: ", 1)[1] for line in lines if "heard: " in line]
    return [phrase for phrase in heard if not phrase.endswith(NOTHING_NOW)]


# Rooms where the narration is still, now and then, acted on as a command: benchmarks/listening_live.py measured two
# in 27 minutes with a second device, four in 27 behind the canceller (benchmarks/README.md; issue 9, open), and a
# false "stop" or "next" ends the set this test runs. There a run that such a command disturbed is reported as a
# known failure, with what was acted on, instead of failing; a run where only her commands went unheard still
# fails. In the monitor room, where none was seen in 27 minutes, everything fails. Take a room out of this set once
# the cause is fixed.
KNOWN_FALSE_ACCEPTS = {"loopback", "canceller"}
HER_PHRASES = ("멈춤", "계속해", "정지")


def strays(session: LiveSession, spoken_from: int | None) -> list[str]:
    """Commands acted on that she did not give: any before she first spoke (at line spoken_from), and after that
    any that is not one of hers."""
    cut = len(session.lines) if spoken_from is None else spoken_from
    after = acted_on(session.lines[cut:])
    return acted_on(session.lines[:cut]) + [phrase for phrase in after if phrase not in HER_PHRASES]


@pytest.mark.audio
@pytest.mark.model
@pytest.mark.parametrize(("route", "latency_ms", "echo_db"), ROOMS, ids=ROOM_IDS)
def test_the_narration_is_never_a_command_and_her_commands_over_it_are_acted_on(
    pulse: PulseServer,
    live: Callable[..., LiveSession],
    tmp_path: Path,
    route: str,
    latency_ms: int,
    echo_db: float,
) -> None:
    model = require_ko_model()
    wavs = her_voice(tmp_path, echo_db)
    spoken_from: list[int] = []
    with pulse.echo_route(route, latency_ms) as room:
        session = _start(live, room, model, tmp_path)
        try:
            _narration_then_her_commands(session, room, wavs, VOICE_TRIES, spoken_from)
        except (AssertionError, TimeoutError, SessionEnded) as exc:
            stray = strays(session, spoken_from[0] if spoken_from else None)
            if route in KNOWN_FALSE_ACCEPTS and stray:
                pytest.xfail(f"the narration was acted on as {stray} (known in this room, issue 9)")
            # What the listener heard and measured, and why it did not act: a missed command says nothing else.
            exc.add_note(session.explain())
            raise
    assert "set stopped" in session.stderr()
    behind = f"listening to {MICROPHONE}.monitor, the microphone behind the sound system's echo canceller"
    assert (behind in session.stderr()) == (route == "canceller")


def _narration_then_her_commands(
    session: LiveSession, room: EchoRoute, wavs: dict[str, Path], tries: int, spoken_from: list[int]
) -> None:
    # Two repetitions of narration alone: the intro, "Knip", counts, "släpp", "vila", the coach's own words.
    session.wait_line(lambda line: "release 2: " in line, FIRST_REP_S, "the second repetition")
    assert acted_on(session.lines) == [], session.explain()

    def said(phrase: str) -> Callable[[], str]:
        # A try heard as another command is tried again, up to say_until's limit; only this one will do.
        return lambda: session.wait_line(lambda line: f"heard: {phrase}" in line, HEARD_S, f"{phrase} heard")

    spoken_from.append(len(session.lines))
    say_until(room.say, wavs["pause"], said("멈춤"), TimeoutError, tries)
    say_until(room.say, wavs["resume"], said("계속해"), TimeoutError, tries)
    # The narration again, alone ("계속해 쉬어요" among it when a rest goes on): nothing more is acted on.
    before = len(acted_on(session.lines))
    session.wait_line(lambda line: "release " in line, NARRATION_S, "the set going on")
    assert len(acted_on(session.lines)) == before, session.explain()
    say_until(room.say, wavs["stop"], said("정지"), TimeoutError, tries)
    assert session.process.wait(EXIT_S) == 0, session.explain()


def _start(live: Callable[..., LiveSession], room: EchoRoute, model: Path, tmp_path: Path) -> LiveSession:
    env = {**room.environ(), "VOICECOACH_STATE_DIR": str(tmp_path / "state"), "XDG_CONFIG_HOME": str(tmp_path)}
    # No quiet hours: in them the coach plays at its night level, and the room would change with the hour.
    (tmp_path / "voicecoach").mkdir(exist_ok=True)
    (tmp_path / "voicecoach" / "config.toml").write_text('[reminders]\nquiet_hours = ""\n', encoding="utf-8")
    args = ["session", "styrka", "--reps", "6", "--listen", "--explain", "--pack", str(KO_NARRATION)]
    args += ["--model", str(model), "--commands", str(KO_COMMANDS), "--input-device", "pulse", "--device", "pulse"]
    return live(args, env)
