"""On-disk cache of computed datasets, one ``.npz`` per key, written atomically.

Directory: the explicit `cache_dir`, else ``$NEUROSTACK_CACHE``, else the platform user cache
(``platformdirs.user_cache_dir("neurostack")``), under ``datasets/``. The key hashes everything the
arrays depend on (dataset spec, source files with sizes and mtimes, FeatureConfig, seed, split,
limit, CACHE_VERSION). An entry that fails to load or to check out (npz CRC, keys, shapes, the key
stored inside) is treated as missing and rebuilt.
"""

from __future__ import annotations

import hashlib
import json
import os
import warnings
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np

from neurostack.atomic import write_with
from neurostack.errors import NeurostackError

CACHE_VERSION = 2  # bump when feature or dataset code changes what gets computed
SPLITS = ("train", "val", "test")


def cache_root(cache_dir: str | os.PathLike | None = None) -> Path:
    """The cache directory in use (not created)."""
    if cache_dir is not None:
        return Path(cache_dir).expanduser()
    env = os.environ.get("NEUROSTACK_CACHE")
    if env:
        return Path(env).expanduser()
    import platformdirs

    return Path(platformdirs.user_cache_dir("neurostack"))


def file_fingerprint(paths: Iterable[str | os.PathLike]) -> list[list]:
    """[[path, size in bytes, mtime in ns], ...] of `paths`, for cache keys."""
    out = []
    for p in paths:
        st = os.stat(p)
        out.append([str(p), st.st_size, st.st_mtime_ns])
    return out


def cache_key(parts: dict[str, Any]) -> str:
    """Hex SHA-256 of `parts` (JSON-able) together with CACHE_VERSION."""
    blob = json.dumps({"cache_version": CACHE_VERSION, **parts}, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()


def entry_path(key: str, cache_dir: str | os.PathLike | None = None) -> Path:
    """Where the entry for `key` lives."""
    return cache_root(cache_dir) / "datasets" / f"{key[:32]}.npz"


def save(path: Path, key: str, record: dict[str, Any]) -> None:
    """Write `record` (x, y: split -> array; any other JSON-able fields) atomically to `path`."""
    arrays = {"key": np.array(key)}
    for s, a in record["x"].items():
        arrays[f"x_{s}"] = np.ascontiguousarray(a)
    for s, a in record["y"].items():
        arrays[f"y_{s}"] = np.ascontiguousarray(a)
    rest = {k: v for k, v in record.items() if k not in ("x", "y")}
    arrays["json"] = np.array(json.dumps(rest))
    write_with(path, lambda tmp: np.savez(tmp, **arrays))


def load(path: Path, key: str) -> dict[str, Any] | None:
    """The record stored at `path` for `key`, or None when missing, corrupt or for another key."""
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as z:
            if str(z["key"]) != key:
                return None
            record = json.loads(str(z["json"]))
            x = {s: z[f"x_{s}"] for s in SPLITS if f"x_{s}" in z.files}
            y = {s: z[f"y_{s}"] for s in SPLITS if f"y_{s}" in z.files}
    except Exception:  # truncated file, bad zip / CRC, missing member, bad JSON
        return None
    if set(x) != set(y) or not x:
        return None
    for s in x:
        if x[s].ndim != 3 or x[s].dtype != np.float32 or y[s].shape != (x[s].shape[0],) or y[s].dtype != np.int64:
            return None
    return {"x": x, "y": y, **record}


def cached(parts: dict[str, Any], build: Callable[[], dict[str, Any]],
           cache_dir: str | os.PathLike | None = None) -> tuple[dict[str, Any], bool]:
    """Load the entry for `parts`, or `build()` it and store it. Returns (record, was_cached)."""
    key = cache_key(parts)
    path = entry_path(key, cache_dir)
    record = load(path, key)
    if record is not None:
        return record, True
    record = build()
    record = {**record, **json.loads(json.dumps({k: v for k, v in record.items() if k not in ("x", "y")}))}
    try:
        save(path, key, record)
    except (OSError, NeurostackError) as exc:  # an unwritable cache only costs the next run a rebuild
        warnings.warn(f"could not write dataset cache {path}: {exc}", stacklevel=2)
    return record, False
