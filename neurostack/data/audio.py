"""Reading audio files into mono float32 waveforms."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import soundfile as sf

from neurostack.errors import NeurostackError


def read_wav(path: str | os.PathLike) -> tuple[np.ndarray, int]:
    """Read an audio file with soundfile.

    Returns ``(wave, sample_rate)``: ``wave`` is float32 mono, shape (n_samples,), nominally in
    [-1, 1] (stereo and multichannel files are averaged down); ``sample_rate`` is in Hz.
    A missing, empty, zero-length or non-audio file, or one holding NaN/inf, raises NeurostackError.
    """
    p = Path(path)
    if not p.is_file():
        raise NeurostackError(f"{p}: audio file not found")
    if p.stat().st_size == 0:
        raise NeurostackError(f"{p}: file is empty (0 bytes)")
    try:
        data, sr = sf.read(str(p), dtype="float32", always_2d=True)
    except Exception as exc:  # soundfile raises LibsndfileError, RuntimeError, TypeError...
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise NeurostackError(f"{p}: not a readable audio file ({reason})") from None
    if data.shape[0] == 0:
        raise NeurostackError(f"{p}: audio file has no samples")
    wave = data.mean(axis=1, dtype=np.float32) if data.shape[1] > 1 else data[:, 0]
    if not np.all(np.isfinite(wave)):
        raise NeurostackError(f"{p}: audio contains NaN or infinite samples")
    return np.ascontiguousarray(wave, dtype=np.float32), int(sr)
