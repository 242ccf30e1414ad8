"""`voicecoach check audio`: what the microphone hears of the speaker, measured in the private PulseAudio's rooms,
and the verdicts its figures give."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from coach_command import voicecoach_command
from conftest import one_error_line
from pulse import MICROPHONE, PulseServer

from voicecoach.cli.main import main
from voicecoach.listen import RATE
from voicecoach.listen.own_voice import EchoFollowing
from voicecoach.listen.reference import LEAD_S
from voicecoach.listen.report import CANCELLED_DB, LINEAR_COHERENCE, EchoMeter, Verdict, report
from voicecoach.listen.vad import FRAME

CHECK_S = 120.0  # a hang guard only


def meter(echo_db: float | None, removed_db: float | None, room_db: float | None) -> EchoMeter:
    """A meter that heard 2 s of echo at echo_db against what was played, removed_db of it taken out, and 2 s of a
    room at room_db."""
    m = EchoMeter()
    for _ in range(200):
        if echo_db is not None:
            m.heard(-20 + echo_db)
            m.echo(-20.0, -20 + echo_db, -20 + echo_db - (removed_db or 0.0))
        if room_db is not None:
            m.heard(room_db)
            m.quiet(room_db)
    return m


@pytest.mark.parametrize(
    ("echo_db", "removed_db", "room_db", "verdicts"),
    [
        (-5.0, 25.0, -60.0, [Verdict.GOOD]),
        (-5.0, 8.0, -60.0, [Verdict.WEAK_CANCELLING]),
        # A system echo canceller in front took most of it: what is left is what counts.
        (-30.0, 3.0, -60.0, [Verdict.GOOD]),
        (-70.0, 0.0, -60.0, [Verdict.NO_ECHO]),
        (8.0, 30.0, -60.0, [Verdict.LOUD_ECHO]),
        (-5.0, 25.0, -30.0, [Verdict.GOOD, Verdict.NOISY]),
        (None, None, -60.0, [Verdict.NOT_ENOUGH]),
    ],
)
def test_the_verdict_says_what_the_figures_mean(echo_db, removed_db, room_db, verdicts) -> None:
    result = report(meter(echo_db, removed_db, room_db), 0.1, 40e-6)
    assert list(result.verdicts) == verdicts
    assert result.heard_over_coach is (verdicts[0] in (Verdict.GOOD, Verdict.NO_ECHO))


def test_an_echo_taken_out_before_the_microphone_in_a_way_that_follows_nothing_is_a_system_canceller() -> None:
    faint = meter(-70.0, 0.0, -60.0)
    # Found at a delay, but little of what was heard follows what was played: a canceller's nonlinear suppression.
    result = report(faint, 0.12, 40e-6, coherence=LINEAR_COHERENCE - 0.2)
    assert result.verdicts == (Verdict.CANCELLER_IN_FRONT,) and result.heard_over_coach is False
    assert result.as_json()["coherence"] == pytest.approx(LINEAR_COHERENCE - 0.2)
    # A faint echo that follows what was played (headphones that leak), or none found at all: no echo to speak of.
    assert report(faint, 0.12, 40e-6, coherence=0.95).verdicts == (Verdict.NO_ECHO,)
    assert report(faint, None, None, coherence=0.0).verdicts == (Verdict.NO_ECHO,)
    # A canceller does not always take it under INAUDIBLE_DB (CI: -44.6 dB behind the tests' WebRTC canceller).
    # Up to CANCELLED_DB a found, incoherent echo that stands above the room's noise still names it...
    left = meter(CANCELLED_DB - 5.0, 1.5, -120.0)
    assert report(left, -0.18, -27e-6, coherence=0.29).verdicts == (Verdict.CANCELLER_IN_FRONT,)
    assert report(left, -0.18, -27e-6, coherence=0.9).verdicts == (Verdict.GOOD,)
    assert report(meter(CANCELLED_DB + 5.0, 0.0, -120.0), 0.12, 0.0, coherence=0.1).verdicts[0] != (
        Verdict.CANCELLER_IN_FRONT
    )
    # ... but not one the room's noise drowns (here the echo frames are no louder than the quiet ones), which follows
    # nothing for that reason alone.
    drowned = meter(CANCELLED_DB - 5.0, 1.5, -20.0 + CANCELLED_DB - 5.0)
    assert report(drowned, 0.12, 0.0, coherence=0.1).verdicts[0] == Verdict.GOOD
    # An echo the microphone hears well is judged by what the canceller leaves, whatever it follows.
    assert report(meter(-5.0, 25.0, -60.0), 0.12, 40e-6, coherence=0.1).verdicts == (Verdict.GOOD,)


def test_a_microphone_that_gives_nothing_at_all_is_called_silent() -> None:
    result = report(meter(None, None, -120.0), None, None)
    assert result.verdicts == (Verdict.SILENT_MICROPHONE,)
    assert result.as_json()["heard_over_coach"] is False


def test_clocks_far_apart_are_named() -> None:
    result = report(meter(-5.0, 25.0, -60.0), 0.1, 280e-6)
    assert Verdict.DRIFT in result.verdicts and result.drift_ppm == pytest.approx(280.0)


def test_an_unknown_microphone_is_one_line_before_anything_plays(
    pulse: PulseServer, state_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["check", "audio", "--input-device", "no-such-mic", "--output-device", "pulse"]) == 1
    assert "'no-such-mic' is not an input device" in one_error_line(capsys)


def _check(room_env: dict[str, str], tmp_path: Path) -> dict[str, object]:
    # The state directory is named in the user's config.toml alone, as the daemon would take it (issue 11).
    state, default = tmp_path / "state", tmp_path / "default-state"
    (tmp_path / "voicecoach").mkdir()
    (tmp_path / "voicecoach" / "config.toml").write_text(f"state_dir = {json.dumps(str(state))}\n", encoding="utf-8")
    env = {k: v for k, v in room_env.items() if k != "VOICECOACH_STATE_DIR"}
    env.update(XDG_CONFIG_HOME=str(tmp_path), XDG_STATE_HOME=str(default))
    args = ["check", "audio", "--json", "--input-device", "pulse", "--output-device", "pulse"]
    out = subprocess.run([*voicecoach_command(), *args], env=env, capture_output=True, text=True, timeout=CHECK_S)
    assert out.returncode == 0, out.stderr
    assert "Traceback" not in out.stderr
    assert any((state / "clips").glob("*.wav")) and not default.exists()
    return json.loads(out.stdout)


@pytest.mark.audio
@pytest.mark.speech
def test_a_room_whose_microphone_hears_the_speaker_through_a_second_device(pulse: PulseServer, tmp_path: Path) -> None:
    with pulse.echo_route("loopback", 120) as room:
        figures = _check(room.environ(), tmp_path)
    assert figures["verdicts"] == ["good"] and figures["heard_over_coach"] is True, figures
    # The loopback plays what it hears at the level it was played; the canceller takes most of it out.
    assert -12 < figures["echo_db"] < 3
    assert figures["removed_db"] > 15
    assert figures["delay_ms"] is not None
    assert figures["coherence"] > LINEAR_COHERENCE
    assert figures["behind_canceller"] is None


@pytest.mark.audio
@pytest.mark.speech
def test_behind_a_system_echo_canceller_the_microphone_is_measured(pulse: PulseServer, tmp_path: Path) -> None:
    # The check records the microphone the canceller cleans, as the coach does: the loopback's echo, whole.
    with pulse.echo_route("canceller", 120) as room:
        figures = _check(room.environ(), tmp_path)
    assert figures["verdicts"] == ["good"] and figures["heard_over_coach"] is True, figures
    assert figures["coherence"] > LINEAR_COHERENCE
    assert figures["behind_canceller"] == f"{MICROPHONE}.monitor"


@pytest.mark.audio
@pytest.mark.speech
def test_a_system_echo_canceller_it_cannot_look_behind_is_named(pulse: PulseServer, tmp_path: Path) -> None:
    # As a speakerphone's own canceller, or a sound server that refuses the move: PulseAudio's WebRTC canceller takes
    # the echo out before voicecoach hears it, and cuts her voice while the coach speaks: the microphone hardly hears
    # the speaker, yet commands said over the coach are often missed.
    refusing = tmp_path / "bin"
    refusing.mkdir()
    pactl = refusing / "pactl"
    script = f'#!/bin/sh\n[ "$1" = move-source-output ] && exit 1\nexec {shutil.which("pactl")} "$@"\n'
    pactl.write_text(script, encoding="utf-8")
    pactl.chmod(0o755)
    with pulse.echo_route("canceller", 120) as room:
        env = room.environ()
        figures = _check({**env, "PATH": f"{refusing}:{env['PATH']}"}, tmp_path)
    assert figures["verdicts"][0] == "canceller_in_front", figures
    assert figures["heard_over_coach"] is False
    assert figures["behind_canceller"] is None


@pytest.mark.audio
@pytest.mark.speech
def test_a_virtual_microphone_that_hears_nothing_is_called_silent(pulse: PulseServer, tmp_path: Path) -> None:
    with pulse.echo_route("none") as room:
        figures = _check(room.environ(), tmp_path)
    assert figures["verdicts"] == ["silent_microphone"]
    assert figures["heard_over_coach"] is False


def test_how_much_follows_what_was_played_is_measured_over_the_last_seconds_kept() -> None:
    rng = np.random.default_rng(3)
    lead = round(LEAD_S * RATE)
    played = rng.normal(0, 0.1, 20 * RATE).astype(np.float32)
    # 10 s of a microphone that hears something else, then 10 s of the played signal's echo, LEAD_S after it.
    mic = np.concatenate((rng.normal(0, 0.1, 10 * RATE), np.zeros(lead), played[10 * RATE : -lead])).astype(np.float32)
    recent, whole = EchoFollowing(10.0), EchoFollowing(20.0)
    assert recent.share() is None
    for start in range(0, mic.size, FRAME):
        for following in (recent, whole):
            following.keep(mic[start : start + FRAME], played[start : start + FRAME])
    recent_share, whole_share = recent.share(), whole.share()
    assert recent_share is not None and whole_share is not None
    assert recent_share > 0.9 and whole_share < 0.6, (recent_share, whole_share)
    recent.clear()
    assert recent.share() is None
