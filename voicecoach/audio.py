"""The one module that touches sounddevice (PortAudio): device choice and the long-lived output stream."""

from __future__ import annotations

from dataclasses import dataclass
from types import ModuleType

from voicecoach.errors import UserError
from voicecoach.mixer import Mixer

BLOCK_FRAMES = 256


class AudioError(UserError):
    """An audio device that is missing or cannot be opened; the message says how to fix it."""


def _sd() -> ModuleType:
    # Imported late, so commands that need no audio work without PortAudio.
    try:
        import sounddevice
    except OSError as exc:
        raise AudioError(
            f"PortAudio is not available ({exc}): install it with 'sudo apt-get install libportaudio2'"
        ) from exc
    return sounddevice


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


def resolve_output(spec: str | int | None) -> Device:
    """Find an output device by index, exact name or unique name fragment; None means the default."""
    sd = _sd()
    devices = [d for d in list_devices() if d.outputs > 0]
    if not devices:
        raise AudioError("no audio output device found: connect a speaker, or check 'voicecoach devices'")
    if spec is None or spec == "":
        try:
            index = sd.default.device[1]
            if index is None or index < 0:
                index = sd.query_devices(kind="output")["index"]
        except Exception as exc:
            raise AudioError("no default audio output device: pass --device (see 'voicecoach devices')") from exc
        return next(d for d in devices if d.index == index)
    text = str(spec).strip()
    if text.isdigit():
        match = [d for d in devices if d.index == int(text)]
    else:
        match = [d for d in devices if d.name == text] or [d for d in devices if text.lower() in d.name.lower()]
    if len(match) != 1:
        what = "matches several output devices" if match else "is not an output device"
        raise AudioError(f"{text!r} {what}: pick a name or index from 'voicecoach devices'")
    return match[0]


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
                # "high" is PortAudio's safe default (about 35 ms through PulseAudio here). "low" (12 ms)
                # underran when the event loop was busy, and every underrun delays all later words.
                latency="high",
                callback=self._callback,
            )
        except Exception as exc:
            raise AudioError(f"cannot open audio output {device.name!r}: {exc}") from exc

    @property
    def latency(self) -> float:
        """The output latency PortAudio reports, in seconds."""
        return float(self._stream.latency)

    def _callback(self, outdata, frames, _time, status) -> None:
        if status.output_underflow:
            self.underruns += 1
        self.mixer.render(outdata[:, 0])

    def __enter__(self) -> OutputStream:
        self._stream.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stream.stop()
        self._stream.close()
