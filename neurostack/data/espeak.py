"""The eSpeak NG speech synthesiser bundled by `espeakng-loader`, driven through ctypes.

No system package and no subprocess: the shared library and its data come with the wheel.
eSpeak keeps synthesis state in C globals (pitch flutter phase, gain control, resonators, echo,
random generators) that carry over from one utterance to the next and seeds its random
generator from the clock. To make output reproducible, each `speak_many` call loads the library
afresh, reseeds the generators before every utterance, and unloads it afterwards (about 1 ms;
the first voice of a language then costs about 4 ms to load its dictionary).
"""

from __future__ import annotations

import _ctypes
import ctypes
import threading
from pathlib import Path

import numpy as np

from neurostack.errors import NeurostackError

# C API constants (speak_lib.h).
_AUDIO_OUTPUT_SYNCHRONOUS = 2
_INITIALIZE_DONT_EXIT = 0x8000
_CHARS_UTF8 = 1
_POS_CHARACTER = 1
_RATE, _VOLUME, _PITCH, _RANGE = 1, 2, 3, 4
_SYNTH_CALLBACK = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.c_void_p)

_LOCK = threading.Lock()  # the library is process-global: one engine at a time
_VERSION: str | None = None


def data_path() -> Path:
    """The espeak-ng-data folder shipped with espeakng-loader."""
    try:
        import espeakng_loader

        return Path(espeakng_loader.get_data_path())
    except Exception as exc:
        raise NeurostackError(f"cannot find the eSpeak NG data of espeakng-loader ({exc})") from None


def variants() -> list[str]:
    """Sorted voice variant names (files in espeak-ng-data/voices/!v), used as "lang+variant"."""
    return sorted(p.name for p in (data_path() / "voices" / "!v").iterdir() if p.is_file())


class _Engine:
    """One freshly loaded and initialised library; a context manager that unloads it on exit."""

    def __init__(self) -> None:
        import espeakng_loader

        self.data_path = data_path()
        try:
            lib = ctypes.CDLL(espeakng_loader.get_library_path())
        except OSError as exc:
            raise NeurostackError(f"cannot load the eSpeak NG library of espeakng-loader ({exc})") from None
        lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
        lib.espeak_Initialize.restype = ctypes.c_int
        lib.espeak_SetSynthCallback.argtypes = [_SYNTH_CALLBACK]
        lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
        lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
        lib.espeak_Synth.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_uint, ctypes.c_int,
                                     ctypes.c_uint, ctypes.c_uint, ctypes.c_void_p, ctypes.c_void_p]
        lib.espeak_ng_SetRandSeed.argtypes = [ctypes.c_long]
        lib.espeak_Info.argtypes = [ctypes.c_void_p]
        lib.espeak_Info.restype = ctypes.c_char_p
        self._lib = lib
        self._libc = ctypes.CDLL(None)  # breathy voices draw from libc rand()
        self.sample_rate = lib.espeak_Initialize(
            _AUDIO_OUTPUT_SYNCHRONOUS, 0, str(self.data_path).encode(), _INITIALIZE_DONT_EXIT
        )
        if self.sample_rate <= 0:
            self.close()
            raise NeurostackError(f"eSpeak NG failed to initialise with data at {self.data_path}")
        self.version = lib.espeak_Info(None).decode()
        self._chunks: list[np.ndarray] = []
        self._callback = _SYNTH_CALLBACK(self._collect)  # keep a reference: C holds the pointer
        lib.espeak_SetSynthCallback(self._callback)

    def __enter__(self) -> "_Engine":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        """Terminate eSpeak and unload the library, so the next load starts from clean globals."""
        lib, self._lib = self._lib, None
        if lib is not None:
            if getattr(self, "sample_rate", 0) > 0:
                lib.espeak_Terminate()
            _ctypes.dlclose(lib._handle)

    def _collect(self, wav, n_samples, events) -> int:
        if n_samples > 0:
            self._chunks.append(np.ctypeslib.as_array(wav, shape=(n_samples,)).copy())
        return 0  # 0 = go on synthesising

    def synth(self, text: str, voice: str, rate: int = 175, pitch: int = 50, pitch_range: int = 50,
              volume: int = 100, seed: int = 0) -> np.ndarray:
        """int16 samples at `self.sample_rate` Hz of `text` spoken by `voice` ("lang+variant")."""
        lib = self._lib
        lib.espeak_ng_SetRandSeed(seed % 2**31)
        self._libc.srand(ctypes.c_uint(seed % 2**31))
        if lib.espeak_SetVoiceByName(voice.encode()) != 0:
            raise NeurostackError(f"eSpeak NG has no voice {voice!r}")
        for param, value in ((_RATE, rate), (_PITCH, pitch), (_RANGE, pitch_range), (_VOLUME, volume)):
            lib.espeak_SetParameter(param, int(value), 0)
        self._chunks = []
        data = text.encode("utf-8") + b"\0"
        err = lib.espeak_Synth(data, len(data), 0, _POS_CHARACTER, 0, _CHARS_UTF8, None, None)
        lib.espeak_Synchronize()
        if err != 0:
            raise NeurostackError(f"eSpeak NG failed to synthesise {text!r} with {voice!r} (error {err})")
        return np.concatenate(self._chunks) if self._chunks else np.zeros(0, dtype=np.int16)


def speak_many(requests: list[dict]) -> tuple[list[np.ndarray], int]:
    """Synthesise utterances in order with one fresh engine.

    Each request holds keyword arguments of `speak` (text, voice, rate, pitch, pitch_range,
    volume, seed). A result depends on its own request and on the ones before it in the list,
    nothing else. Returns (int16 sample arrays, sample rate in Hz).
    """
    global _VERSION
    with _LOCK, _Engine() as engine:
        _VERSION = engine.version
        return [engine.synth(**r) for r in requests], engine.sample_rate


def speak(text: str, voice: str, rate: int = 175, pitch: int = 50, pitch_range: int = 50, volume: int = 100,
          seed: int = 0) -> tuple[np.ndarray, int]:
    """Synthesise `text` with `voice` ("lang+variant", e.g. "en+m3"); depends only on the arguments.

    rate in words per minute; pitch and pitch_range 0-100 (50 = the voice's own); volume in % of
    the default amplitude; seed for eSpeak's random generators. Returns (int16 samples, rate in Hz).
    """
    pcms, sr = speak_many([dict(text=text, voice=voice, rate=rate, pitch=pitch, pitch_range=pitch_range,
                                volume=volume, seed=seed)])
    return pcms[0], sr


def version() -> str:
    """Version string of the bundled eSpeak NG library."""
    global _VERSION
    if _VERSION is None:
        with _LOCK, _Engine() as engine:
            _VERSION = engine.version
    return _VERSION
