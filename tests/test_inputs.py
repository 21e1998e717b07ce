"""The encoding path shared by training and simulation: the image view held (one row per sample) as the simulator
takes it, equal to the rows repeated; encoders that change from step to step are never held."""

from __future__ import annotations

import numpy as np

from neurostack.inputs import InputSpec, concatenate, encode_batch, encode_for_eval


def _features(n=5, frames=4, bins=3, seed=0):
    return np.random.default_rng(seed).random((n, frames, bins)).astype(np.float32)


def test_the_image_view_held_is_a_view_of_one_row_equal_to_the_repeated_rows():
    x = _features()
    spec = InputSpec("image", "none", steps=7)
    assert spec.held
    held = encode_batch(x, spec, None, (12,), held=True)
    full = encode_batch(x, spec, None, (12,))
    assert held.shape == full.shape == (5, 7, 12) and held.dtype == full.dtype == np.float32
    assert held.strides[1] == 0 and full.strides[1] != 0
    np.testing.assert_array_equal(held, full)


def test_encoders_that_change_over_time_are_never_held():
    x = _features()
    for spec in (InputSpec("image", "rate", steps=7), InputSpec("sequence", "none")):
        assert not spec.held
        got = encode_batch(x, spec, np.random.default_rng(1), (x.shape[2] if spec.view == "sequence" else 12,),
                           held=True)
        assert got.strides[1] != 0


def test_concatenating_held_batches_keeps_one_row_per_sample():
    x = _features(n=9)
    spec = InputSpec("image", "none", steps=6)
    held = [b for _, b in encode_for_eval(x, spec, 0, (12,), batch_size=4, held=True)]
    full = [b for _, b in encode_for_eval(x, spec, 0, (12,), batch_size=4)]
    joined = concatenate(held)
    assert joined.shape == (9, 6, 12) and joined.strides[1] == 0
    np.testing.assert_array_equal(joined, concatenate(full))
    assert concatenate(full).strides[1] != 0
