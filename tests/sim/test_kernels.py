"""The kernels' building blocks against plain numpy, on the sizes and densities where their fast paths differ
from a plain loop (blocks of 64 and 8 entries, tails, -0.0, NaN)."""

from __future__ import annotations

import nir
import numpy as np
import pytest

from neurostack.sim import kernels, lower, run
from neurostack.sim.lowering import ALIGN
from sim_helpers import lif


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n", [0, 1, 7, 8, 63, 64, 65, 130, 1000])
@pytest.mark.parametrize("density", [0.0, 0.01, 0.2, 1.0])
def test_list_nonzero_lists_every_non_zero_entry_in_order(dtype, n, density):
    rng = np.random.default_rng(n)
    x = np.where(rng.random(n) < density, rng.normal(size=n), 0.0).astype(dtype)
    if n > 3:
        x[1] = -0.0  # equal to zero: not listed
        x[2] = np.nan  # not equal to zero: listed
    ev = np.full(n, -1, np.int64)
    want = np.flatnonzero(x != 0)
    count = kernels.list_nonzero(x, n, dtype(0), ev, n)
    assert count == len(want)
    np.testing.assert_array_equal(ev[:count], want)
    if len(want) > 2:  # `most` stops the list early, keeping the first entries
        ev[:] = -1
        assert kernels.list_nonzero(x, n, dtype(0), ev, 2) == 2
        np.testing.assert_array_equal(ev[:2], want[:2])


def test_node_outputs_and_parameter_blocks_start_at_64_byte_boundaries():
    rng = np.random.default_rng(0)
    graph = nir.NIRGraph.from_list(nir.Affine(rng.normal(size=(37, 13)), np.zeros(37)), lif(37),
                                   nir.Affine(rng.normal(size=(5, 37)), np.zeros(5)), lif(5))
    plan = lower(graph, dt=1e-3)
    assert plan.fparams.ctypes.data % 64 == 0
    assert all(off % ALIGN == 0 for off in plan.out_off)
    affine = [k for k, t in enumerate(plan.node_names) if plan.node_types[t] == "Affine"]
    assert all(plan.fp_off[k] % ALIGN == 0 for k in affine)
    # the padding between outputs is invisible: the same spikes as a plan run sample by sample
    x = (rng.random((3, 20, 13)) < 0.3).astype(np.float32)
    together = run(plan, x)
    for s in range(3):
        np.testing.assert_array_equal(run(plan, x[s], parallel=False).output[0], together.output[s])
