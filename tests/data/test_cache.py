import numpy as np
import pytest

from neurostack.data import FeatureConfig, load_dataset
from neurostack.data import cache, fsdd
from neurostack.errors import NeurostackError


def record():
    x = {s: np.random.default_rng(i).random((3, 5, 2)).astype(np.float32) for i, s in enumerate(("train", "val", "test"))}
    return {"x": x, "y": {s: np.arange(3, dtype=np.int64) for s in x}, "meta": {"a": (1, 2)}, "files": None}


def test_second_call_hits_and_corrupt_entry_is_rebuilt(tmp_path):
    calls = []

    def build():
        calls.append(1)
        return record()

    parts = {"dataset": "unit", "seed": 0}
    first, hit = cache.cached(parts, build, tmp_path)
    assert not hit and len(calls) == 1 and first["meta"] == {"a": [1, 2]}
    second, hit = cache.cached(parts, build, tmp_path)
    assert hit and len(calls) == 1
    for s in first["x"]:
        np.testing.assert_array_equal(first["x"][s], second["x"][s])
    path = cache.entry_path(cache.cache_key(parts), tmp_path)
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no temporary files left
    data = bytearray(path.read_bytes())
    data[len(data) // 3 : len(data) // 3 + 16] = b"\xff" * 16  # flip bytes inside an array
    path.write_bytes(bytes(data))
    _, hit = cache.cached(parts, build, tmp_path)
    assert not hit and len(calls) == 2
    path.write_bytes(path.read_bytes()[:100])  # truncated
    _, hit = cache.cached(parts, build, tmp_path)
    assert not hit and len(calls) == 3
    _, hit = cache.cached(parts, build, tmp_path)
    assert hit and len(calls) == 3


def test_cache_dir_resolution(tmp_path, monkeypatch):
    monkeypatch.setenv("NEUROSTACK_CACHE", str(tmp_path / "env"))
    assert cache.cache_root() == tmp_path / "env"
    assert cache.cache_root(tmp_path / "explicit") == tmp_path / "explicit"
    monkeypatch.delenv("NEUROSTACK_CACHE")
    assert "neurostack" in str(cache.cache_root())


def test_key_depends_on_inputs():
    base = {"dataset": "fsdd", "features": FeatureConfig().to_dict(), "seed": 0}
    keys = {cache.cache_key(base), cache.cache_key({**base, "seed": 1}),
            cache.cache_key({**base, "features": FeatureConfig(n_bins=20).to_dict()})}
    assert len(keys) == 3 and cache.cache_key(dict(reversed(base.items()))) in keys


def test_load_dataset_uses_cache_and_sees_file_changes(fsdd_tiny, tmp_path, monkeypatch):
    spec = f"fsdd:{fsdd_tiny}"
    first = load_dataset(spec, cache_dir=tmp_path / "c", progress=False)

    def boom(*a, **k):
        raise AssertionError("featurised again")

    monkeypatch.setattr(fsdd, "featurize", boom)
    again = load_dataset(spec, cache_dir=tmp_path / "c", progress=False)
    assert again.files == first.files and again.meta == first.meta and again.classes == first.classes
    np.testing.assert_array_equal(again.x["test"], first.x["test"])
    (fsdd_tiny / "2_alice_0.wav").write_bytes((fsdd_tiny / "1_alice_0.wav").read_bytes())  # content changed
    with pytest.raises(AssertionError, match="featurised again"):
        load_dataset(spec, cache_dir=tmp_path / "c", progress=False)
    with pytest.raises(AssertionError, match="featurised again"):
        load_dataset(spec, cache_dir=tmp_path / "c", progress=False, features=FeatureConfig(kind="mfcc"))


def test_unknown_spec_lists_valid_forms(tmp_path):
    with pytest.raises(NeurostackError, match="synth-digits, fsdd:PATH, shd:PATH, ssc:PATH"):
        load_dataset("mnist", cache_dir=tmp_path)
    with pytest.raises(NeurostackError, match="unknown dataset"):
        load_dataset("fsdd:", cache_dir=tmp_path)
    with pytest.raises(NeurostackError, match="limit"):
        load_dataset("synth-digits", cache_dir=tmp_path, limit=-1)
