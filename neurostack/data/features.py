"""Per-utterance audio features: log-mel or MFCC frames scaled to [0, 1].

Normalisation uses only the utterance itself (no dataset statistics), so the simulator can
featurise a single file later and get exactly what the model saw in training.
"""

from __future__ import annotations

import math
import numbers
import os
from dataclasses import asdict, dataclass, fields
from typing import Any

import librosa
import numpy as np

from neurostack.errors import NeurostackError

FEATURE_KINDS = ("mel", "mfcc")
TOP_DB = 80.0  # dynamic range kept below each utterance's peak, dB
_MIN_MELS_FOR_MFCC = 40


@dataclass(frozen=True)
class FeatureConfig:
    """How audio becomes a (n_frames, n_bins) array.

    kind: "mel" (log-mel bands) or "mfcc" (cepstral coefficients of the log-mel).
    n_bins: mel bands or MFCCs; for shd/ssc the number of output channels (700 summed down).
    sample_rate: Hz; audio is resampled to it.
    hop_s, win_s: frame hop and analysis window, seconds.
    duration_s: every clip is padded with silence / cropped (centred on its energy) to this length,
        giving ``n_frames = round(duration_s / hop_s)`` frames.
    fmin, fmax: mel filterbank range, Hz (fmax at most sample_rate / 2).
    clip_counts: shd/ssc only: clip per-bin spike counts to 1.
    remove_floor: mel only: subtract the utterance's median level (its noise floor) and rescale to [0, 1],
        so that background noise does not become a large constant input shared by every class.
    """

    kind: str = "mel"
    n_bins: int = 40
    sample_rate: int = 8000
    hop_s: float = 0.01
    win_s: float = 0.025
    duration_s: float = 1.0
    fmin: float = 20.0
    fmax: float = 4000.0
    clip_counts: bool = False
    remove_floor: bool = True

    def __post_init__(self) -> None:
        for f in fields(self):  # configs come from files too (run configs, NIR metadata): check the types first
            value = getattr(self, f.name)
            want = {"str": str, "int": numbers.Integral, "float": numbers.Real, "bool": (bool, np.bool_)}[str(f.type)]
            if not isinstance(value, want) or (f.type != "bool" and isinstance(value, (bool, np.bool_))):
                raise NeurostackError(f"feature config {f.name} = {value!r:.40}: expected {f.type}")
            if f.type == "float" and not math.isfinite(value):
                raise NeurostackError(f"feature config {f.name} = {value}: must be a finite number")
        if self.kind not in FEATURE_KINDS:
            raise NeurostackError(f"feature kind {self.kind!r} is unknown; use one of {', '.join(FEATURE_KINDS)}")
        if int(self.n_bins) < 1 or int(self.sample_rate) < 1:
            raise NeurostackError(f"feature config needs n_bins >= 1 and sample_rate >= 1 (got {self.n_bins}, {self.sample_rate})")
        if not (self.hop_s > 0 and self.win_s > 0 and self.duration_s >= self.hop_s):
            raise NeurostackError(
                f"feature config needs hop_s > 0, win_s > 0 and duration_s >= hop_s "
                f"(got hop_s={self.hop_s}, win_s={self.win_s}, duration_s={self.duration_s})"
            )
        if not (0 <= self.fmin < self.fmax <= self.sample_rate / 2):
            raise NeurostackError(
                f"feature config needs 0 <= fmin < fmax <= sample_rate/2 = {self.sample_rate / 2:g} Hz "
                f"(got fmin={self.fmin}, fmax={self.fmax})"
            )

    @property
    def n_frames(self) -> int:
        """Frames per clip: round(duration_s / hop_s)."""
        return int(round(self.duration_s / self.hop_s))

    @property
    def hop_length(self) -> int:
        """Frame hop in samples at `sample_rate`."""
        return max(1, int(round(self.hop_s * self.sample_rate)))

    @property
    def win_length(self) -> int:
        """Analysis window in samples at `sample_rate`."""
        return max(1, int(round(self.win_s * self.sample_rate)))

    @property
    def n_fft(self) -> int:
        """FFT size: the next power of two >= win_length."""
        return 1 << (self.win_length - 1).bit_length()

    @property
    def n_samples(self) -> int:
        """Samples per clip after padding / cropping: n_frames * hop_length."""
        return self.n_frames * self.hop_length

    def to_dict(self) -> dict[str, Any]:
        """JSON-able dict of all fields."""
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "FeatureConfig":
        """Inverse of `to_dict`; unknown keys raise NeurostackError."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise NeurostackError(f"feature config has unknown keys {unknown}; known keys are {sorted(known)}")
        return cls(**d)


def check_dataset_memory(n: int, cfg: FeatureConfig, what: str) -> None:
    """Refuse (NeurostackError) computing `n` feature arrays with `cfg` when they would not fit in memory.

    Counts the float32 (n, n_frames, n_bins) arrays twice (the list of arrays and the stacked array) plus one
    utterance's working memory (waveform copies and the spectrogram), all from the config's sizes.
    """
    from neurostack.memory import check_memory

    per_item = cfg.n_frames * cfg.n_bins * 4
    working = cfg.n_samples * 4 * 4 + (cfg.n_fft // 2 + 1) * (cfg.n_frames + 1) * 8 * 2
    check_memory(2 * n * per_item + working, f"{what}: {n} samples of {cfg.n_frames} x {cfg.n_bins} features")


def fit_length(wave: np.ndarray, n_samples: int) -> np.ndarray:
    """Pad with silence (centred) or crop to a window centred on the energy, to `n_samples` samples."""
    n = wave.shape[0]
    if n == n_samples:
        return wave
    if n < n_samples:
        left = (n_samples - n) // 2
        return np.pad(wave, (left, n_samples - n - left))
    power = wave.astype(np.float64) ** 2
    total = power.sum()
    centre = (np.arange(n) * power).sum() / total if total > 0 else n / 2
    start = int(np.clip(round(centre - n_samples / 2), 0, n - n_samples))
    return wave[start : start + n_samples]


def audio_features(wave: np.ndarray, sr: int, cfg: FeatureConfig) -> np.ndarray:
    """Features of one mono waveform `wave` (n_samples,) sampled at `sr` Hz.

    Returns float32 (cfg.n_frames, cfg.n_bins) in [0, 1]. Mel: power_to_db(ref=max, top_db=80)
    mapped by (db + 80) / 80 (minus the median floor when remove_floor). MFCC: DCT of that log-mel, min-max scaled over the utterance.
    An all-silent clip gives zeros.
    """
    y = np.asarray(wave, dtype=np.float32)
    if y.ndim != 1:
        raise NeurostackError(f"audio_features expects a mono waveform (n_samples,), got shape {y.shape}")
    if sr != cfg.sample_rate:
        y = librosa.resample(y, orig_sr=sr, target_sr=cfg.sample_rate)
    y = fit_length(y, cfg.n_samples)
    n_mels = cfg.n_bins if cfg.kind == "mel" else max(_MIN_MELS_FOR_MFCC, cfg.n_bins)
    power = librosa.feature.melspectrogram(
        y=y, sr=cfg.sample_rate, n_fft=cfg.n_fft, hop_length=cfg.hop_length, win_length=cfg.win_length,
        window="hann", center=True, power=2.0, n_mels=n_mels, fmin=cfg.fmin, fmax=cfg.fmax,
    )[:, : cfg.n_frames]
    if not power.max() > 1e-10:
        return np.zeros((cfg.n_frames, cfg.n_bins), dtype=np.float32)
    # scaled to its peak first, so the floor of digital silence (amin) is relative too: gain invariant
    db = librosa.power_to_db(power / power.max(), ref=np.max, top_db=TOP_DB)
    if cfg.kind == "mel":
        out = (db + TOP_DB) / TOP_DB
        if cfg.remove_floor:
            floor = float(np.median(out))
            out = (out - floor) / max(1.0 - floor, 1e-6)
    else:
        mfcc = librosa.feature.mfcc(S=db, n_mfcc=cfg.n_bins)
        lo, hi = mfcc.min(), mfcc.max()
        out = (mfcc - lo) / (hi - lo) if hi > lo else np.zeros_like(mfcc)
    return np.clip(out.T, 0.0, 1.0).astype(np.float32)


def file_features(path: str | os.PathLike, cfg: FeatureConfig) -> np.ndarray:
    """Read one audio file and return its features, float32 (cfg.n_frames, cfg.n_bins) in [0, 1]."""
    from neurostack.data.audio import read_wav

    wave, sr = read_wav(path)
    return audio_features(wave, sr, cfg)
