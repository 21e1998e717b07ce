"""The data cache: a damaged entry is detected and rebuilt, never trusted, and never unpickled."""

from __future__ import annotations

import os
import pickle

import numpy as np
import pytest

from neurostack.data import cache, load_dataset
from reliability_helpers import fsdd_folder, invoke


def _entry(cache_dir):
    entries = list((cache_dir / "datasets").glob("*.npz"))
    assert len(entries) == 1, entries
    return entries[0]


class Payload:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def _truncate(path, tmp_path):
    path.write_bytes(path.read_bytes()[:200])


def _flip(path, tmp_path):
    data = bytearray(path.read_bytes())
    data[len(data) // 2:len(data) // 2 + 32] = b"\xff" * 32
    path.write_bytes(bytes(data))


def _pickled(path, tmp_path):
    with np.load(path) as z:
        arrays = dict(z)
    arrays["x_train"] = np.array([Payload(tmp_path / "marker")], dtype=object)
    np.savez(path, **arrays)


def _wrong_shapes(path, tmp_path):
    with np.load(path) as z:
        arrays = dict(z)
    arrays["x_train"] = arrays["x_train"][:, :3]
    arrays["y_train"] = arrays["y_train"][:1]
    np.savez(path, **arrays)


def _other_key(path, tmp_path):
    with np.load(path) as z:
        arrays = dict(z)
    arrays["key"] = np.array("0" * 64)
    np.savez(path, **arrays)


def _not_a_zip(path, tmp_path):
    path.write_bytes(pickle.dumps(Payload(tmp_path / "marker")))


DAMAGE = {"truncated": _truncate, "bytes flipped": _flip, "holds a pickle": _pickled, "wrong shapes": _wrong_shapes,
          "another key": _other_key, "a pickle, not a zip": _not_a_zip}


@pytest.mark.parametrize("case", DAMAGE, ids=list(DAMAGE))
def test_a_damaged_entry_is_rebuilt(tmp_path, case):
    folder = fsdd_folder(tmp_path / "fsdd")
    cache_dir = tmp_path / "cache"
    first = load_dataset(f"fsdd:{folder}", cache_dir=cache_dir, progress=False)
    entry = _entry(cache_dir)
    DAMAGE[case](entry, tmp_path)
    again = load_dataset(f"fsdd:{folder}", cache_dir=cache_dir, progress=False)
    assert not (tmp_path / "marker").exists()
    for split in first.x:
        np.testing.assert_array_equal(first.x[split], again.x[split])
        np.testing.assert_array_equal(first.y[split], again.y[split])
    with np.load(entry, allow_pickle=False) as z:  # the entry on disk is whole again
        assert z["x_train"].shape == first.x["train"].shape
    assert [p.name for p in entry.parent.iterdir()] == [entry.name]  # no temporary files left behind


def test_a_damaged_entry_is_rebuilt_through_the_cli(tmp_path):
    folder = fsdd_folder(tmp_path / "fsdd")
    cache_dir = tmp_path / "cache"
    args = ["--data", f"fsdd:{folder}", "--epochs", "1", "--hidden", "8", "--steps", "2", "--cache-dir", cache_dir,
            "--device", "cpu"]
    assert invoke("train", *args, "--out", tmp_path / "a").exit_code == 0
    entry = _entry(cache_dir)
    good = entry.read_bytes()
    _truncate(entry, tmp_path)
    result = invoke("train", *args, "--out", tmp_path / "b")
    assert result.exit_code == 0, result.output
    assert entry.read_bytes() == good  # rebuilt: the same arrays, written whole


def test_an_unwritable_cache_only_costs_a_rebuild(tmp_path):
    folder = fsdd_folder(tmp_path / "fsdd")
    cache_dir = tmp_path / "cache"
    (cache_dir / "datasets").mkdir(parents=True)
    parts = {"dataset": "fsdd"}
    path = cache.entry_path(cache.cache_key(parts), cache_dir)
    path.mkdir()  # a folder where the entry should be
    with pytest.warns(UserWarning, match="could not write dataset cache"):
        record, hit = cache.cached(parts, lambda: {"x": {"test": np.zeros((1, 2, 3), np.float32)},
                                                   "y": {"test": np.zeros(1, np.int64)}, "meta": {}, "files": None},
                                   cache_dir)
    assert not hit and record["x"]["test"].shape == (1, 2, 3)
    load_dataset(f"fsdd:{folder}", cache_dir=cache_dir, progress=False)
