"""SHD-layout HDF5 files with missing keys, wrong types and impossible values, through `neurostack train --data
shd:DIR`: exit code 2 and one line naming the file and what is wrong. (The layout is built as in
tests/data/test_heidelberg.py: spikes/times and spikes/units variable-length per sample, labels, extra/keys.)"""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pytest

from reliability_helpers import assert_clean_error, invoke
from shd_layout import write_h5


def make_shd(folder: Path) -> Path:
    folder.mkdir()
    rng = np.random.default_rng(0)
    sample = lambda: (np.sort(rng.uniform(0, 0.3, 30)), rng.integers(0, 700, 30))
    keys = [f"digit-{i}" for i in range(20)]
    write_h5(folder / "shd_train.h5", [sample() for _ in range(12)], rng.integers(0, 20, 12), keys)
    write_h5(folder / "shd_test.h5", [sample() for _ in range(4)], rng.integers(0, 20, 4), keys)
    return folder


def _train(folder: Path, tmp_path: Path):
    return invoke("train", "--data", f"shd:{folder}", "--epochs", "1", "--hidden", "8", "--out", tmp_path / "run",
                  "--cache-dir", tmp_path / "cache", "--device", "cpu")


def _replace(key, value):
    def damage(f: h5py.File) -> None:
        del f[key]
        if value is not None:
            f[key] = value
    return damage


def _one_sample(times, units):
    def damage(f: h5py.File) -> None:
        for key, dtype, values in (("spikes/times", np.float32, times), ("spikes/units", np.int32, units)):
            del f[key]
            d = f.create_dataset(key, (4,), dtype=h5py.vlen_dtype(dtype))
            for i in range(4):
                d[i] = np.asarray(values if i == 0 else [0.01], dtype)
    return damage


CASES = {
    "missing spikes/times": (_replace("spikes/times", None), "missing HDF5 dataset 'spikes/times'"),
    "missing spikes/units": (_replace("spikes/units", None), "missing HDF5 dataset 'spikes/units'"),
    "missing labels": (_replace("labels", None), "missing HDF5 dataset 'labels'"),
    "spikes is not a group": (lambda f: (_replace("spikes/times", None)(f), _replace("spikes/units", None)(f),
                                         _replace("spikes", np.zeros(3))(f)), "missing HDF5 dataset"),
    "labels as text": (_replace("labels", np.array([b"a"] * 4)), "labels must be a list of whole numbers"),
    "labels 2-d": (_replace("labels", np.zeros((4, 2), np.uint16)), "labels must be a list of whole numbers"),
    "labels fractional": (_replace("labels", np.full(4, 1.5)), "labels must be a list of whole numbers"),
    "labels negative": (_replace("labels", np.full(4, -1)), "labels outside 0..65535"),
    # 10^12 classes would have built a list of 10^12 class names (the process was killed for memory)
    "labels absurd": (_replace("labels", np.full(4, 10**12)), "labels outside 0..65535"),
    "labels too few": (_replace("labels", np.zeros(3, np.uint16)), "differ in length (4, 4, 3)"),
    "times a single value": (_replace("spikes/times", np.float32(1)), "one list per sample"),
    "times as text": (_replace("spikes/times", np.array([b"x"] * 4)), "must be lists of numbers"),
    "NaN spike time": (_one_sample([np.nan, 0.1], [1, 2]), "sample 0 has NaN or infinite spike times"),
    "unit out of range": (_one_sample([0.1, 0.2], [1, 700]), "sample 0 has units outside 0..699"),
    "negative unit": (_one_sample([0.1, 0.2], [-1, 2]), "sample 0 has units outside 0..699"),
    "times and units differ": (_one_sample([0.1], [1, 2]), "sample 0 has 1 spike times but 2 units"),
    "class names 2-d": (_replace("extra/keys", np.array([[b"a", b"b"]] * 3)), "extra/keys must be a list"),
}


@pytest.mark.parametrize("case", CASES, ids=list(CASES))
def test_damaged_shd_file(tmp_path, case):
    folder = make_shd(tmp_path / "shd")
    damage, phrase = CASES[case]
    with h5py.File(folder / "shd_test.h5", "r+") as f:
        damage(f)
    assert_clean_error(_train(folder, tmp_path), (folder / "shd_test.h5").resolve(), contains=phrase)


def test_missing_and_unreadable_files(tmp_path):
    folder = make_shd(tmp_path / "shd")
    (folder / "shd_test.h5").unlink()
    assert_clean_error(_train(folder, tmp_path), folder, contains="has no shd_test.h5")
    (folder / "shd_test.h5").write_bytes(b"\x89HDF\r\n\x1a\n" + b"\0" * 100)
    assert_clean_error(_train(folder, tmp_path), (folder / "shd_test.h5").resolve(), contains="not a readable HDF5")


def test_an_intact_folder_trains(tmp_path):
    folder = make_shd(tmp_path / "shd")
    result = _train(folder, tmp_path)
    assert result.exit_code == 0, result.output
