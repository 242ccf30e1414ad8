"""The one module that uses sounddevice (PortAudio, started by sound/portaudio.py): devices and long-lived streams."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable
from dataclasses import dataclass
from types import ModuleType

import numpy as np

from voicecoach.errors import UserError
from voicecoach.sound import portaudio
from voicecoach.sound.mixer import Mixer

BLOCK_FRAMES = 256
OUTPUT_LATENCY_S = 0.2
# 100 ms at 16 kHz: the listener works on 10 ms frames, and fewer wake-ups keep the idle CPU down.
INPUT_BLOCK_FRAMES = 1600


class AudioError(UserError):
    """An audio device that is missing or cannot be opened; the message says how to fix it."""


# The name the sound server knows the coach's streams by. Through ALSA's pulse plugin a stream is otherwise named
# "ALSA plug-in [python3.11]", through PipeWire's own ALSA plugin (pipewire-alsa) "PipeWire ALSA [python3.11]", and
# PulseAudio's stream-restore and PipeWire's WirePlumber remember a moved stream's device by that name: after the
# coach moved its recording off an echo canceller (daemon/pulsewatch.py), every Python program recording through
# ALSA started on the microphone behind the canceller. libpulse reads the first when each stream connects, the
# PipeWire plugin the second; a value the user set is kept.
STREAM_PROPERTIES = (
    ("PULSE_PROP_OVERRIDE", "application.name=voicecoach application.id=voicecoach"),
    ("PIPEWIRE_ALSA", '{ application.name = "voicecoach" application.id = "voicecoach" }'),
)


def _sd() -> ModuleType:
    for variable, value in STREAM_PROPERTIES:
        os.environ.setdefault(variable, value)
    # Imported late, so commands that need no audio work without PortAudio.
    try:
        return portaudio.load()
    except OSError as exc:
        raise AudioError(
            f"PortAudio is not available ({exc}): install it with 'sudo apt-get install libportaudio2'"
        ) from exc


@dataclass(frozen=True)
class Device:
    index: int
    name: str
    inputs: int
    outputs: int
    default_rate: int


def list_devices() -> list[Device]:
    sd = _sd()
    return [
        Device(i, d["name"], d["max_input_channels"], d["max_output_channels"], int(d["default_samplerate"]))
        for i, d in enumerate(sd.query_devices())
    ]


def resolve_device(spec: str | int | None, kind: str = "output") -> Device:
    """Find an input or output device by index, exact name or unique name fragment; None means the default."""
    sd = _sd()
    channels = (lambda d: d.outputs) if kind == "output" else (lambda d: d.inputs)
    devices = [d for d in list_devices() if channels(d) > 0]
    thing = "speaker" if kind == "output" else "microphone"
    if not devices:
        raise AudioError(f"no audio {kind} device found: connect a {thing}, or check 'voicecoach devices'")
    if spec is None or spec == "":
        try:
            index = sd.query_devices(kind=kind)["index"]
        except Exception as exc:
            raise AudioError(f"no default audio {kind} device: name one (see 'voicecoach devices')") from exc
        return next(d for d in devices if d.index == index)
    text = str(spec).strip()
    if text.isdigit():
        match = [d for d in devices if d.index == int(text)]
    else:
        match = [d for d in devices if d.name == text] or [d for d in devices if text.lower() in d.name.lower()]
    if len(match) != 1:
        what = f"matches several {kind} devices" if match else f"is not an {kind} device"
        raise AudioError(f"{text!r} {what}: pick a name or index from 'voicecoach devices'")
    return match[0]


def resolve_output(spec: str | int | None) -> Device:
    return resolve_device(spec, "output")


class OutputStream:
    """A long-lived mono output stream whose callback is the mixer. Counts underruns."""

    def __init__(self, device: Device, mixer: Mixer) -> None:
        self.device = device
        self.mixer = mixer
        self.underruns = 0
        sd = _sd()
        try:
            self._stream = sd.OutputStream(
                device=device.index,
                samplerate=mixer.rate,
                channels=1,
                dtype="float32",
                blocksize=BLOCK_FRAMES,
                # Every underrun delays all later words, so the buffer is deep. Measured through PulseAudio
                # (benchmarks/README.md): "low" (12 ms) underran whenever the loop was busy; "high" (35 ms)
                # lost 46 ms to a 100 ms stall of the process; 0.25 s lost nothing to a 200 ms stall.
                # The cost is that a pause is heard that much later; the stream itself cuts within a block.
                latency=OUTPUT_LATENCY_S,
                # A set is scheduled before its stream starts, so that its first word is in the first blocks.
                # On a device PortAudio's ALSA host API maps (a card opened as hw:), it fills the buffer with
                # silence before the first callback unless told to fill it through the callback: a buffer's worth
                # of silence before every set. (Through PulseAudio's plugin it writes no silence either way.)
                prime_output_buffers_using_stream_callback=True,
                callback=self._callback,
            )
        except Exception as exc:
            raise AudioError(f"cannot open audio output {device.name!r}: {exc}") from exc

    @property
    def latency(self) -> float:
        """The output latency PortAudio reports, in seconds."""
        return float(self._stream.latency)

    @property
    def tail_s(self) -> float:
        """How long what has been handed to the stream takes to be heard: wait this long before closing,
        or the end of the last word is lost (closing drops the buffer through ALSA's pulse plugin)."""
        return self.latency + 2 * BLOCK_FRAMES / self.mixer.rate

    def _callback(self, outdata, frames, time, status) -> None:
        if status.output_underflow:
            self.underruns += 1
        self.mixer.render(outdata[:, 0], _stamp(time.outputBufferDacTime))

    @property
    def active(self) -> bool:
        """False once PortAudio has given up on the stream (a device unplugged)."""
        return bool(self._stream.active)

    def __enter__(self) -> OutputStream:
        self._stream.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        _close(self._stream)


def _stamp(stream_time: float) -> float | None:
    """A block's DAC or ADC time, on PortAudio's stream clock; host APIs that do not know it give 0."""
    return float(stream_time) if stream_time > 0 else None


def _close(stream: object) -> None:
    """Stop and close, where a stream whose device has vanished may refuse to stop cleanly."""
    # The device is gone; whatever PortAudio says now, closing is all that is left to do.
    with contextlib.suppress(Exception):
        stream.stop()  # type: ignore[attr-defined]
    with contextlib.suppress(Exception):
        stream.close()  # type: ignore[attr-defined]


class InputStream:
    """A long-lived mono input stream. Its callback copies each block, with the time its first sample was
    recorded (PortAudio's stream clock, None where unknown), to on_block and returns at once: the receiver
    (the event loop) does all the work. Counts overflows. on_start runs once the stream has started, when the sound
    server has its recording."""

    def __init__(
        self,
        device: Device,
        rate: int,
        on_block: Callable[[np.ndarray, float | None], object],
        on_start: Callable[[], object] | None = None,
    ) -> None:
        self.device = device
        self.rate = rate
        self.frames = 0
        self.overflows = 0
        self._on_block = on_block
        self._on_start = on_start
        sd = _sd()
        try:
            self._stream = sd.InputStream(
                device=device.index,
                samplerate=rate,
                channels=1,
                dtype="float32",
                blocksize=INPUT_BLOCK_FRAMES,
                callback=self._callback,
            )
        except Exception as exc:
            raise AudioError(f"cannot open audio input {device.name!r}: {exc}") from exc

    def _callback(self, indata, frames, time, status) -> None:
        if status.input_overflow:
            self.overflows += 1
        self.frames += frames
        self._on_block(indata[:, 0].copy(), _stamp(time.inputBufferAdcTime))

    @property
    def active(self) -> bool:
        return bool(self._stream.active)

    def __enter__(self) -> InputStream:
        self._stream.start()
        if self._on_start is not None:
            self._on_start()
        return self

    def __exit__(self, *_exc: object) -> None:
        _close(self._stream)
