import numpy as np
import pytest
import soundfile as sf

from neurostack.data import FeatureConfig, audio_features, file_features
from neurostack.data.audio import read_wav
from neurostack.errors import NeurostackError

SR = 8000


def tone(seconds: float, freq: float = 500.0, sr: int = SR, amp: float = 0.5) -> np.ndarray:
    t = np.arange(int(seconds * sr)) / sr
    return (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def test_config_frames_and_round_trip():
    cfg = FeatureConfig()
    assert cfg.n_frames == 100 and cfg.hop_length == 80 and cfg.n_samples == 8000
    assert FeatureConfig(hop_s=0.016, duration_s=0.8).n_frames == 50
    other = FeatureConfig(kind="mfcc", n_bins=13, duration_s=0.5)
    assert FeatureConfig.from_dict(other.to_dict()) == other
    with pytest.raises(NeurostackError, match="unknown keys"):
        FeatureConfig.from_dict({**cfg.to_dict(), "colour": 1})
    with pytest.raises(NeurostackError, match="kind"):
        FeatureConfig(kind="cqt")
    with pytest.raises(NeurostackError, match="fmax"):
        FeatureConfig(fmax=6000.0)


@pytest.mark.parametrize("seconds", [0.05, 0.3, 1.0, 2.7])
@pytest.mark.parametrize("kind,n_bins", [("mel", 40), ("mfcc", 13)])
def test_shape_range_dtype(seconds, kind, n_bins):
    rng = np.random.default_rng(0)
    wave = tone(seconds) + rng.normal(0, 0.05, int(seconds * SR)).astype(np.float32)
    f = audio_features(wave, SR, FeatureConfig(kind=kind, n_bins=n_bins))
    assert f.shape == (100, n_bins) and f.dtype == np.float32
    assert f.min() >= 0.0 and f.max() <= 1.0 and f.max() > 0.5


def test_resampled_and_durations():
    cfg = FeatureConfig(duration_s=0.5, hop_s=0.02)
    f16 = audio_features(tone(0.4, sr=16000), 16000, cfg)
    f8 = audio_features(tone(0.4), SR, cfg)
    assert f16.shape == f8.shape == (25, 40)
    assert np.abs(f16 - f8).mean() < 0.01 and np.abs(f16 - f8).max() < 0.1  # onset edge near Nyquist differs


def test_per_utterance_normalisation():
    rng = np.random.default_rng(1)
    wave = tone(0.6) + rng.normal(0, 0.02, int(0.6 * SR)).astype(np.float32)
    cfg = FeatureConfig()
    np.testing.assert_allclose(audio_features(wave, SR, cfg), audio_features(wave * 0.01, SR, cfg), atol=1e-3)
    m = FeatureConfig(kind="mfcc", n_bins=20)
    np.testing.assert_allclose(audio_features(wave, SR, m), audio_features(wave * 0.01, SR, m), atol=1e-3)


def test_silence_gives_zeros_and_short_clip_is_centred():
    cfg = FeatureConfig()
    assert not audio_features(np.zeros(4000, np.float32), SR, cfg).any()
    f = audio_features(tone(0.2), SR, cfg)  # padded with silence on both sides
    active = np.flatnonzero(f.max(axis=1) > 0.3)
    assert 35 <= active.min() and active.max() <= 65


def test_long_clip_crop_centred_on_energy():
    wave = np.zeros(3 * SR, np.float32)
    wave[int(2.2 * SR) : int(2.5 * SR)] = tone(0.3)
    f = audio_features(wave, SR, FeatureConfig())
    active = np.flatnonzero(f.max(axis=1) > 0.3)
    assert active.size > 20 and 25 <= active.mean() <= 75


def test_read_wav_stereo_and_errors(tmp_path):
    stereo = np.stack([tone(0.1), -tone(0.1) * 0.5], axis=1)
    sf.write(tmp_path / "st.wav", stereo, SR)
    wave, sr = read_wav(tmp_path / "st.wav")
    assert sr == SR and wave.dtype == np.float32 and wave.ndim == 1
    np.testing.assert_allclose(wave, stereo.mean(axis=1), atol=1e-4)

    with pytest.raises(NeurostackError, match="missing.wav"):
        read_wav(tmp_path / "missing.wav")
    (tmp_path / "empty.wav").write_bytes(b"")
    with pytest.raises(NeurostackError, match="empty.wav.*empty"):
        read_wav(tmp_path / "empty.wav")
    (tmp_path / "text.wav").write_text("hello, I am not audio")
    with pytest.raises(NeurostackError, match="text.wav.*not a readable audio"):
        file_features(tmp_path / "text.wav", FeatureConfig())
    sf.write(tmp_path / "zero.wav", np.zeros(0, np.float32), SR)
    with pytest.raises(NeurostackError, match="zero.wav.*no samples"):
        read_wav(tmp_path / "zero.wav")
    bad = tone(0.1)
    bad[10] = np.nan
    sf.write(tmp_path / "nan.wav", bad, SR, subtype="FLOAT")
    with pytest.raises(NeurostackError, match="nan.wav.*NaN"):
        read_wav(tmp_path / "nan.wav")


def test_remove_floor_takes_background_noise_out_of_the_input():
    sr = 8000
    rng = np.random.default_rng(0)
    t = np.arange(sr) / sr
    wave = 0.05 * rng.standard_normal(sr)  # noise across the whole clip (10-30 dB SNR, as synth-digits adds)
    wave[2000:5000] += 0.5 * np.sin(2 * np.pi * 700 * t[2000:5000])
    plain = audio_features(wave, sr, FeatureConfig(remove_floor=False))
    floored = audio_features(wave, sr, FeatureConfig(remove_floor=True))
    assert np.median(plain) > 0.3  # without it, noise is a large constant input
    assert np.median(floored) < 1e-3
    assert floored.max() == pytest.approx(1.0)  # the tone keeps the top of the range
