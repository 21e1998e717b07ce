"""Writes small HDF5 files in the real SHD/SSC layout (shared by tests/data and tests/reliability; tests/ is on
sys.path because it holds the root conftest.py)."""

from __future__ import annotations

import h5py
import numpy as np


def write_h5(path, samples, labels, keys=None, drop=None) -> None:
    """samples: list of (times_s, units); spikes/times and spikes/units variable-length per sample, labels,
    extra/keys; `drop` deletes one key afterwards."""
    with h5py.File(path, "w") as f:
        times = f.create_dataset("spikes/times", (len(samples),), dtype=h5py.vlen_dtype(np.float32))
        units = f.create_dataset("spikes/units", (len(samples),), dtype=h5py.vlen_dtype(np.uint16))
        for i, (t, u) in enumerate(samples):
            times[i] = np.asarray(t, np.float32)
            units[i] = np.asarray(u, np.uint16)
        f.create_dataset("labels", data=np.asarray(labels, np.uint16))
        if keys is not None:
            f.create_dataset("extra/keys", data=np.array([k.encode() for k in keys]))
        if drop:
            del f[drop]
