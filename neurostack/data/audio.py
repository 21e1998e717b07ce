"""Reading audio files into mono float32 waveforms."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import soundfile as sf

from neurostack.errors import NeurostackError
from neurostack.memory import check_memory, nbytes


def read_wav(path: str | os.PathLike) -> tuple[np.ndarray, int]:
    """Read an audio file with soundfile.

    Returns ``(wave, sample_rate)``: ``wave`` is float32 mono, shape (n_samples,), nominally in
    [-1, 1] (stereo and multichannel files are averaged down; any sample rate: features resample);
    ``sample_rate`` is in Hz. Silent and clipped audio is read as it is. A missing, empty, zero-length or
    non-audio file, one holding NaN/inf, or one too long for the memory left, raises NeurostackError
    naming the file.
    """
    p = Path(path)
    if not p.is_file():
        raise NeurostackError(f"{p}: audio file not found")
    if p.stat().st_size == 0:
        raise NeurostackError(f"{p}: file is empty (0 bytes)")
    try:
        info = sf.info(str(p))
        # the float32 samples, their mono mix and a resampled copy, from the header before reading anything
        check_memory(3 * nbytes((info.frames, max(info.channels, 1)), 4), f"{p}: reading its {info.frames} frames")
        data, sr = sf.read(str(p), dtype="float32", always_2d=True)
    except NeurostackError:
        raise
    except Exception as exc:  # soundfile raises LibsndfileError, RuntimeError, TypeError...
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        reason = reason.replace(f"Error opening {str(p)!r}: ", "")  # libsndfile repeats the path
        raise NeurostackError(f"{p}: not a readable audio file ({reason})") from None
    if sr < 1:
        raise NeurostackError(f"{p}: audio file gives a sample rate of {sr} Hz")
    if data.shape[0] == 0:
        raise NeurostackError(f"{p}: audio file has no samples")
    wave = data.mean(axis=1, dtype=np.float32) if data.shape[1] > 1 else data[:, 0]
    if not np.all(np.isfinite(wave)):
        raise NeurostackError(f"{p}: audio contains NaN or infinite samples")
    return np.ascontiguousarray(wave, dtype=np.float32), int(sr)
