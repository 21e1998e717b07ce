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
from neurostack.data.features import FeatureConfig, check_dataset_memory
from neurostack.errors import NeurostackError
from neurostack.isolate import isolated
from neurostack.memory import check_memory, hdf5_bytes

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


MAX_LABEL = 2**16 - 1  # the files store labels as uint16
READ_TIMEOUT_S = 120.0  # reading one file may take this long, plus a second per READ_BYTES_PER_S of file
READ_BYTES_PER_S = 20e6


def _fail(p: Path, what: str) -> NeurostackError:
    return NeurostackError(f"{p}: {what}")


def _read_raw(p: Path) -> tuple:
    """The four datasets as stored (run in a forked child: a damaged file can make libhdf5 loop or crash)."""
    try:
        f = h5py.File(p, "r")
    except OSError as exc:
        raise NeurostackError(f"{p}: not a readable HDF5 file ({str(exc).splitlines()[0]})") from None
    with f:
        for key in REQUIRED_KEYS + (("extra/keys",) if "extra/keys" in f else ()):
            if key not in f:
                raise _fail(p, f"missing HDF5 dataset {key!r}")
            if not isinstance(f[key], h5py.Dataset):
                raise _fail(p, f"{key!r} is not an HDF5 dataset")
        check_memory(hdf5_bytes(f), f"{p}: reading its datasets")  # declared sizes (a lower bound for lists)
        try:
            return (f["spikes/times"][()], f["spikes/units"][()], f["labels"][()],
                    f["extra/keys"][()] if "extra/keys" in f else None)
        except Exception as exc:  # unreadable (corrupt) data blocks
            raise _fail(p, f"cannot read its datasets ({' '.join(str(exc).split())[:100]})") from None


def read_h5(path: str | os.PathLike) -> tuple[list[np.ndarray], list[np.ndarray], np.ndarray, list[str] | None]:
    """(times per sample [s], units per sample, labels int64 (N,), class names or None) of one file.

    Anything not in the SHD layout (a missing or non-numeric dataset, lengths that differ, labels outside
    0..65535, non-finite spike times, units outside 0..699) raises NeurostackError naming the file.
    """
    p = Path(path)
    timeout = READ_TIMEOUT_S + p.stat().st_size / READ_BYTES_PER_S
    raw_times, raw_units, raw_labels, raw_keys = isolated(_read_raw, p, timeout=timeout, what=str(p))
    labels = np.asarray(raw_labels)
    if labels.ndim != 1 or labels.dtype.kind not in "iuf" or not np.all(np.isfinite(labels)) \
            or not np.all(labels == np.round(labels)):
        raise _fail(p, f"labels must be a list of whole numbers, got shape {labels.shape} of dtype {labels.dtype}")
    if labels.size and (labels.min() < 0 or labels.max() > MAX_LABEL):
        raise _fail(p, f"labels outside 0..{MAX_LABEL} (from {labels.min():g} to {labels.max():g})")
    labels = labels.astype(np.int64)
    for key, raw in (("spikes/times", raw_times), ("spikes/units", raw_units)):
        if np.ndim(raw) < 1:
            raise _fail(p, f"{key} must hold one list per sample, got a single value")
    if not len(raw_times) == len(raw_units) == len(labels):
        raise _fail(p, f"spikes/times, spikes/units and labels differ in length "
                       f"({len(raw_times)}, {len(raw_units)}, {len(labels)})")
    times, units = [], []
    for i, (t, u) in enumerate(zip(raw_times, raw_units)):
        t, u = np.asarray(t), np.asarray(u)
        if t.ndim != 1 or u.ndim != 1 or t.dtype.kind not in "iuf" or u.dtype.kind not in "iuf":
            raise _fail(p, f"sample {i}: spike times and units must be lists of numbers "
                           f"(got {t.dtype} {t.shape} and {u.dtype} {u.shape})")
        if t.shape != u.shape:
            raise _fail(p, f"sample {i} has {t.size} spike times but {u.size} units")
        if not np.all(np.isfinite(t)):
            raise _fail(p, f"sample {i} has NaN or infinite spike times")
        if u.size and (u.min() < 0 or u.max() >= N_UNITS or not np.all(u == np.round(u))):
            raise _fail(p, f"sample {i} has units outside 0..{N_UNITS - 1}")
        times.append(t.astype(np.float64))
        units.append(u.astype(np.int64))
    keys = None
    if raw_keys is not None:
        k = np.asarray(raw_keys)
        if k.ndim != 1:
            raise _fail(p, f"extra/keys must be a list of class names, got shape {k.shape}")
        keys = [v.decode("utf-8", "replace") if isinstance(v, bytes) else str(v) for v in k]
    return times, units, labels, keys


def make_events(times_s: np.ndarray, units: np.ndarray) -> np.ndarray:
    """Events in tonic's structured layout: t in integer microseconds, x = unit, p = 0."""
    ev = np.zeros(len(times_s), dtype=EVENT_DTYPE)
    ev["t"] = (np.clip(np.asarray(times_s, dtype=np.float64), -1e9, 1e9) * 1e6).astype(np.int64)  # no overflow
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

    check_dataset_memory(sum(map(len, parts.values())), cfg, str(Path(folder).expanduser()))
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
