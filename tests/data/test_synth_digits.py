import numpy as np
import pytest

from neurostack.data import FeatureConfig, load_dataset
from neurostack.data import espeak
from neurostack.data import synth_digits as sd
from neurostack.errors import NeurostackError

VOICES = ["m1", "m3", "f2", "klatt", "croak", "f5", "john", "m7"]


def test_classes_and_voices():
    assert sd.CLASSES[:2] == ["en-0", "en-1"] and sd.CLASSES[10] == "de-0" and len(sd.CLASSES) == 20
    voices = sd.available_voices()
    assert {"m1", "m7", "f1", "f5", "klatt"} <= set(voices) and "fast" not in voices
    assert len(voices) >= 60


def test_voice_split_is_disjoint_and_proportioned():
    voices = sd.available_voices()
    split = sd.split_voices(voices, seed=0)
    train, val, test = (set(split[s]) for s in ("train", "val", "test"))
    assert not (train & val or train & test or val & test)
    assert train | val | test == set(voices)
    assert abs(len(test) - 0.15 * len(voices)) <= 1 and abs(len(val) - 0.15 * len(voices)) <= 1
    assert not (val | test) & sd.TRAIN_ONLY_VARIANTS
    assert sd.split_voices(voices, seed=0) == split and sd.split_voices(voices, seed=1) != split


def test_speak_depends_only_on_arguments():
    a, sr = espeak.speak("sieben", "de+m3", rate=160, pitch=40, seed=3)
    espeak.speak("zwei", "en+whisper", seed=9)  # eSpeak state from another utterance must not leak
    b, _ = espeak.speak("sieben", "de+m3", rate=160, pitch=40, seed=3)
    assert sr == 22050 and a.dtype == np.int16 and a.size > 0.2 * sr
    np.testing.assert_array_equal(a, b)
    c, _ = espeak.speak("sieben", "de+f2", rate=160, pitch=40, seed=3)
    assert not np.array_equal(a[: c.size], c[: a.size])
    with pytest.raises(NeurostackError, match="no voice"):
        espeak.speak("one", "xx+nobody")


def test_build_deterministic_speaker_disjoint_and_limit_independent():
    cfg = FeatureConfig()
    x, y, meta = sd.build(cfg, seed=0, voices=VOICES, repeats=1, progress=False)
    x2, y2, _ = sd.build(cfg, seed=0, voices=VOICES, repeats=1, progress=False)
    for s in ("train", "val", "test"):
        assert x[s].dtype == np.float32 and x[s].shape[1:] == (100, 40) and x[s].tobytes() == x2[s].tobytes()
        assert y[s].dtype == np.int64 and set(y[s]) <= set(range(20))
        assert 0 <= x[s].min() and x[s].max() <= 1
    assert len(y["test"]) == len(y["val"]) == 20 and len(y["train"]) == 120
    sp = meta["speakers"]
    assert not set(sp["train"]) & set(sp["test"]) and not set(sp["train"]) & set(sp["val"])
    assert not set(sp["val"]) & set(sp["test"])
    # a limited build gives the very same features for the utterances it keeps
    xs, ys, _ = sd.build(cfg, seed=0, voices=VOICES, repeats=1, limit=5, progress=False)
    assert xs["train"].shape[0] == 5
    rows = {r.tobytes() for r in x["train"]}
    assert all(r.tobytes() in rows for r in xs["train"])
    # another seed gives other utterances
    x3, _, _ = sd.build(cfg, seed=1, voices=VOICES, repeats=1, limit=5, progress=False)
    assert x3["test"].tobytes() != xs["test"].tobytes()


def test_load_dataset_small(tmp_path):
    ds = load_dataset("synth-digits", cache_dir=tmp_path, limit=6, progress=False)
    assert ds.name == "synth-digits" and ds.classes == sd.CLASSES and ds.input_kind == "features"
    assert {s: x.shape for s, x in ds.x.items()} == {s: (6, 100, 40) for s in ("train", "val", "test")}
    assert ds.files is None and ds.meta["n"] == {"train": 6, "val": 6, "test": 6}
    assert ds.meta["features"] == FeatureConfig().to_dict() and ds.meta["spec"] == "synth-digits"
    held_out = set(ds.meta["voices_split"]["val"]) | set(ds.meta["voices_split"]["test"])
    assert not held_out & set(ds.meta["voices_split"]["train"])
    with pytest.raises(NeurostackError, match="only the 'standard' split"):
        load_dataset("synth-digits", split="speaker:m1", cache_dir=tmp_path)
