"""The kernels' building blocks against plain numpy, on the sizes and densities where their fast paths differ
from a plain loop (blocks of 64 and 8 entries, one pass when dense, tails, -0.0, NaN), and the time blocks of the
run loop against one step at a time."""

from __future__ import annotations

import nir
import numpy as np
import pytest

from neurostack.errors import NeurostackError
from neurostack.sim import kernels, lower, run
from neurostack.sim.lowering import ALIGN
from sim_helpers import lif


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n", [0, 1, 7, 8, 63, 64, 65, 130, 1000])
@pytest.mark.parametrize("density", [0.0, 0.01, 0.1, 0.2, 1.0])
def test_list_nonzero_lists_every_non_zero_entry_in_order(dtype, n, density):
    rng = np.random.default_rng(n)
    x = np.where(rng.random(n) < density, rng.normal(size=n), 0.0).astype(dtype)
    if n > 3:
        x[1] = -0.0  # equal to zero: not listed
        x[2] = np.nan  # not equal to zero: listed
    ev = np.full(n, -1, np.int64)
    want = np.flatnonzero(x != 0)
    count = kernels.count_nonzero(x, n, dtype(0))
    assert count == len(want)
    assert kernels.list_nonzero(x, n, dtype(0), ev, count) == count
    np.testing.assert_array_equal(ev[:count], want)


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


def _block_graph(rng) -> nir.NIRGraph:
    """Every stateless and stateful kind a time block meets: an Affine on the input (listed when sparse, read in
    place when dense), LIF, an Affine on spikes, a second path from the input summed in, Delay, Scale, Threshold,
    a conv branch with pooling and flatten, and an LI readout."""
    nodes = {
        "input": nir.Input(input_type={"input": np.array([1, 4, 4])}),
        "flat_in": nir.Flatten(input_type={"input": np.array([1, 4, 4])}, start_dim=0, end_dim=-1),
        "fc1": nir.Affine(rng.normal(0, 1, (24, 16)), rng.normal(0, 0.1, 24)),
        "lif1": lif(24, tau=0.005, th=0.8),
        "fc2": nir.Affine(rng.normal(0, 1, (6, 24)), np.zeros(6)),
        "skip": nir.Linear(rng.normal(0, 1, (6, 16))),
        "delay": nir.Delay(np.array([0.0, 1e-3, 2e-3, 3e-3, 1e-3, 0.0])),
        "scale": nir.Scale(np.array([1.0, 2.0, 0.5, 1.0, 1.5, 1.0])),
        "th": nir.Threshold(np.full(6, 0.3)),
        "conv": nir.Conv2d(None, rng.normal(0, 1, (2, 1, 3, 3)), 1, 1, 1, 1, np.zeros(2)),
        "lif_c": nir.LIF(tau=np.full((2, 4, 4), 0.01), r=np.ones((2, 4, 4)), v_leak=np.zeros((2, 4, 4)),
                         v_threshold=np.full((2, 4, 4), 0.5), v_reset=np.zeros((2, 4, 4))),
        "pool": nir.SumPool2d(kernel_size=np.array([2, 2]), stride=np.array([2, 2]), padding=np.array([0, 0])),
        "flat_c": nir.Flatten(input_type={"input": None}, start_dim=0, end_dim=-1),
        "fc_c": nir.Affine(rng.normal(0, 1, (6, 8)), np.zeros(6)),
        "li": nir.LI(tau=np.full(6, 0.01), r=np.ones(6), v_leak=np.zeros(6)),
        "output": nir.Output(output_type={"output": np.array([6])}),
    }
    edges = [("input", "flat_in"), ("flat_in", "fc1"), ("fc1", "lif1"), ("lif1", "fc2"), ("flat_in", "skip"),
             ("fc2", "delay"), ("skip", "delay"), ("delay", "scale"), ("scale", "th"), ("th", "li"),
             ("input", "conv"), ("conv", "lif_c"), ("lif_c", "pool"), ("pool", "flat_c"), ("flat_c", "fc_c"),
             ("fc_c", "li"), ("li", "output")]
    return nir.NIRGraph(nodes=nodes, edges=edges, type_check=False)


@pytest.mark.parametrize("precision", ["float32", "float64"])
def test_time_blocks_give_the_results_of_one_step_at_a_time(monkeypatch, precision):
    """Nodes run several steps in a row (node-major time blocks); outputs, voltages and every count must be those of
    one step at a time, across block boundaries and a short last block, for a static input held for several steps,
    spikes, silence and a spike pattern repeated from one step to the next (the unchanged-input skips)."""
    import neurostack.sim.plan as plan_module

    rng = np.random.default_rng(7)
    graph = _block_graph(rng)
    steps = 23
    x = np.zeros((3, steps, 1, 4, 4))
    x[:, :6] = rng.random((3, 1, 1, 4, 4))  # dense features held for 6 steps
    x[:, 6:14] = rng.random((3, 8, 1, 4, 4)) < 0.2  # sparse spikes
    x[:, 16:19] = (rng.random((3, 1, 1, 4, 4)) < 0.3).astype(float)  # one spike pattern repeated, after silence
    plan = lower(graph, dt=1e-3, precision=precision)
    results = {}
    for most in (1, 4, 64):
        monkeypatch.setattr(plan_module, "MAX_BLOCK_STEPS", most)
        results[most] = run(plan, x, record_voltages=True, count_per_step=True)
    per_step = plan.buffer_len * (plan.dtype.itemsize + 8)
    assert plan.block_steps(steps) == min(steps, plan_module.BLOCK_BYTES // per_step)
    one = results[1]
    assert one.spike_counts["lif1"] > 0 and one.spike_counts["th"] > 0 and one.spike_counts["lif_c"] > 0
    for most in (4, 64):
        other = results[most]
        for name in one.outputs:
            np.testing.assert_array_equal(other.outputs[name], one.outputs[name], err_msg=f"{name}, block {most}")
        for name in one.voltages:
            np.testing.assert_array_equal(other.voltages[name], one.voltages[name], err_msg=f"{name}, block {most}")
        for what in ("sops", "macs", "events", "spikes", "driven"):
            np.testing.assert_array_equal(getattr(other.counts, what), getattr(one.counts, what), err_msg=what)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n_in", [1, 2, 3, 4, 5, 7, 8, 13])
def test_affine_adds_columns_in_input_order_bit_for_bit(dtype, n_in):
    """Four columns per pass (and the 0-3 left over) give the bits of adding one column at a time, in input order,
    whether the non-zero inputs are found by scanning (affine) or given as a list (affine_events)."""
    rng = np.random.default_rng(n_in)
    n_out = 11
    weight = rng.normal(size=(n_out, n_in)).astype(dtype)
    bias = rng.normal(size=n_out).astype(dtype)
    x = np.where(rng.random(n_in) < 0.7, rng.normal(size=n_in), 0.0).astype(dtype)
    fp = np.concatenate([bias, weight.T.ravel()]).astype(dtype)
    want = bias.copy()
    for j in np.flatnonzero(x):
        want = want + x[j] * weight[:, j]
    out = np.zeros(n_out, dtype)
    kernels.affine(x, n_in, n_out, fp, 0, out)
    np.testing.assert_array_equal(out, want)
    ev = np.flatnonzero(x).astype(np.int64)
    fan = rng.integers(0, n_out + 1, n_in).astype(np.int64)
    for fan_all in (-1, n_out):  # per-input fan-outs summed, or one for all
        out[:] = 0
        ops, binary = kernels.affine_events(x, ev, len(ev), n_in, n_out, fp, 0, fan, fan_all, False, dtype(1), out)
        np.testing.assert_array_equal(out, want)
        assert ops == (fan[ev].sum() if fan_all < 0 else len(ev) * n_out)
        assert binary == bool(np.all(np.isin(x[ev], [-1, 1])))


@pytest.mark.parametrize("n", [0, 1, 63, 64, 65, 200])
def test_list_counted_lists_and_counts_the_non_zero_entries(n):
    rng = np.random.default_rng(n)
    x = (rng.random(n) < 0.3).astype(np.float32)
    ev = np.full(n, -1, np.int64)
    want = np.flatnonzero(x)
    assert kernels.list_counted(x, n, np.float32(0), ev) == len(want)
    np.testing.assert_array_equal(ev[:len(want)], want)


@pytest.mark.parametrize("precision", ["float32", "float64"])
def test_a_held_input_gives_the_results_of_its_repeated_rows(precision):
    """An input passed held (np.broadcast_to over time: one row per sample) runs as the same input with its rows
    repeated in memory: outputs (the Input node's too), voltages and every count, per step, on a graph whose input
    feeds a dense Affine, a Linear summed with spikes, and a Conv; also held over the sample axis and for T = 1."""
    rng = np.random.default_rng(3)
    plan = lower(_block_graph(rng), dt=1e-3, precision=precision)
    rows = rng.random((3, 1, 1, 4, 4))
    cases = [(3, 23, rows), (3, 23, rows[:1]), (2, 1, rows[:2])]
    for n, steps, r in cases:
        held = np.broadcast_to(r, (n, steps, 1, 4, 4))
        assert held.strides[1] == 0
        a = run(plan, held, record_voltages=True, count_per_step=True)
        b = run(plan, np.ascontiguousarray(held), record_voltages=True, count_per_step=True)
        for name in b.outputs:
            np.testing.assert_array_equal(a.outputs[name], b.outputs[name], err_msg=name)
        for name in b.voltages:
            np.testing.assert_array_equal(a.voltages[name], b.voltages[name], err_msg=name)
        np.testing.assert_array_equal(a.counts.array, b.counts.array)
    one = run(plan, np.broadcast_to(rows[0], (23, 1, 4, 4)), parallel=False)  # one sample, (T, *shape)
    np.testing.assert_array_equal(one.output[0], run(plan, rows[0].repeat(23, axis=0), parallel=False).output[0])


def test_a_held_input_with_nan_is_reported_at_step_zero():
    plan = lower(_block_graph(np.random.default_rng(0)), dt=1e-3)
    row = np.zeros((1, 1, 4, 4))
    row[0, 0, 2, 1] = np.nan
    with pytest.raises(NeurostackError, match=r"NaN or infinite values \(sample 0, step 0\)"):
        run(plan, np.broadcast_to(row, (10, 1, 4, 4)))
