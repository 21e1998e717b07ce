"""Audio files in an FSDD folder: odd but valid recordings load; files that hold no audio are errors naming them.

Documented behaviour (neurostack.data.audio.read_wav): stereo and multichannel files are mixed down to mono, any
sample rate is resampled to the feature rate, silent audio gives all-zero features and clipped audio is read as
it is. A file named like a recording that is not audio, is empty, has no samples or holds NaN is an error naming
the file (exit code 2 from `neurostack train`), not skipped: a data set silently missing recordings is worse.
"""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

from neurostack.data import FeatureConfig, load_dataset
from neurostack.data.audio import read_wav
from neurostack.data.features import file_features
from reliability_helpers import assert_clean_error, fsdd_folder, invoke, tone

ODD_BUT_VALID = {
    "silent": lambda p: sf.write(p, np.zeros(3200, np.float32), 8000),
    "clipped": lambda p: sf.write(p, np.clip(tone(amp=5.0), -1, 1), 8000),
    "clipped float beyond 1": lambda p: sf.write(p, tone(amp=50.0), 8000, subtype="FLOAT"),
    "stereo": lambda p: sf.write(p, np.stack([tone(), tone(freq=660)], axis=1), 8000),
    "six channels": lambda p: sf.write(p, np.stack([tone()] * 6, axis=1), 8000),
    "44.1 kHz": lambda p: sf.write(p, tone(sr=44100), 44100),
    "1 kHz": lambda p: sf.write(p, tone(sr=1000, freq=200), 1000),
    "one sample": lambda p: sf.write(p, np.full(1, 0.5, np.float32), 8000),
    "30 seconds": lambda p: sf.write(p, tone(seconds=30), 8000),
    "8-bit": lambda p: sf.write(p, tone(), 8000, subtype="PCM_U8"),
    "FLAC named .wav": lambda p: sf.write(p, tone(), 8000, format="FLAC"),
    "DC offset": lambda p: sf.write(p, np.full(3200, 0.5, np.float32), 8000),
}

NOT_AUDIO = {
    "not audio": (lambda p: p.write_text("hello, I am text"), "not a readable audio file (Format not recognised"),
    "empty": (lambda p: p.write_bytes(b""), "file is empty (0 bytes)"),
    "zero length": (lambda p: sf.write(p, np.zeros(0, np.float32), 8000), "audio file has no samples"),
    "header only": (lambda p: (sf.write(p, tone(), 8000), p.write_bytes(p.read_bytes()[:44])),
                    "audio file has no samples"),
    "truncated header": (lambda p: (sf.write(p, tone(), 8000), p.write_bytes(p.read_bytes()[:30])),
                         "not a readable audio file"),
    "NaN samples": (lambda p: sf.write(p, np.full(800, np.nan, np.float32), 8000, subtype="FLOAT"),
                    "NaN or infinite"),
}


@pytest.mark.parametrize("case", ODD_BUT_VALID, ids=list(ODD_BUT_VALID))
def test_odd_but_valid_audio_loads(tmp_path, case):
    path = tmp_path / "1_ann_12.wav"
    ODD_BUT_VALID[case](path)
    wave, sr = read_wav(path)
    assert wave.ndim == 1 and wave.dtype == np.float32 and wave.size > 0 and np.all(np.isfinite(wave))
    feats = file_features(path, FeatureConfig())
    assert feats.shape == (100, 40) and feats.dtype == np.float32
    assert np.all((0 <= feats) & (feats <= 1))
    if case == "silent":
        assert not feats.any()


def test_stereo_is_the_mean_of_its_channels_and_rates_are_resampled(tmp_path):
    left, right = tone(), tone(freq=660)
    sf.write(tmp_path / "stereo.wav", np.stack([left, right], axis=1), 8000, subtype="FLOAT")
    wave, sr = read_wav(tmp_path / "stereo.wav")
    np.testing.assert_allclose(wave, (left + right) / 2, atol=1e-6)
    sf.write(tmp_path / "a8k.wav", tone(), 8000, subtype="FLOAT")
    sf.write(tmp_path / "a16k.wav", tone(sr=16000), 16000, subtype="FLOAT")
    f8 = file_features(tmp_path / "a8k.wav", FeatureConfig())
    f16 = file_features(tmp_path / "a16k.wav", FeatureConfig())
    assert np.abs(f8 - f16).mean() < 0.05  # the same tone, resampled to 8 kHz, gives about the same features


def test_a_folder_of_odd_recordings_trains(tmp_path):
    folder = fsdd_folder(tmp_path / "fsdd")
    for i, case in enumerate(ODD_BUT_VALID):
        ODD_BUT_VALID[case](folder / f"{i % 2}_odd_{12 + i}.wav")
    ds = load_dataset(f"fsdd:{folder}", cache_dir=tmp_path / "cache", progress=False)
    assert len(ds.y["train"]) == 4 + len(ODD_BUT_VALID) and np.all(np.isfinite(ds.x["train"]))
    result = invoke("train", "--data", f"fsdd:{folder}", "--epochs", "1", "--hidden", "8", "--steps", "2",
                    "--out", tmp_path / "run", "--cache-dir", tmp_path / "cache", "--device", "cpu")
    assert result.exit_code == 0, result.output


@pytest.mark.parametrize("case", NOT_AUDIO, ids=list(NOT_AUDIO))
def test_a_file_without_audio_is_an_error_naming_it(tmp_path, case):
    folder = fsdd_folder(tmp_path / "fsdd")
    bad = folder / "1_ann_7.wav"
    damage, phrase = NOT_AUDIO[case]
    damage(bad)
    result = invoke("train", "--data", f"fsdd:{folder}", "--epochs", "1", "--hidden", "8",
                    "--out", tmp_path / "run", "--cache-dir", tmp_path / "cache", "--device", "cpu")
    line = assert_clean_error(result, bad.resolve(), contains=phrase)
    assert line.count(str(bad.resolve())) == 1  # the path once, not repeated by libsndfile's message
    assert not (tmp_path / "run" / "checkpoints").exists()


def test_a_file_too_long_for_memory_is_refused_before_reading(tmp_path, monkeypatch):
    from neurostack import memory
    from neurostack.errors import NeurostackError

    path = tmp_path / "long.wav"
    sf.write(path, tone(seconds=10), 8000)
    monkeypatch.setenv(memory.ENV_LIMIT, "100K")
    with pytest.raises(NeurostackError, match=r"long\.wav: reading its 80000 frames would need about"):
        read_wav(path)
