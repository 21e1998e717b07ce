"""Augmentations are pure, seeded, shape-preserving functions of (batch, rng) that do what they say."""

import numpy as np
import pytest

from neurostack.train import augment as A
from neurostack.train.augment import AugmentConfig, augment_batch
from neurostack.train.config import TrainConfig


def _batch(b=6, frames=20, bins=8, seed=0):
    return np.random.default_rng(seed).random((b, frames, bins)).astype(np.float32) * 0.9 + 0.05


FUNCS = [
    ("time_shift", lambda x, r: A.time_shift(x, r, 3)),
    ("time_stretch", lambda x, r: A.time_stretch(x, r, 0.2)),
    ("freq_shift", lambda x, r: A.freq_shift(x, r, 2.0)),
    ("tilt", lambda x, r: A.tilt(x, r, 0.3)),
    ("vtlp", lambda x, r: A.vtlp(x, r, 0.1)),
    ("time_mask", lambda x, r: A.time_mask(x, r, 2, 4)),
    ("freq_mask", lambda x, r: A.freq_mask(x, r, 2, 3)),
    ("noise", lambda x, r: A.add_noise(x, r, 0.1)),
]


@pytest.mark.parametrize("name,fn", FUNCS)
def test_each_augmentation_is_pure_seeded_and_keeps_shape_and_dtype(name, fn):
    x = _batch()
    before = x.copy()
    y1 = fn(x, np.random.default_rng(5))
    y2 = fn(x, np.random.default_rng(5))
    assert np.array_equal(x, before)  # the input is untouched
    assert y1.shape == x.shape and y1.dtype == x.dtype
    assert np.array_equal(y1, y2)  # same generator state, same result
    assert not np.array_equal(y1, x)  # and it did something
    assert np.all(y1 >= 0)


@pytest.mark.parametrize("fn", [lambda x, r: A.time_shift(x, r, 0), lambda x, r: A.time_stretch(x, r, 0.0),
                                lambda x, r: A.freq_shift(x, r, 0.0), lambda x, r: A.tilt(x, r, 0.0),
                                lambda x, r: A.vtlp(x, r, 0.0),
                                lambda x, r: A.time_mask(x, r, 0, 5),
                                lambda x, r: A.freq_mask(x, r, 3, 0), lambda x, r: A.add_noise(x, r, 0.0)])
def test_zero_strength_is_the_identity(fn):
    x = _batch()
    assert np.array_equal(fn(x, np.random.default_rng(0)), x)


def test_time_shift_is_the_loops_original_augmentation():
    from neurostack.train.loop import augment

    x = _batch()
    assert np.array_equal(augment(x, np.random.default_rng(3), 4), A.time_shift(x, np.random.default_rng(3), 4))


def test_stretch_by_one_is_the_identity_and_stretch_moves_energy():
    x = np.zeros((1, 21, 8), np.float32)
    x[0, 10] = 1.0  # the centre frame is a fixed point of the time stretch
    assert np.allclose(A._resample(x, np.arange(21)[None, :].astype(float), 1, False), x)
    y = A.time_stretch(x, np.random.default_rng(0), 0.3)
    assert np.allclose(y[0, 10], 1.0)
    z = np.zeros((1, 4, 10), np.float32)
    z[0, :, 6] = 1.0  # a formant at bin 6 moves with the frequency shift, by at most 2 bins
    moved = A.freq_shift(np.repeat(z, 50, 0), np.random.default_rng(1), 2.0)
    peaks = moved[:, 0].argmax(1)
    assert len(set(peaks.tolist())) > 1 and set(peaks.tolist()) <= {4, 5, 6, 7, 8}
    assert np.allclose(moved.sum(axis=2), 1.0, atol=1e-6)  # interpolation keeps the energy of an inner band


def _centroid(x):
    """Mean band index of each sample's first frame, weighted by its values."""
    return (x[:, 0] * np.arange(x.shape[2])).sum(1) / x[:, 0].sum(1)


def test_vtlp_warp_is_the_identity_at_factor_one_and_keeps_the_band_edges():
    f = np.linspace(20, 4000, 50)
    assert np.allclose(A.vtlp_source_hz(f, np.ones(1), 4000.0), f)
    for a in (0.9, 1.1):
        src = A.vtlp_source_hz(f, np.full(1, a), 4000.0)
        assert np.all(np.diff(src) > 0)  # monotonic, continuous at the cut-off
        assert np.isclose(src[-1], 4000.0)  # fmax maps onto fmax
        assert np.allclose(src[f < 2000], f[f < 2000] / a)  # below the cut-off: f -> a f


def test_vtlp_moves_energy_up_for_factors_above_one_and_down_below():
    x = np.zeros((200, 3, 40), np.float32)
    x[:, :, 12] = 1.0  # a formant at band 12 (about 800 Hz)
    rng = np.random.default_rng(0)
    alpha = np.random.default_rng(0).uniform(0.85, 1.15, size=200)  # what vtlp draws from the same generator
    y = A.vtlp(x, rng, 0.15)
    shift = _centroid(y) - 12
    assert np.all(np.sign(shift[np.abs(alpha - 1) > 0.02]) == np.sign(alpha - 1)[np.abs(alpha - 1) > 0.02])
    assert np.corrcoef(shift, alpha)[0, 1] > 0.99  # the move grows with the factor
    assert np.abs(shift).max() < 3  # a 15 % warp moves an 800 Hz formant by about two bands at most
    assert np.allclose(y[:, 0], y[:, 2])  # the same warp for every frame of a sample


def test_vtlp_in_augment_batch_and_off_by_default():
    x, y = _batch(b=8, bins=40), np.arange(8)
    assert AugmentConfig().vtlp == 0 and "vtlp" not in AugmentConfig().active()
    cfg = AugmentConfig.off()
    cfg.vtlp = 0.1
    assert cfg.active() == ["vtlp"]
    xa, *_ = augment_batch(x, y, cfg, np.random.default_rng(3))
    assert np.array_equal(xa, A.vtlp(x, np.random.default_rng(3), 0.1))


def test_masks_zero_spans_of_frames_and_bins():
    x = _batch(b=40)
    t = A.time_mask(x, np.random.default_rng(0), 1, 5)
    zero_frames = (t == 0).all(axis=2).sum(axis=1)
    assert zero_frames.max() <= 5 and zero_frames.max() > 0
    f = A.freq_mask(x, np.random.default_rng(0), 1, 3)
    zero_bins = (f == 0).all(axis=1).sum(axis=1)
    assert zero_bins.max() <= 3 and zero_bins.max() > 0


def test_mixup_blends_pairs_and_reports_the_weight():
    x, y = _batch(), np.arange(6)
    xm, ya, yb, lam = A.mixup(x, y, np.random.default_rng(2), 0.4)
    assert 0 <= lam <= 1 and np.array_equal(ya, y)
    perm = [int(np.flatnonzero(y == c)[0]) for c in yb]
    assert np.allclose(xm, lam * x + (1 - lam) * x[perm], atol=1e-6)


def test_cutmix_pastes_a_span_of_frames():
    x, y = _batch(b=8, frames=30), np.arange(8)
    xc, ya, yb, lam = A.cutmix(x, y, np.random.default_rng(4), 1.0)
    from_other = (xc != x).any(axis=2)  # frames that changed
    kept = 1 - from_other.sum(axis=1) / 30
    assert np.all(kept[ya != yb] >= lam - 1e-9)  # a changed frame is one of the pasted span
    assert 0 < lam <= 1 and np.array_equal(ya, y)


def test_augment_batch_off_is_identity_and_time_shift_only_matches_the_old_loop():
    x, y = _batch(), np.arange(6)
    xo, ya, yb, lam = augment_batch(x, y, AugmentConfig.off(), np.random.default_rng(0))
    assert np.array_equal(xo, x) and lam == 1.0 and np.array_equal(ya, yb)
    only_shift = AugmentConfig.off()
    only_shift.time_shift = 4
    xs, *_ = augment_batch(x, y, only_shift, np.random.default_rng(9))
    assert np.array_equal(xs, A.time_shift(x, np.random.default_rng(9), 4))


def test_augment_batch_mixes_only_when_asked():
    x, y = _batch(b=16), np.arange(16) % 4
    cfg = AugmentConfig.off()
    cfg.mixup, cfg.mix_prob = 0.4, 1.0
    _, ya, yb, lam = augment_batch(x, y, cfg, np.random.default_rng(0))
    assert lam < 1.0 and not np.array_equal(ya, yb)
    assert AugmentConfig().active()  # the defaults switch something on
    assert AugmentConfig.off().active() == []


def test_train_config_round_trips_augment_and_reads_old_configs():
    cfg = TrainConfig(patience=3)
    cfg.augment.mixup = 0.2
    back = TrainConfig.from_dict(cfg.to_dict())
    assert back.augment == cfg.augment and back.patience == 3
    old = cfg.to_dict()
    del old["augment"], old["patience"]
    old["time_shift"] = 2
    legacy = TrainConfig.from_dict(old)
    assert legacy.augment.active() == ["time_shift"] and legacy.augment.time_shift == 2 and legacy.patience == 0
