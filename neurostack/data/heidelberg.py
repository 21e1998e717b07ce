"""Spiking Heidelberg Digits (SHD) and Spiking Speech Commands (SSC) HDF5 files.

A dataset folder holds ``shd_train.h5`` and ``shd_test.h5`` (SSC also ``ssc_valid.h5``), each with
datasets ``spikes/times`` (variable-length float, seconds), ``spikes/units`` (variable-length
uint16, 0..699), ``labels`` and optionally ``extra/keys`` (class names). Events are binned into
frames of spike counts, (T, C): time bins of FeatureConfig.hop_s from t = 0 to duration_s (later
spikes dropped), and 700 units summed into C = FeatureConfig.n_bins channels.

The events use tonic's layout (structured dtype t [µs], x [unit], p [0]) and the binning matches
``tonic.transforms.ToFrame(sensor_size=(700, 1, 1), time_window=hop, start_time=0, end_time=duration)``,
written in numpy because importing tonic imports torch, which this package must not need.
"""

from __future__ import annotations

import os
from pathlib import Path

import h5py
import numpy as np

from neurostack.data._progress import progress_bar
from neurostack.data._subset import seeded_holdout, seeded_subset
from neurostack.data.features import FeatureConfig
from neurostack.errors import NeurostackError

N_UNITS = 700  # cochlea model channels in SHD and SSC
EVENT_DTYPE = np.dtype([("t", np.int64), ("x", np.int64), ("p", np.int64)])  # as tonic.datasets.SHD
FILES = {
    "shd": {"train": "shd_train.h5", "test": "shd_test.h5"},
    "ssc": {"train": "ssc_train.h5", "val": "ssc_valid.h5", "test": "ssc_test.h5"},
}
N_CLASSES = {"shd": 20, "ssc": 35}  # class names are "0".."N-1" when a file has no extra/keys
VAL_FRACTION = 0.1  # SHD has no validation file: a seeded share of its training file
REQUIRED_KEYS = ("spikes/times", "spikes/units", "labels")
DEFAULT_CHANNELS = 70  # 700 units summed in groups of 10 unless a FeatureConfig says otherwise


def files_for(kind: str, folder: str | os.PathLike) -> dict[str, Path]:
    """The HDF5 file of each split in `folder` for `kind` ("shd" or "ssc"); missing ones raise."""
    root = Path(folder).expanduser()
    if not root.is_dir():
        raise NeurostackError(f"{kind.upper()} folder {root} does not exist or is not a folder")
    paths = {split: (root / name).resolve() for split, name in FILES[kind].items()}
    for p in paths.values():
        if not p.is_file():
            raise NeurostackError(f"{kind.upper()} folder {root} has no {p.name}")
    return paths


def check_split(kind: str, split: str) -> None:
    """Raise NeurostackError unless `split` is "standard" or "all"."""
    if split not in ("standard", "all"):
        raise NeurostackError(f"unknown {kind.upper()} split {split!r}; use 'standard' or 'all'")


def read_h5(path: str | os.PathLike) -> tuple[list[np.ndarray], list[np.ndarray], np.ndarray, list[str] | None]:
    """(times per sample [s], units per sample, labels int64 (N,), class names or None) of one file."""
    p = Path(path)
    try:
        f = h5py.File(p, "r")
    except OSError as exc:
        raise NeurostackError(f"{p}: not a readable HDF5 file ({str(exc).splitlines()[0]})") from None
    with f:
        for key in REQUIRED_KEYS:
            if key not in f:
                raise NeurostackError(f"{p}: missing HDF5 dataset {key!r}")
        times = [np.asarray(t, dtype=np.float64) for t in f["spikes/times"][()]]
        units = [np.asarray(u, dtype=np.int64) for u in f["spikes/units"][()]]
        labels = np.asarray(f["labels"][()], dtype=np.int64).reshape(-1)
        keys = None
        if "extra/keys" in f:
            keys = [k.decode() if isinstance(k, bytes) else str(k) for k in f["extra/keys"][()]]
    if not len(times) == len(units) == len(labels):
        raise NeurostackError(
            f"{p}: spikes/times, spikes/units and labels differ in length ({len(times)}, {len(units)}, {len(labels)})"
        )
    for i, (t, u) in enumerate(zip(times, units)):
        if t.shape != u.shape:
            raise NeurostackError(f"{p}: sample {i} has {t.size} spike times but {u.size} units")
        if u.size and (u.min() < 0 or u.max() >= N_UNITS):
            raise NeurostackError(f"{p}: sample {i} has units outside 0..{N_UNITS - 1}")
    return times, units, labels, keys


def make_events(times_s: np.ndarray, units: np.ndarray) -> np.ndarray:
    """Events in tonic's structured layout: t in integer microseconds, x = unit, p = 0."""
    ev = np.zeros(len(times_s), dtype=EVENT_DTYPE)
    ev["t"] = (np.asarray(times_s, dtype=np.float64) * 1e6).astype(np.int64)
    ev["x"] = units
    return ev


def to_frames(events: np.ndarray, cfg: FeatureConfig) -> np.ndarray:
    """Spike counts float32 (cfg.n_frames, cfg.n_bins) of one event array (tonic layout).

    Frame k holds events with k*hop <= t < (k+1)*hop; unit u goes to channel u * n_bins // 700.
    With cfg.clip_counts, counts are clipped to 1.
    """
    n_frames, n_ch = cfg.n_frames, cfg.n_bins
    hop_us = int(round(cfg.hop_s * 1e6))
    frame = events["t"] // hop_us
    keep = (frame >= 0) & (frame < n_frames)
    channel = np.minimum(events["x"][keep] * n_ch // N_UNITS, n_ch - 1)
    counts = np.bincount(frame[keep] * n_ch + channel, minlength=n_frames * n_ch)
    out = counts.reshape(n_frames, n_ch).astype(np.float32)
    return np.minimum(out, 1.0) if cfg.clip_counts else out


def load(
    kind: str,
    folder: str | os.PathLike,
    cfg: FeatureConfig,
    split: str = "standard",
    seed: int = 0,
    limit: int | None = None,
    progress: bool = True,
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray], list[str], dict]:
    """Frames of every split. Returns (x, y, classes, meta): x[split] float32 (N, T, C) counts, y int64 (N,).

    split "standard" uses the files' own train/test (SHD: val = seeded 10 % of train; SSC: the
    valid file); "all" puts every sample of every file in test.
    """
    check_split(kind, split)
    paths = files_for(kind, folder)
    raw = {s: read_h5(p) for s, p in paths.items()}
    parts: dict[str, list[tuple[str, int]]] = {s: [(s, i) for i in range(len(raw[s][2]))] for s in raw}
    if kind == "shd" and split == "standard":
        train, val = seeded_holdout(parts["train"], VAL_FRACTION, seed)
        parts = {"train": train, "val": val, "test": parts["test"]}
    if split == "all":
        parts = {"train": [], "val": [], "test": [r for s in raw for r in parts[s]]}
    parts = {s: seeded_subset(r, limit, seed) for s, r in parts.items()}

    x, y = {}, {}
    with progress_bar(sum(map(len, parts.values())), f"binning {kind.upper()} spikes", progress) as advance:
        for s, refs in parts.items():
            frames = np.zeros((len(refs), cfg.n_frames, cfg.n_bins), dtype=np.float32)
            for n, (src, i) in enumerate(refs):
                times, units, _, _ = raw[src]
                frames[n] = to_frames(make_events(times[i], units[i]), cfg)
                advance()
            x[s] = frames
            y[s] = np.array([raw[src][2][i] for src, i in refs], dtype=np.int64)

    n_labels = int(max((r[2].max() + 1 for r in raw.values() if r[2].size), default=0))
    keys = next((r[3] for r in raw.values() if r[3] is not None), None)
    if keys is not None and len(keys) >= n_labels:
        classes = list(keys)
    else:
        classes = [str(c) for c in range(max(N_CLASSES[kind], n_labels))]
    meta = {"source_files": {s: str(p) for s, p in paths.items()}, "n_units": N_UNITS,
            "spikes_dropped_after_s": cfg.duration_s}
    return x, y, classes, meta
