"""A private PulseAudio server with a virtual speaker and a virtual microphone, its echo routes, and recordings of it.

Used by the audio tests (through the `pulse` fixture in conftest.py) and by benchmarks/timing.py, so it
imports nothing from pytest. Two null sinks: the coach plays into `spk`, and recording `spk.monitor` gives
exactly the samples it played; `mic` is a microphone: play a WAV into it and the app records `mic.monitor`.
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import subprocess
import sys
import threading
import time
import wave
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

RATE = 44100
SPEAKER = "spk"
MICROPHONE = "mic"
TOOLS = ("pulseaudio", "pactl", "parec", "paplay")
# Where Debian and Raspberry Pi OS put the ALSA plugin that sends PortAudio's ALSA `pulse` device to PulseAudio.
ALSA_PULSE_PLUGIN = "/usr/lib/*/alsa-lib/libasound_module_pcm_pulse.so"
START_TIMEOUT_S = 10.0
# Silence played before each WAV. A null sink rewinds to mix in a stream that joins it, and its monitor, which cannot
# rewind, loses what was rewritten: recorded through PortAudio's `pulse` device in 100 ms blocks, as the coach
# records, the first 90-100 ms of every paplay were missing (15 of 15 plays; none with 0.3 s of silence before
# them: tests/test_pulse.py). Her first syllable cut so, the Korean model heard "음량 키워" (louder) as "키워": 5 of 12
# first tries in a hold were missed (the two measured had lost 84 and 93 ms; those heard, 1-72 ms), with this none
# of 8. A real microphone hears the room before she speaks: what a rewind loses here is that room.
LEAD_IN_S = 0.5


class PulseError(RuntimeError):
    """The private PulseAudio server could not be started or used."""


def missing_tools() -> list[str]:
    """What the harness needs and this machine lacks; 'scripts/install --test' installs all of it."""
    missing = [tool for tool in TOOLS if shutil.which(tool) is None]
    if not glob.glob(ALSA_PULSE_PLUGIN):
        missing.append("the ALSA pulse plugin (libasound2-plugins)")
    return missing


def reinitialise_portaudio() -> None:
    """Make an already imported sounddevice list devices again under the current environment.

    PortAudio enumerates devices once, when it is initialised; one initialised before the server's
    environment was set would not find it. ALSA only adds `default`-to-pulse routing when its config is
    first read, so code running in this process should name the `pulse` device explicitly.
    """
    sd = sys.modules.get("sounddevice")
    if sd is not None:
        sd._terminate()
        sd._initialize()


class PulseServer:
    """A PulseAudio daemon of our own, in its own runtime directory, never touching any other server."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.runtime_dir = directory / "runtime"
        self.socket = self.runtime_dir / "pulse" / "native"
        self._log_path = directory / "pulseaudio.log"
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def env(self) -> dict[str, str]:
        """The variables that send PulseAudio clients, and ALSA's `pulse` and `default` devices, to this server."""
        return {
            "XDG_RUNTIME_DIR": str(self.runtime_dir),
            "PULSE_SERVER": f"unix:{self.socket}",
            # A client that cannot reach us must fail, not spawn a server of its own.
            "PULSE_CLIENTCONFIG": str(self.directory / "client.conf"),
            "PULSE_SINK": SPEAKER,
            "PULSE_SOURCE": f"{MICROPHONE}.monitor",
        }

    def environ(self) -> dict[str, str]:
        """The whole environment for a subprocess that should play and record through this server."""
        return {**os.environ, **self.env}

    def start(self) -> PulseServer:
        self.runtime_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        (self.directory / "client.conf").write_text("autospawn = no\n")
        # In the foreground rather than --daemonize=yes: then it is our child, with a pid we know and a log we keep.
        with self._log_path.open("wb") as log:
            self._process = subprocess.Popen(
                [
                    "pulseaudio",
                    "-n",
                    "--daemonize=no",
                    "--exit-idle-time=-1",
                    "--log-target=stderr",
                    # Anonymous auth: the cookie in $HOME may be missing or differ between a shell and CI.
                    "-L",
                    "module-native-protocol-unix auth-anonymous=1",
                    "-L",
                    f"module-null-sink sink_name={SPEAKER} rate={RATE}",
                    "-L",
                    f"module-null-sink sink_name={MICROPHONE} rate={RATE}",
                ],
                env=self.environ(),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + START_TIMEOUT_S
        while self.pactl("info", check=False).returncode != 0:
            if self._process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise PulseError(f"pulseaudio did not start; its log:\n{self.log()}")
            time.sleep(0.05)
        self.pactl("set-default-sink", SPEAKER)
        self.pactl("set-default-source", f"{MICROPHONE}.monitor")
        return self

    def stop(self) -> None:
        if self._process is None:
            return
        if self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        self._process = None

    def __enter__(self) -> PulseServer:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    def log(self) -> str:
        return self._log_path.read_text(errors="replace") if self._log_path.exists() else ""

    def pactl(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["pactl", *args], env=self.environ(), capture_output=True, text=True, check=check, timeout=10
        )

    def record(self, source: str = f"{SPEAKER}.monitor", rate: int = RATE) -> Recording:
        """Start recording a source (by default: everything played on the speaker) into memory."""
        return Recording(self.environ(), source, rate)

    def play(self, wav: Path, sink: str = MICROPHONE) -> subprocess.Popen[bytes]:
        """Play a WAV file into a sink (by default: say it into the virtual microphone), after LEAD_IN_S of
        silence; wait() on the result: it ends as the WAV does."""
        return subprocess.Popen(
            ["paplay", "-d", sink, str(self._led_in(wav))], env=self.environ(), stderr=subprocess.PIPE
        )

    def _led_in(self, wav: Path) -> Path:
        """A copy of wav with LEAD_IN_S of silence before it, made once."""
        led_in = self.directory / "led-in" / f"{abs(hash(str(wav.resolve())))}-{wav.name}"
        if led_in.exists() and led_in.stat().st_mtime >= wav.stat().st_mtime:
            return led_in
        led_in.parent.mkdir(exist_ok=True)
        with wave.open(str(wav)) as source:
            params = source.getparams()
            frames = source.readframes(params.nframes)
        # 8-bit WAV samples are unsigned: their silence is 128.
        zero = b"\x80" if params.sampwidth == 1 else bytes(params.sampwidth)
        silence = zero * round(LEAD_IN_S * params.framerate) * params.nchannels
        with wave.open(str(led_in), "wb") as out:
            out.setparams(params)
            out.writeframes(silence + frames)
        return led_in

    def load_module(self, name: str, *args: str) -> int:
        """Load a module into the server; its index, for unload_module."""
        return int(self.pactl("load-module", name, *args).stdout.strip())

    def unload_module(self, index: int) -> None:
        self.pactl("unload-module", str(index), check=False)

    @contextlib.contextmanager
    def echo_route(self, name: str, latency_ms: int = 100) -> Iterator[EchoRoute]:
        """A room in which the microphone hears the speaker (or, for "none", does not); see ECHO_ROUTES."""
        if name not in ECHO_ROUTES:
            raise PulseError(f"no echo route {name!r}: choose one of {', '.join(ECHO_ROUTES)}")
        modules: list[int] = []
        try:
            loopback = None
            if name in ("loopback", "canceller"):
                modules.append(
                    self.load_module(
                        "module-loopback",
                        f"source={SPEAKER}.monitor",
                        f"sink={MICROPHONE}",
                        f"latency_msec={latency_ms}",
                        "source_dont_move=true",
                        "sink_dont_move=true",
                    )
                )
                loopback = self._sink_input_of(modules[-1])
            if name == "canceller":
                modules.append(
                    self.load_module(
                        "module-echo-cancel",
                        f"source_master={MICROPHONE}.monitor",
                        f"sink_master={SPEAKER}",
                        "aec_method=webrtc",
                        f'aec_args="{CANCELLER_ARGS}"',
                        f"source_name={CANCELLED_SOURCE}",
                        f"sink_name={CANCELLED_SINK}",
                    )
                )
            yield EchoRoute(self, name, loopback)
        finally:
            for index in reversed(modules):
                self.unload_module(index)

    def _sink_input_of(self, module: int) -> int:
        """The sink input a module plays through (a loopback's)."""
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            current = None
            for line in self.pactl("list", "sink-inputs").stdout.splitlines():
                if line.startswith("Sink Input #"):
                    current = int(line.removeprefix("Sink Input #"))
                elif line.strip() == f"Owner Module: {module}" and current is not None:
                    return current
            time.sleep(0.05)
        raise PulseError(f"module {module} has no sink input")


# -- rooms in which the microphone hears the speaker ------------------------------------------------------------------

# What each route is. "monitor": one clock, the microphone is the speaker itself (as a USB speakerphone is);
# "loopback": two devices, the speaker's sound reaches the microphone late, through PulseAudio's loopback, whose
# adaptive resampler makes the delay wander as two USB devices' clocks do (about 80 ppm measured here);
# "canceller": the same two devices behind PulseAudio's own WebRTC echo canceller, as PipeWire's echo-cancel
# module puts one in front of an app on Raspberry Pi OS.
ECHO_ROUTES = {
    "none": "the microphone hears no speaker",
    "monitor": "the microphone is the speaker's monitor (one clock)",
    "loopback": "the speaker reaches the microphone through a loopback (two clocks, a delay that drifts)",
    "canceller": "the loopback behind PulseAudio's WebRTC echo canceller",
}
CANCELLED_SOURCE = "ec_src"
# The WebRTC canceller's own gain control and noise suppression, off: the level they change and the speech they
# take out hurt the recogniser more than the noise they remove helps it (as the README advised before the coach
# moved off such a canceller). Its extended filter, on, as PipeWire's echo-cancel has it by default: PulseAudio's
# default short filter does not reach an echo 120 ms late, and left it 4-7 dB under what was played (`check audio` said
# weak_cancelling) where the extended one leaves it 55-59 dB under.
CANCELLER_ARGS = "analog_gain_control=0 digital_gain_control=0 noise_suppression=0 extended_filter=1"
CANCELLED_SINK = "ec_sink"
# PulseAudio volumes are cubic: a linear gain g is the volume g ** (1/3) of 100 %.
PA_NORM = 65536


@dataclass
class EchoRoute:
    """Where the app plays and records, and where her voice is played, in one echo route of a PulseServer."""

    server: PulseServer
    name: str
    loopback: int | None = None

    @property
    def app_sink(self) -> str:
        return CANCELLED_SINK if self.name == "canceller" else SPEAKER

    @property
    def app_source(self) -> str:
        if self.name == "canceller":
            return CANCELLED_SOURCE
        return f"{SPEAKER}.monitor" if self.name == "monitor" else f"{MICROPHONE}.monitor"

    @property
    def voice_sink(self) -> str:
        """Where her voice is played: into the same sink as the coach's where the microphone is its monitor."""
        return SPEAKER if self.name == "monitor" else MICROPHONE

    def environ(self) -> dict[str, str]:
        """The environment for an app in this room: the ALSA `pulse` device plays and records where it should."""
        return {**self.server.environ(), "PULSE_SINK": self.app_sink, "PULSE_SOURCE": self.app_source}

    def set_echo_gain(self, gain_db: float) -> None:
        """How loud the loopback's echo is, in dB (0: as loud as played). Only routes with a loopback have one."""
        if self.loopback is None:
            raise PulseError(f"the {self.name!r} route has no echo level to set")
        volume = round(PA_NORM * (10 ** (gain_db / 20)) ** (1 / 3))
        self.server.pactl("set-sink-input-volume", str(self.loopback), str(volume))

    def say(self, wav: Path) -> subprocess.Popen[bytes]:
        """Her voice: play a WAV file where this room's microphone hears it."""
        return self.server.play(wav, self.voice_sink)


class Recording:
    """parec reading a source into memory. Notes when each chunk arrives, to place sample 0 on time.monotonic()."""

    def __init__(self, env: dict[str, str], source: str, rate: int) -> None:
        self.rate = rate
        self._chunks: list[bytes] = []
        # (time.monotonic() when a chunk arrived, bytes received up to and including it)
        self._arrivals: list[tuple[float, int]] = []
        self._lock = threading.Lock()
        self._process = subprocess.Popen(
            # A short latency makes chunks small and frequent, which anchors the clock closely.
            ["parec", "-d", source, f"--rate={rate}", "--channels=1", "--format=s16le", "--latency-msec=10"],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self._process.stdout is not None
        fd = self._process.stdout.fileno()
        total = 0
        while chunk := os.read(fd, 8192):
            arrived = time.monotonic()
            total += len(chunk)
            with self._lock:
                self._chunks.append(chunk)
                self._arrivals.append((arrived, total))

    @property
    def frames(self) -> int:
        with self._lock:
            return self._arrivals[-1][1] // 2 if self._arrivals else 0

    def wait_for(self, frames: int, timeout: float = 10.0) -> None:
        """Block until at least this many samples have arrived (parec is connected and the source runs)."""
        deadline = time.monotonic() + timeout
        while self.frames < frames:
            if self._process.poll() is not None or time.monotonic() > deadline:
                raise PulseError(f"parec delivered {self.frames} of {frames} samples: {self._stderr()}")
            time.sleep(0.01)

    def _snapshot(self) -> tuple[np.ndarray, list[tuple[float, int]]]:
        with self._lock:
            data = b"".join(self._chunks)
            arrivals = list(self._arrivals)
        return np.frombuffer(data[: len(data) // 2 * 2], dtype="<i2").astype(np.float32) / 32768.0, arrivals

    def samples(self) -> np.ndarray:
        """Everything recorded so far, as float32 in [-1, 1)."""
        return self._snapshot()[0]

    def anchor(self) -> float:
        """time.monotonic() at which sample 0 was produced (an upper bound, tight to one chunk's delivery delay).

        A sample cannot arrive before it exists, so for every chunk, arrival >= t0 + samples_so_far / rate;
        the smallest arrival - samples_so_far / rate is the tightest such bound on t0.
        """
        with self._lock:
            arrivals = list(self._arrivals)
        if not arrivals:
            raise PulseError("nothing has been recorded yet")
        return min(t - (n // 2) / self.rate for t, n in arrivals)

    def first_above(self, level: float, start: int = 0) -> tuple[int, float] | None:
        """The first sample from index start on louder than level and when it reached us (time.monotonic()), or
        None if none is."""
        samples, arrivals = self._snapshot()
        loud = np.flatnonzero(np.abs(samples[start:]) > level)
        if loud.size == 0:
            return None
        index = start + int(loud[0])
        arrived = next(t for t, n in arrivals if n >= 2 * (index + 1))
        return index, arrived

    def stop(self) -> np.ndarray:
        """Stop parec and return everything it recorded."""
        if self._process.poll() is None:
            self._process.terminate()
            self._process.wait(timeout=5)
        self._reader.join(timeout=5)
        return self.samples()

    def _stderr(self) -> str:
        if self._process.poll() is None or self._process.stderr is None:
            return "parec is still running"
        return self._process.stderr.read().decode(errors="replace").strip()
