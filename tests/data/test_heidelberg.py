import h5py
import numpy as np
import pytest

from neurostack.data import FeatureConfig, load_dataset
from neurostack.data import heidelberg
from neurostack.errors import NeurostackError
from shd_layout import write_h5

CFG = FeatureConfig(n_bins=70, hop_s=0.01, duration_s=0.2)


KNOWN = ([0.0, 0.0051, 0.0099, 0.015, 0.015, 0.195, 0.25], [0, 9, 5, 15, 699, 10, 3])


def make_shd(folder, n_train=20, n_test=5):
    folder.mkdir(exist_ok=True)
    rng = np.random.default_rng(0)
    rand = lambda: (np.sort(rng.uniform(0, 0.3, 50)), rng.integers(0, 700, 50))
    keys = [f"digit-{i}" for i in range(20)]
    write_h5(folder / "shd_train.h5", [KNOWN] + [rand() for _ in range(n_train - 1)],
             [3] + list(rng.integers(0, 20, n_train - 1)), keys)
    write_h5(folder / "shd_test.h5", [rand() for _ in range(n_test)], rng.integers(0, 20, n_test), keys)
    return folder


def test_to_frames_counts():
    frames = heidelberg.to_frames(heidelberg.make_events(*KNOWN), CFG)
    assert frames.shape == (20, 70) and frames.dtype == np.float32
    expected = np.zeros((20, 70), np.float32)
    expected[0, 0] = 3  # units 0, 9, 5 -> channel 0, all before 10 ms
    expected[1, 1] = 1  # unit 15 at 15 ms
    expected[1, 69] = 1  # unit 699
    expected[19, 1] = 1  # unit 10 at 195 ms; the spike at 250 ms is past duration_s and dropped
    np.testing.assert_array_equal(frames, expected)
    clipped = heidelberg.to_frames(heidelberg.make_events(*KNOWN), FeatureConfig(**{**CFG.to_dict(), "clip_counts": True}))
    assert clipped.max() == 1 and clipped.sum() == 4
    full = heidelberg.to_frames(heidelberg.make_events(*KNOWN), FeatureConfig(n_bins=700, hop_s=0.005, duration_s=0.3))
    assert full.shape == (60, 700) and full.sum() == 7 and full[1, 9] == 1 and full[3, 15] == 1


def test_shd_round_trip(tmp_path):
    folder = make_shd(tmp_path / "shd")
    ds = load_dataset(f"shd:{folder}", features=CFG, cache_dir=tmp_path / "cache", progress=False)
    assert ds.input_kind == "spikes" and ds.classes == [f"digit-{i}" for i in range(20)]
    assert {s: len(v) for s, v in ds.y.items()} == {"train": 18, "val": 2, "test": 5}
    for s in ds.x:
        assert ds.x[s].shape[1:] == (20, 70) and ds.x[s].dtype == np.float32 and ds.y[s].dtype == np.int64
    # every spike before 0.2 s lands in some frame of some split
    with h5py.File(folder / "shd_test.h5") as f:
        n_in = sum(int((np.asarray(t) < 0.2).sum()) for t in f["spikes/times"][()])
    assert ds.x["test"].sum() == n_in
    train_known = [x for x, y in zip(np.concatenate([ds.x["train"], ds.x["val"]]),
                                     np.concatenate([ds.y["train"], ds.y["val"]]))
                   if np.array_equal(x, heidelberg.to_frames(heidelberg.make_events(*KNOWN), CFG))]
    assert len(train_known) == 1
    default = load_dataset(f"shd:{folder}", cache_dir=tmp_path / "cache", progress=False, split="all")
    assert default.x["test"].shape == (25, 100, 70) and len(default.y["train"]) == 0


def test_ssc_uses_valid_file_and_numeric_classes(tmp_path):
    folder = tmp_path / "ssc"
    folder.mkdir()
    for name, n in (("ssc_train.h5", 6), ("ssc_valid.h5", 3), ("ssc_test.h5", 4)):
        write_h5(folder / name, [([0.01 * i], [i]) for i in range(n)], np.arange(n) % 35)
    ds = load_dataset(f"ssc:{folder}", features=CFG, cache_dir=tmp_path / "cache", progress=False)
    assert {s: len(v) for s, v in ds.y.items()} == {"train": 6, "val": 3, "test": 4}
    assert ds.classes == [str(i) for i in range(35)]  # no extra/keys: SSC's 35 classes by number
    assert ds.x["val"].sum() == 3


@pytest.mark.parametrize("key", ["spikes/times", "spikes/units", "labels"])
def test_missing_key_names_file_and_key(tmp_path, key):
    folder = make_shd(tmp_path / "shd")
    write_h5(folder / "shd_test.h5", [KNOWN], [1], drop=key)
    with pytest.raises(NeurostackError, match=f"shd_test.h5.*{key}"):
        load_dataset(f"shd:{folder}", features=CFG, cache_dir=tmp_path / "cache", progress=False)


def test_folder_and_file_errors(tmp_path):
    with pytest.raises(NeurostackError, match="does not exist"):
        load_dataset(f"shd:{tmp_path / 'nothing'}", cache_dir=tmp_path)
    folder = make_shd(tmp_path / "shd")
    (folder / "shd_test.h5").unlink()
    with pytest.raises(NeurostackError, match="no shd_test.h5"):
        load_dataset(f"shd:{folder}", cache_dir=tmp_path)
    (folder / "shd_test.h5").write_text("not hdf5")
    with pytest.raises(NeurostackError, match="shd_test.h5.*not a readable HDF5"):
        load_dataset(f"shd:{folder}", cache_dir=tmp_path)
    with pytest.raises(NeurostackError, match="unknown SHD split"):
        load_dataset(f"shd:{folder}", split="speaker:1", cache_dir=tmp_path)
