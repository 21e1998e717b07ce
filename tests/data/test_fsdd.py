import numpy as np
import pytest

from neurostack.data import load_dataset
from neurostack.data import fsdd
from neurostack.errors import NeurostackError


def load(folder, tmp_path, **kw):
    return load_dataset(f"fsdd:{folder}", cache_dir=tmp_path / "cache", progress=False, **kw)


def index_of(path: str) -> int:
    return int(path.rsplit("_", 1)[1].split(".")[0])


def test_standard_split(fsdd_tiny, tmp_path):
    ds = load(fsdd_tiny, tmp_path)
    assert ds.name == "fsdd" and ds.classes == [str(d) for d in range(10)] and ds.input_kind == "features"
    assert {s: len(ds.y[s]) for s in ds.y} == {"train": 18, "val": 45, "test": 45}
    assert all(index_of(p) < 5 for p in ds.files["test"])
    assert all(5 <= index_of(p) < 10 for p in ds.files["val"])
    assert all(index_of(p) >= 10 for p in ds.files["train"])
    for s in ds.x:
        assert ds.x[s].shape == (len(ds.y[s]), 100, 40) and ds.x[s].dtype == np.float32
        assert ds.y[s].dtype == np.int64
        assert 0 <= ds.x[s].min() and ds.x[s].max() <= 1
        labels = [int(p.rsplit("/", 1)[1][0]) for p in ds.files[s]]
        np.testing.assert_array_equal(ds.y[s], labels)
    assert ds.meta["n"] == {"train": 18, "val": 45, "test": 45}
    assert ds.meta["speakers"]["test"] == ["alice", "bob", "carol"]


def test_speaker_split(fsdd_tiny, tmp_path):
    ds = load(fsdd_tiny, tmp_path, split="speaker:bob")
    assert ds.meta["speakers"]["test"] == ["bob"] and len(ds.y["test"]) == 36
    assert "bob" not in ds.meta["speakers"]["train"] + ds.meta["speakers"]["val"]
    assert len(ds.y["val"]) == 7 and len(ds.y["train"]) == 65  # 10 % of the other 72
    assert not set(ds.files["val"]) & set(ds.files["train"])
    two = load(fsdd_tiny, tmp_path, split="speaker:alice,carol")
    assert two.meta["speakers"]["test"] == ["alice", "carol"] and two.meta["speakers"]["train"] == ["bob"]
    with pytest.raises(NeurostackError, match="unknown speaker.*dave.*known speakers: alice, bob, carol"):
        load(fsdd_tiny, tmp_path, split="speaker:dave")


def test_all_split_and_limit(fsdd_tiny, tmp_path):
    ds = load(fsdd_tiny, tmp_path, split="all")
    assert len(ds.y["test"]) == 108 and len(ds.y["train"]) == len(ds.y["val"]) == 0
    assert ds.x["train"].shape == (0, 100, 40)
    small = load(fsdd_tiny, tmp_path, limit=4)
    assert {s: len(v) for s, v in small.y.items()} == {"train": 4, "val": 4, "test": 4}
    with pytest.raises(NeurostackError, match="unknown FSDD split"):
        load(fsdd_tiny, tmp_path, split="random")


def test_folder_errors(tmp_path):
    with pytest.raises(NeurostackError, match="does not exist"):
        load(tmp_path / "nope", tmp_path)
    (tmp_path / "empty").mkdir()
    with pytest.raises(NeurostackError, match="no recordings"):
        load(tmp_path / "empty", tmp_path)
    other = tmp_path / "other"
    other.mkdir()
    (other / "song.wav").write_bytes(b"RIFF")
    with pytest.raises(NeurostackError, match="no recordings"):
        load(other, tmp_path)


def test_not_audio_file_is_named(fsdd_tiny, tmp_path):
    (fsdd_tiny / "1_bob_3.wav").write_text("garbage, not a wav")
    with pytest.raises(NeurostackError, match="1_bob_3.wav"):
        load(fsdd_tiny, tmp_path)


def test_real_fsdd(fsdd_real, tmp_path):
    recs = fsdd.scan(fsdd_real)
    assert len(recs) >= 2500
    parts = fsdd.split_recordings(recs, "standard")
    speakers = {r.speaker for r in recs}
    assert len(parts["test"]) == 50 * len(speakers)  # 10 digits x indices 0-4
    assert all(r.index < 5 for r in parts["test"]) and all(r.index >= 10 for r in parts["train"])
    ds = load(fsdd_real, tmp_path, limit=12)
    assert ds.x["test"].shape == (12, 100, 40)
    assert all(index_of(p) < 5 for p in ds.files["test"])
    assert 0 <= ds.x["test"].min() and ds.x["test"].max() == pytest.approx(1.0)
