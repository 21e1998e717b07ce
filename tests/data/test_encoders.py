import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from neurostack.data import ENCODERS, encode, encoded_shape
from neurostack.data.encoders import delta_encode, latency_encode, rate_encode
from neurostack.errors import NeurostackError

intensities = arrays(np.float32, st.tuples(st.integers(1, 12), st.integers(1, 6)),
                     elements=st.floats(0, 1, width=32))


def test_rate_mean_converges_to_intensity():
    levels = np.array([0.0, 0.05, 0.3, 0.5, 0.9, 1.0], dtype=np.float32)
    x = np.tile(levels, (20000, 1))
    spikes = rate_encode(x, np.random.default_rng(1))
    assert spikes.dtype == np.float32 and set(np.unique(spikes)) <= {0.0, 1.0}
    np.testing.assert_allclose(spikes.mean(axis=0), levels, atol=0.01)
    assert spikes[:, 0].sum() == 0 and spikes[:, -1].all()


def test_rate_steps_per_frame_and_determinism():
    x = np.random.default_rng(0).random((3, 10, 4)).astype(np.float32)
    a = rate_encode(x, 7, steps_per_frame=5)
    assert a.shape == (3, 50, 4)
    np.testing.assert_array_equal(a, rate_encode(x, np.random.default_rng(7), steps_per_frame=5))
    assert not np.array_equal(a, rate_encode(x, 8, steps_per_frame=5))


def test_latency_one_spike_per_window_above_threshold():
    rng = np.random.default_rng(0)
    x = rng.random((30, 16)).astype(np.float32)
    x[0, :4] = [0.0, 0.01, 0.005, 0.0101]
    s = latency_encode(x, steps_per_frame=8, threshold=0.01)
    assert s.shape == (240, 16) and s.dtype == np.float32
    per_window = s.reshape(30, 8, 16).sum(axis=1)
    np.testing.assert_array_equal(per_window, (x > 0.01).astype(np.float32))


def test_latency_stronger_input_fires_earlier():
    x = np.array([[1.0, 0.6, 0.3, 0.15, 0.05, 0.02]], dtype=np.float32)
    s = latency_encode(x, steps_per_frame=10)
    t = s.argmax(axis=0)
    assert s.sum() == 6
    assert np.all(np.diff(t) >= 0) and t[0] == 0 and t[0] < t[2] < t[-1]
    # monotone for random intensities too
    v = np.random.default_rng(3).uniform(0.02, 1, size=200).astype(np.float32)
    tv = latency_encode(v[None, :], steps_per_frame=8).argmax(axis=0)
    order = np.argsort(-v)
    assert np.all(np.diff(tv[order]) >= 0)


def test_delta_on_rising_off_falling_counts():
    up = np.linspace(0, 1, 51)
    x = np.concatenate([up, up[::-1][1:], np.zeros(5)])[:, None].astype(np.float32)
    s = delta_encode(x, threshold=0.1)
    assert s.shape == (x.shape[0], 2)
    on, off = s[:, 0], s[:, 1]
    assert on[:51].sum() == 10 and on[51:].sum() == 0
    assert off[:51].sum() == 0 and off[51:].sum() == 10
    # a step jump of 0.55 is spread over later frames: floor(0.55 / 0.1) ON spikes, none after
    step = np.concatenate([np.zeros(3), np.full(20, 0.55)])[:, None].astype(np.float32)
    d = delta_encode(step, threshold=0.1)
    assert d[:, 0].sum() == 5 and d[:3].sum() == 0 and d[:, 1].sum() == 0


@settings(max_examples=30, deadline=None)
@given(x=intensities, thr=st.floats(0.05, 0.5))
def test_delta_count_matches_total_variation(x, thr):
    s = delta_encode(x, threshold=thr)
    # enough time to catch up: append 1/thr frames of the last value
    tail = np.repeat(x[-1:], int(np.ceil(1 / thr)) + 1, axis=0)
    s = delta_encode(np.concatenate([x, tail]), threshold=thr)
    path = np.concatenate([np.zeros((1, x.shape[1]), np.float32), x])
    ups = np.clip(np.diff(path, axis=0), 0, None).sum(axis=0)
    downs = np.clip(-np.diff(path, axis=0), 0, None).sum(axis=0)
    on, off = s[:, : x.shape[1]].sum(axis=0), s[:, x.shape[1]:].sum(axis=0)
    net = on - off
    np.testing.assert_allclose(net * thr, x[-1], atol=thr + 1e-5)  # the reference tracks the signal
    assert np.all(on <= ups / thr + 1 + 1e-3) and np.all(off <= downs / thr + 1 + 1e-3)


@settings(max_examples=30, deadline=None)
@given(x=intensities)
def test_all_encoders_binary_and_shape(x):
    batched = np.stack([x, x[::-1]])
    for name in ENCODERS:
        params = {"steps_per_frame": 3} if name in ("rate", "latency") else {}
        out = encode(name, x, rng=0, **params)
        assert out.dtype == np.float32
        assert out.shape == encoded_shape(name, *x.shape, **params)
        out_b = encode(name, batched, rng=0, **params)
        assert out_b.shape == (2, *encoded_shape(name, *x.shape, **params))
        if name == "none":
            np.testing.assert_array_equal(out, x)
        else:
            assert set(np.unique(out)) <= {0.0, 1.0}
        if name in ("latency", "delta"):  # deterministic and per-sample
            np.testing.assert_array_equal(out_b[0], out)


def test_encode_errors():
    x = np.zeros((4, 3), np.float32)
    with pytest.raises(NeurostackError, match="unknown encoder"):
        encode("poisson", x)
    with pytest.raises(NeurostackError, match="bad parameters"):
        encode("delta", x, steps_per_frame=3)
    with pytest.raises(NeurostackError, match="shape"):
        encode("rate", np.zeros(5))
    assert encode("rate", x).shape == (4, 3)  # rng defaults to seed 0
    np.testing.assert_array_equal(encode("rate", x + 0.5), encode("rate", x + 0.5))
