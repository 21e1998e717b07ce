"""The packed compares (neurostack.sim.simd) and the kernels built on them against numpy, entry by entry: every
position of an 8-entry window, -0.0, NaN and infinities, float32 and float64."""

from __future__ import annotations

import numpy as np
import pytest
from numba import njit

from neurostack.sim import kernels
from neurostack.sim.simd import LANES, differ_bits8, nonfinite_bits8, nonzero_bits8, popcount

SPECIALS = [0.0, -0.0, 1.0, -2.5, np.nan, np.inf, -np.inf, 1e-45]


@njit
def _bits(x, y, start):
    return nonzero_bits8(x, start), differ_bits8(x, start, y, start + 1), nonfinite_bits8(x, start)


def _packed(tests: np.ndarray) -> int:
    return int(sum(1 << i for i, hit in enumerate(tests) if hit))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_packed_compares_set_the_bit_of_each_entry_as_numpy_decides(dtype):
    rng = np.random.default_rng(0)
    for _ in range(200):
        x = rng.choice(np.array(SPECIALS, dtype), 24)
        y = rng.choice(np.array(SPECIALS, dtype), 24)
        start = int(rng.integers(0, 16))
        nonzero, differ, nonfinite = _bits(x, y, start)
        window = x[start:start + LANES]
        with np.errstate(invalid="ignore"):
            assert nonzero == _packed(window != 0)
            assert differ == _packed(window != y[start + 1:start + 1 + LANES])
            assert nonfinite == _packed(~np.isfinite(window))


@njit
def _popcount(v):
    return popcount(v)


@pytest.mark.parametrize("value", [0, 1, 0xFF, 2**63, 2**64 - 1, 0x5555_5555_5555_5555])
def test_popcount_counts_set_bits(value):
    assert _popcount(np.uint64(value)) == bin(value).count("1")


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("m", [1, 7, 8, 9, 255, 256, 257, 700])
def test_unchanged_finds_a_difference_at_any_position(dtype, m):
    rng = np.random.default_rng(m)
    x = rng.normal(size=m).astype(dtype)
    last = np.concatenate([rng.normal(size=3), x]).astype(dtype)  # compared from offset 3
    assert kernels.unchanged(x, m, last, 3)
    for j in {0, m // 2, m - 1, min(m - 1, 8), min(m - 1, 256)}:
        for value in (x[j] + 1, np.nan, -x[j] if x[j] != 0 else 1.0):
            changed = x.copy()
            changed[j] = value
            assert not kernels.unchanged(changed, m, last, 3), (j, value)
    zeros = np.zeros(m, dtype)
    assert kernels.unchanged(-zeros, m, np.concatenate([np.zeros(3), zeros]).astype(dtype), 3)  # -0.0 == 0.0


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n", [1, 7, 8, 9, 64, 700])
def test_all_finite_finds_nan_and_infinity_at_any_position(dtype, n):
    x = np.linspace(-1e3, 1e3, n).astype(dtype)
    assert kernels.all_finite(x, n)
    for j in {0, n // 2, n - 1}:
        for bad in (np.nan, np.inf, -np.inf):
            y = x.copy()
            y[j] = bad
            assert not kernels.all_finite(y, n), (j, bad)
            assert kernels.all_finite(y, j)  # the entries before it are fine
