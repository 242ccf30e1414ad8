"""A sound server's echo canceller in front of the microphone: the coach records the microphone behind it instead
(voicecoach/daemon/pulsewatch.py), found as PulseAudio and as PipeWire describe it, and moved to for real in both."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import require_tools
from daemon_harness import Daemon
from pipewire import (
    ALSA_PLUGIN_DEVICE,
    CANCELLER_SINK,
    CANCELLER_SOURCE,
    PIPEWIRE_SPEAKER,
    RAW_MICROPHONE,
    PipeWire,
)
from pipewire import missing_tools as pipewire_missing
from pulse import CANCELLED_SOURCE, MICROPHONE, PulseServer
from speech_corpus import KO_COMMANDS, require_ko_model
from test_daemon import fake_pactl

from voicecoach.cli.listen import off_canceller
from voicecoach.daemon import pulsewatch
from voicecoach.daemon.devices import Devices
from voicecoach.sound import audio
from voicecoach.sound.clips import write_wav

PID = "1234"
# As `pactl -f json list` shows them (trimmed): PulseAudio 16's module-echo-cancel, and a remap-source, which has
# a master too but is no canceller.
PULSEAUDIO_SOURCES = [
    {"index": 1, "name": "alsa_input.usb-mic", "properties": {"device.class": "sound"}},
    {
        "index": 2,
        "name": "ec_src",
        "properties": {
            "device.master_device": "alsa_input.usb-mic",
            "device.class": "filter",
            "device.intended_roles": "phone",
        },
    },
    {
        "index": 3,
        "name": "remapped",
        "properties": {"device.master_device": "alsa_input.usb-mic", "device.class": "filter"},
    },
]
# PipeWire 0.3.65's echo-cancel module, through pipewire-pulse: its source and the stream capturing the microphone
# share a link group.
PIPEWIRE_SOURCES = [
    {"index": 32, "name": "alsa_input.usb-mic", "properties": {"media.class": "Audio/Source"}},
    {
        "index": 36,
        "name": "echo-cancel-source",
        "properties": {"media.class": "Audio/Source", "node.link-group": "echo-cancel-21732-27"},
    },
]
PIPEWIRE_CAPTURE = {"index": 35, "source": 32, "properties": {"node.link-group": "echo-cancel-21732-27"}}


def pactl_answering(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    sources: list,
    *outputs: list,
    refuse: bool = False,
    clients: list | None = None,
) -> Path:
    """A fake pactl listing these sources, these clients (none by default), and these source-outputs: the first list
    when first asked, the next the next time, the last from then on. The moves asked of it are written to the file
    returned (refuse: it fails them instead)."""
    calls, moves = tmp_path / "calls", tmp_path / "moves"
    answers = "".join(f"      {n}) echo '{json.dumps(listed)}' ;;\n" for n, listed in enumerate(outputs[:-1], 1))
    move = "exit 1" if refuse else f'echo "$2 $3" >> {moves}'
    script = f"""case "$1 $4" in
  "-f source-outputs") echo x >> {calls}
    case $(wc -l < {calls}) in
{answers}      *) echo '{json.dumps(outputs[-1])}' ;;
    esac ;;
  "-f sources") echo '{json.dumps(sources)}' ;;
  "-f clients") echo '{json.dumps(clients or [])}' ;;
  "move-source-output "*) {move} ;;
  *) exit 1 ;;
esac"""
    fake_pactl(tmp_path / "bin", script, monkeypatch)
    return moves


def ours_on(source: int, index: int = 7) -> dict:
    return {"index": index, "source": source, "properties": {"application.process.id": PID}}


def test_behind_pulseaudios_canceller_the_recording_moves_to_its_master(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    moves = pactl_answering(tmp_path, monkeypatch, PULSEAUDIO_SOURCES, [ours_on(2)])
    assert pulsewatch.recording_source(int(PID)) == pulsewatch.Source("ec_src", False, "alsa_input.usb-mic")
    assert pulsewatch.move_off_canceller(int(PID)) == "alsa_input.usb-mic"
    assert moves.read_text() == "7 alsa_input.usb-mic\n"


def test_another_filter_with_a_master_is_left_alone(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    moves = pactl_answering(tmp_path, monkeypatch, PULSEAUDIO_SOURCES, [ours_on(3)])
    assert pulsewatch.recording_source(int(PID)) == pulsewatch.Source("remapped", False, None)
    assert pulsewatch.move_off_canceller(int(PID)) is None
    assert not moves.exists()


def test_behind_pipewires_canceller_the_microphone_is_what_its_capture_stream_records(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    moves = pactl_answering(tmp_path, monkeypatch, PIPEWIRE_SOURCES, [PIPEWIRE_CAPTURE, ours_on(36, 40)])
    assert pulsewatch.move_off_canceller(int(PID)) == "alsa_input.usb-mic"
    assert moves.read_text() == "40 alsa_input.usb-mic\n"
    # Without its capture stream (the microphone is gone) there is nothing to move to.
    moves.unlink()
    pactl_answering(tmp_path, monkeypatch, PIPEWIRE_SOURCES, [ours_on(36, 40)])
    assert pulsewatch.move_off_canceller(int(PID)) is None
    assert not moves.exists()


def test_a_pipewire_clients_recording_is_found_by_its_clients_process_id(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """PipeWire's own ALSA plugin (pipewire-alsa) puts no process id on its streams, only on its client, as
    pipewire-pulse 0.3.65 lists them; another program's recording on the same source is not the coach's."""
    clients = [
        {"index": 66, "properties": {"application.process.id": PID, "application.name": "voicecoach"}},
        {"index": 70, "properties": {"application.process.id": "999", "application.name": "PipeWire ALSA [python3]"}},
    ]
    theirs = {"index": 41, "client": "70", "source": 36, "properties": {}}
    mine = {"index": 40, "client": "66", "source": 36, "properties": {"application.name": "voicecoach"}}
    moves = pactl_answering(tmp_path, monkeypatch, PIPEWIRE_SOURCES, [PIPEWIRE_CAPTURE, mine, theirs], clients=clients)
    assert pulsewatch.move_off_canceller(int(PID)) == "alsa_input.usb-mic"
    assert moves.read_text() == "40 alsa_input.usb-mic\n"


@pytest.mark.parametrize("link_wait_s", [0.0, 2.0])
def test_a_recording_not_yet_linked_is_waited_for_as_long_as_asked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, link_wait_s: float
) -> None:
    # As PipeWire shows a new recording: first not at all, then linked to no source (4294967295), then to one.
    moves = pactl_answering(tmp_path, monkeypatch, PULSEAUDIO_SOURCES, [], [ours_on(4294967295)], [ours_on(2)])
    moved = pulsewatch.move_off_canceller(int(PID), link_wait_s=link_wait_s)
    if link_wait_s:
        assert moved == "alsa_input.usb-mic" and moves.read_text() == "7 alsa_input.usb-mic\n"
    else:
        assert moved is None and not moves.exists()


def test_a_move_the_server_refuses_is_not_claimed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pactl_answering(tmp_path, monkeypatch, PULSEAUDIO_SOURCES, [ours_on(2)], refuse=True)
    assert pulsewatch.move_off_canceller(int(PID)) is None


def test_the_daemon_moves_off_the_canceller_and_takes_a_monitor_behind_it_for_its_microphone(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    # As in the tests' room, where the microphone behind the canceller is a null sink's monitor: no other monitor
    # is taken for the microphone, but that one is where the coach was moved.
    where = [pulsewatch.Source("ec_src", False, "mic.monitor")]

    def move(found: pulsewatch.Recording) -> str | None:
        behind = found.source.behind if found.source is not None else None
        if behind is not None:
            where[0] = pulsewatch.Source(behind, True)
        return behind

    monkeypatch.setattr(pulsewatch, "move_behind", move)
    monkeypatch.setattr(pulsewatch, "recording", lambda: pulsewatch.Recording(7, where[0]))
    caplog.set_level(logging.INFO, logger="voicecoach")
    devices = Devices(None, None, None, True, lambda: None, lambda: None)  # type: ignore[arg-type]
    assert devices._microphone_misplaced() is None
    assert "listening to mic.monitor, the microphone behind the sound system's echo canceller" in caplog.text
    assert devices._microphone_misplaced() is None, "a recheck once moved"
    where[0] = pulsewatch.Source("spk.monitor", True)
    assert devices._microphone_misplaced() == (
        "mic.monitor is gone: the sound server would record spk.monitor, a speaker's sound"
    )


@pytest.mark.audio
def test_behind_pulseaudios_canceller_the_coach_records_the_microphone(
    pulse: PulseServer, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    with pulse.echo_route("canceller", 120):
        monkeypatch.setenv("PULSE_SOURCE", CANCELLED_SOURCE)
        device = audio.resolve_device("pulse", "input")
        with audio.InputStream(device, 16000, lambda _block, _at: None):
            assert pulsewatch.recording_source() == pulsewatch.Source(
                CANCELLED_SOURCE, False, f"{MICROPHONE}.monitor"
            ), "the room as a user has it: recording from the canceller"
        with audio.InputStream(device, 16000, lambda _block, _at: None, off_canceller):
            source = pulsewatch.recording_source()
    assert source is not None and source.name == f"{MICROPHONE}.monitor"
    assert f"listening to {MICROPHONE}.monitor" in capsys.readouterr().err


# Run in a child process: this one's PortAudio and environment belong to the private PulseAudio. It records until
# its stdin closes, and says where, once PipeWire has carried out the move (wireplumber relinks the stream a moment
# after pactl asks) and again at the end. Its one argument: the ALSA device it records through.
RECORD_AND_SAY_WHERE = """
import sys, time
from voicecoach.cli.listen import off_canceller
from voicecoach.daemon import pulsewatch
from voicecoach.sound import audio
with audio.InputStream(audio.resolve_device(sys.argv[1], "input"), 16000, lambda b, a: None, off_canceller):
    deadline = time.monotonic() + 5
    source = pulsewatch.recording_source()
    while (source is None or source.behind) and time.monotonic() < deadline:
        time.sleep(0.05)
        source = pulsewatch.recording_source()
    print(source and source.name, flush=True)
    sys.stdin.read()
    source = pulsewatch.recording_source()
    print(source and source.name, flush=True)
"""
TONE_HZ = 440
# Another Python program recording through the same ALSA device as the coach, but not the coach (sounddevice
# straight, not voicecoach's audio module): where its recording is, once wireplumber has linked it.
ANOTHER_PROGRAM = """
import sys, time
import sounddevice
from voicecoach.daemon import pulsewatch
with sounddevice.InputStream(device=sys.argv[1], channels=1, samplerate=16000):
    deadline, source = time.monotonic() + 5, None
    while source is None and time.monotonic() < deadline:
        time.sleep(0.1)
        source = pulsewatch.recording_source()
    print(source and source.name)
"""


@pytest.mark.audio
@pytest.mark.parametrize("device", ["pulse", ALSA_PLUGIN_DEVICE])
def test_behind_pipewires_canceller_as_raspberry_pi_os_has_it_the_coach_records_the_microphone(
    tmp_path: Path, device: str
) -> None:
    """Through ALSA's pulse plugin, and through PipeWire's own (pipewire-alsa), whichever is ALSA's default."""
    require_tools(pipewire_missing(alsa_plugin=device == ALSA_PLUGIN_DEVICE), "the PipeWire tests")
    tone = tmp_path / "tone.wav"
    seconds = np.arange(16000) / 16000
    write_wav(tone, (0.3 * np.sin(2 * np.pi * TONE_HZ * seconds)).astype(np.float32), 16000)
    with PipeWire(tmp_path / "pipewire") as server:
        assert server.pactl("get-default-source").stdout.strip() == CANCELLER_SOURCE
        env = server.through_alsa_plugin() if device == ALSA_PLUGIN_DEVICE else server.env
        coach = subprocess.Popen(
            [sys.executable, "-c", RECORD_AND_SAY_WHERE, device],
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            assert coach.stdout is not None
            moved = coach.stdout.readline().strip()
            # Nobody records the canceller now; what is played into its sink must still reach the speaker.
            speaker = server.record(PIPEWIRE_SPEAKER, lambda: server.play(tone, CANCELLER_SINK))
        finally:
            last, err = coach.communicate("", timeout=30)
        assert coach.returncode == 0, err
        recorded = [moved, last.strip()]
        assert recorded == [RAW_MICROPHONE] * 2, f"the coach recorded {recorded}: {err}\n{server.log()}"
        assert f"listening to {RAW_MICROPHONE}, the microphone behind" in err
        # wireplumber remembers the move, by the name of the program that made it: the coach's, not every Python
        # program's.
        other = subprocess.run([sys.executable, "-c", ANOTHER_PROGRAM, device], env=env, capture_output=True, text=True)
        assert other.stdout.strip() == CANCELLER_SOURCE, other.stderr
        spectrum = np.abs(np.fft.rfft(speaker))
        assert speaker.size and np.fft.rfftfreq(speaker.size, 1 / 16000)[spectrum.argmax()] == pytest.approx(
            TONE_HZ, abs=5
        ), "the tone did not reach the speaker"


@pytest.mark.audio
@pytest.mark.model
def test_the_daemon_behind_pulseaudios_canceller_records_the_microphone(pulse: PulseServer, tmp_path: Path) -> None:
    model = require_ko_model()
    with pulse.echo_route("canceller", 120) as room:
        # As a user has it: the canceller is the default source, and the daemon records whatever that is.
        pulse.pactl("set-default-source", CANCELLED_SOURCE)
        env = {k: v for k, v in room.environ().items() if k != "PULSE_SOURCE"}
        daemon = Daemon(tmp_path, ["--model", str(model), "--commands", str(KO_COMMANDS)], env).start()
        try:
            daemon.wait_ready()
            line = daemon.wait_log(lambda text: "the microphone behind" in text, what="the move off the canceller")
            assert f"listening to {MICROPHONE}.monitor" in line
            daemon.wait_log(lambda text: "the microphone is up" in text, what="the microphone up")
            recording = pulsewatch.recording_source(daemon.process.pid)  # type: ignore[union-attr]
            assert recording is not None and recording.name == f"{MICROPHONE}.monitor", daemon.log()
            assert "trying to reopen" not in daemon.log(), "the monitor behind the canceller is the microphone"
        finally:
            daemon.close()
            pulse.pactl("set-default-source", f"{MICROPHONE}.monitor")
