"""libspeexdsp through ctypes: its echo canceller and its noise suppressor, on 10 ms frames of 16-bit audio.

The C library itself (Debian's libspeexdsp1), so nothing is compiled on install, on the Pi or elsewhere.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools

import numpy as np

from voicecoach.errors import UserError
from voicecoach.listen.resample import RATE
from voicecoach.listen.vad import FRAME

_ECHO_SET_SAMPLING_RATE = 24
_PREPROCESS_SET_DENOISE = 0
_PREPROCESS_SET_NOISE_SUPPRESS = 18
_PREPROCESS_SET_ECHO_STATE = 24
_INT16_P = ctypes.POINTER(ctypes.c_int16)


class SpeexError(UserError):
    """libspeexdsp is missing; the message says how to install it."""


@functools.cache
def _lib() -> ctypes.CDLL:
    name = ctypes.util.find_library("speexdsp")
    try:
        lib = ctypes.CDLL(name or "libspeexdsp.so.1")
    except OSError as exc:
        raise SpeexError(
            "voice control needs libspeexdsp: install it with 'sudo apt-get install libspeexdsp1'"
        ) from exc
    lib.speex_echo_state_init.restype = ctypes.c_void_p
    lib.speex_echo_state_init.argtypes = (ctypes.c_int, ctypes.c_int)
    lib.speex_echo_state_destroy.argtypes = (ctypes.c_void_p,)
    lib.speex_echo_ctl.argtypes = (ctypes.c_void_p, ctypes.c_int, ctypes.c_void_p)
    lib.speex_echo_cancellation.argtypes = (ctypes.c_void_p, _INT16_P, _INT16_P, _INT16_P)
    lib.speex_echo_state_reset.argtypes = (ctypes.c_void_p,)
    lib.speex_preprocess_state_init.restype = ctypes.c_void_p
    lib.speex_preprocess_state_init.argtypes = (ctypes.c_int, ctypes.c_int)
    lib.speex_preprocess_state_destroy.argtypes = (ctypes.c_void_p,)
    lib.speex_preprocess_ctl.argtypes = (ctypes.c_void_p, ctypes.c_int, ctypes.c_void_p)
    lib.speex_preprocess_run.argtypes = (ctypes.c_void_p, _INT16_P)
    return lib


def _int16(samples: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(np.clip(samples, -1.0, 1.0) * 32767.0, dtype=np.int16)


def _ptr(array: np.ndarray) -> ctypes._Pointer:
    return array.ctypes.data_as(_INT16_P)


class SpeexEcho:
    """speexdsp's adaptive echo canceller (MDF), modelling taps samples of echo path."""

    def __init__(self, taps: int) -> None:
        self._lib = _lib()
        self._state = self._lib.speex_echo_state_init(FRAME, taps)
        rate = ctypes.c_int(RATE)
        self._lib.speex_echo_ctl(self._state, _ECHO_SET_SAMPLING_RATE, ctypes.byref(rate))
        self._out = np.zeros(FRAME, dtype=np.int16)

    def __del__(self) -> None:
        if getattr(self, "_state", None):
            self._lib.speex_echo_state_destroy(self._state)

    def process(self, mic: np.ndarray, played: np.ndarray) -> np.ndarray:
        near, far = _int16(mic), _int16(played)
        self._lib.speex_echo_cancellation(self._state, _ptr(near), _ptr(far), _ptr(self._out))
        return self._out.astype(np.float32) / 32768.0

    @property
    def handle(self) -> int:
        """The C state, for the noise suppressor that reads what this canceller estimates it left."""
        return self._state

    def reset(self) -> None:
        """Forget the echo path learnt so far; it is learnt again from the next frame."""
        self._lib.speex_echo_state_reset(self._state)


class SpeexDenoiser:
    """speexdsp's noise suppressor: learns the steady noise and takes it out, frame by frame."""

    def __init__(self, suppress_db: int = -15) -> None:
        self._lib = _lib()
        self._state = self._lib.speex_preprocess_state_init(FRAME, RATE)
        on = ctypes.c_int(1)
        self._lib.speex_preprocess_ctl(self._state, _PREPROCESS_SET_DENOISE, ctypes.byref(on))
        depth = ctypes.c_int(suppress_db)
        self._lib.speex_preprocess_ctl(self._state, _PREPROCESS_SET_NOISE_SUPPRESS, ctypes.byref(depth))
        self._echo: int | None = None

    def __del__(self) -> None:
        if getattr(self, "_state", None):
            self._lib.speex_preprocess_state_destroy(self._state)

    def process(self, frame: np.ndarray, echo: SpeexEcho | None = None) -> np.ndarray:
        """Denoise one frame; with echo, the canceller that cleaned this very frame, also take out the echo it
        estimates it left (speexdsp's residual echo suppressor, at its default depths: 40 dB, 15 dB while speech is
        likely). It reads that estimate from the canceller as it runs, so a canceller that did not clean this frame
        must not be attached."""
        state = echo.handle if echo is not None else None
        if state != self._echo:
            self._lib.speex_preprocess_ctl(self._state, _PREPROCESS_SET_ECHO_STATE, state)
            self._echo = state
        samples = _int16(frame)
        self._lib.speex_preprocess_run(self._state, _ptr(samples))
        return samples.astype(np.float32) / 32768.0
