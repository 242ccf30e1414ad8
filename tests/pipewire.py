"""A private PipeWire, as Raspberry Pi OS runs it: pipewire, its session manager wireplumber and its pulse server,
with the echo-cancel module as a user would set it up for calls, in front of a virtual microphone and speaker.

Only the sound server's graph is of interest here (which source a recording is on, and where the canceller's
microphone is), so the devices are PipeWire's null nodes. wireplumber links the nodes and sets the defaults; it
wants a D-Bus session bus, so one of our own is started too.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

TOOLS = ("pipewire", "wireplumber", "pipewire-pulse", "dbus-daemon", "pactl", "paplay", "parec")
START_TIMEOUT_S = 20.0
RAW_MICROPHONE = "rawmic"
PIPEWIRE_SPEAKER = "spk"
CANCELLER_SOURCE = "echo-cancel-source"
CANCELLER_SINK = "echo-cancel-sink"
LIBRARIES = Path("/usr/lib") / f"{os.uname().machine}-linux-gnu"
UNPACKED = Path(__file__).resolve().parents[1] / ".cache" / "pipewire-alsa"
PCM_PLUGIN = "libasound_module_pcm_pipewire.so"
# The ALSA device through PipeWire's own plugin (through_alsa_plugin), as pipewire-alsa's default device is.
ALSA_PLUGIN_DEVICE = "voicecoach_pipewire"
# PipeWire's echo-cancel module as a user would set it up for calls (WebRTC's gain control and noise suppression off,
# its extended filter on), with a virtual microphone and speaker for it to sit in front of.
CONFIG = f"""context.objects = [
  {{ factory = adapter args = {{ factory.name = support.null-audio-sink node.name = "{PIPEWIRE_SPEAKER}"
      media.class = "Audio/Sink" audio.position = [ MONO ] audio.rate = 48000 }} }}
  {{ factory = adapter args = {{ factory.name = support.null-audio-sink node.name = "{RAW_MICROPHONE}"
      media.class = "Audio/Source/Virtual" audio.position = [ MONO ] audio.rate = 48000 }} }}
]
context.modules = [
  {{ name = libpipewire-module-echo-cancel
    args = {{
      aec.args = {{ webrtc.gain_control = false webrtc.noise_suppression = false webrtc.extended_filter = true }}
      source.props = {{ node.name = "{CANCELLER_SOURCE}" }}
      sink.props = {{ node.name = "{CANCELLER_SINK}" }}
    }}
  }}
]
"""


def missing_tools(alsa_plugin: bool = False) -> list[str]:
    """What this machine lacks to run it (alsa_plugin: and to record through PipeWire's own ALSA plugin);
    'scripts/install --test' installs all of it."""
    missing = [tool for tool in TOOLS if shutil.which(tool) is None]
    modules = LIBRARIES / "pipewire-0.3"
    if shutil.which("pipewire") and not (modules / "libpipewire-module-echo-cancel.so").exists():
        missing.append("PipeWire's echo-cancel module")
    if alsa_plugin and pcm_plugin() is None:
        missing.append("PipeWire's ALSA plugin (pipewire-alsa)")
    return missing


def pcm_plugin() -> Path | None:
    """PipeWire's own ALSA plugin: installed (pipewire-alsa), or unpacked by scripts/install --test, since the
    package conflicts with the pulseaudio the other audio tests run."""
    for libraries in (LIBRARIES, UNPACKED / LIBRARIES.relative_to("/")):
        if (libraries / "alsa-lib" / PCM_PLUGIN).exists():
            return libraries / "alsa-lib" / PCM_PLUGIN
    return None


class PipeWire:
    """pipewire, wireplumber and pipewire-pulse in a runtime directory of their own."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.runtime_dir = directory / "runtime"
        self._processes: list[subprocess.Popen[bytes]] = []

    @property
    def env(self) -> dict[str, str]:
        """The whole environment for a client of this server (and of no other)."""
        env = {k: v for k, v in os.environ.items() if not k.startswith(("PULSE_", "PIPEWIRE_"))}
        return {
            **env,
            "XDG_RUNTIME_DIR": str(self.runtime_dir),
            "XDG_CONFIG_HOME": str(self.directory / "config"),
            # wireplumber remembers where each app's streams were moved, and puts them there next time.
            "XDG_STATE_HOME": str(self.directory / "state"),
            "DBUS_SESSION_BUS_ADDRESS": f"unix:path={self.runtime_dir / 'bus'}",
        }

    def through_alsa_plugin(self) -> dict[str, str]:
        """The environment for a client of this server with ALSA_PLUGIN_DEVICE: PipeWire's own ALSA plugin (from
        ~/.asoundrc, so that this machine's ALSA configuration is left alone)."""
        plugin = pcm_plugin()
        if plugin is None:
            raise RuntimeError("PipeWire's ALSA plugin is missing: run 'scripts/install --test'")
        home = self.directory / "home"
        home.mkdir(exist_ok=True)
        (home / ".asoundrc").write_text(
            f'pcm_type.pipewire {{ lib "{plugin}" }}\n'
            f'pcm.{ALSA_PLUGIN_DEVICE} {{ type pipewire playback_node "-1" capture_node "-1"'
            ' hint { show on description "PipeWire through its own ALSA plugin" } }\n',
            encoding="utf-8",
        )
        return {**self.env, "HOME": str(home)}

    def __enter__(self) -> PipeWire:
        self.runtime_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        conf = self.directory / "config" / "pipewire" / "pipewire.conf.d"
        conf.mkdir(parents=True, exist_ok=True)
        (conf / "voicecoach-test.conf").write_text(CONFIG, encoding="utf-8")
        try:
            self._start("dbus-daemon", "--session", "--nofork", f"--address=unix:path={self.runtime_dir / 'bus'}")
            self._start("pipewire")
            self._start("wireplumber")
            self._start("pipewire-pulse")
            self._wait_for_defaults()
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *_exc: object) -> None:
        for process in reversed(self._processes):
            process.terminate()
            try:
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        self._processes.clear()

    def pactl(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["pactl", *args], env=self.env, capture_output=True, text=True, timeout=10, check=False)

    def play(self, wav: Path, sink: str) -> None:
        subprocess.run(["paplay", "-d", sink, str(wav)], env=self.env, check=True, timeout=30)

    def record(self, sink: str, meanwhile: Callable[[], object]) -> np.ndarray:
        """What reaches a sink (its monitor, 16 kHz mono) while meanwhile runs."""
        # A short latency: parec hands over what it holds in small pieces, and loses nothing much when stopped.
        command = ["parec", "-d", f"{sink}.monitor", "--rate=16000", "--channels=1", "--format=s16le", "--raw"]
        command.append("--latency-msec=10")
        recording = subprocess.Popen(command, env=self.env, stdout=subprocess.PIPE)
        try:
            time.sleep(0.3)
            meanwhile()
            time.sleep(0.3)
        finally:
            recording.terminate()
            data, _ = recording.communicate(timeout=10)
        return np.frombuffer(data[: len(data) // 2 * 2], dtype="<i2").astype(np.float32) / 32768

    def log(self) -> str:
        return "\n".join(
            f"--- {path.name}\n{path.read_text(errors='replace')[-2000:]}" for path in self.directory.glob("*.log")
        )

    def _start(self, *command: str) -> None:
        with (self.directory / f"{command[0]}.log").open("wb") as log:
            self._processes.append(
                subprocess.Popen(command, env=self.env, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
            )
        time.sleep(0.3)

    def _wait_for_defaults(self) -> None:
        """Until wireplumber has made the canceller the default source, as it does for the highest priority."""
        deadline = time.monotonic() + START_TIMEOUT_S
        while self.pactl("get-default-source").stdout.strip() != CANCELLER_SOURCE:
            if time.monotonic() > deadline or any(p.poll() is not None for p in self._processes):
                raise RuntimeError(f"PipeWire did not start with its canceller as the default source:\n{self.log()}")
            time.sleep(0.1)
