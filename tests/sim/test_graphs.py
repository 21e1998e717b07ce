"""Small hand-built graphs with known answers: convolution, pooling, flatten, recurrence, Delay, subgraphs,
the other neuron models, and event counting."""

from __future__ import annotations

import nir
import numpy as np
import pytest

from neurostack.sim import load_graph, lower, run
from sim_helpers import chain, lif

torch = pytest.importorskip("torch")
F = torch.nn.functional


def _sparse_input(rng, shape, steps=6):
    """Spikes, a few spike counts and real values: exercises the event path and the value scaling."""
    x = (rng.random((steps, *shape)) < 0.3).astype(np.float64)
    x[rng.random(x.shape) < 0.05] *= 2.0
    real = rng.random(x.shape) < 0.05
    x[real] = rng.normal(0, 1, int(real.sum()))
    return x


@pytest.mark.parametrize("stride,padding,dilation,groups", [
    (1, 1, 1, 1), (2, 0, 1, 1), (2, 2, 2, 1), (1, (1, 2), 1, 2), (1, "same", 1, 1), (3, 1, (2, 1), 2)])
def test_conv2d_matches_pytorch(stride, padding, dilation, groups):
    rng = np.random.default_rng(0)
    c_in, c_out = 4, 6
    w = rng.normal(0, 1, (c_out, c_in // groups, 3, 3))
    b = rng.normal(0, 1, c_out)
    conv = nir.Conv2d(input_shape=None, weight=w, stride=stride, padding=padding, dilation=dilation,
                      groups=groups, bias=b)
    graph = chain(("conv", conv), input_shape=[c_in, 9, 10])
    x = _sparse_input(rng, (c_in, 9, 10))
    result = run(lower(graph, precision="float64"), x)
    ref = F.conv2d(torch.tensor(x), torch.tensor(w), torch.tensor(b), stride=stride,
                   padding=padding, dilation=dilation, groups=groups).numpy()
    assert result.outputs["conv"].shape[2:] == ref.shape[1:]
    np.testing.assert_allclose(result.outputs["conv"][0], ref, atol=1e-12)
    assert result.input_events["conv"] == np.count_nonzero(x)


def test_conv1d_with_input_shape_inferred_along_the_edge():
    rng = np.random.default_rng(1)
    w, b = rng.normal(0, 1, (5, 3, 4)), rng.normal(0, 1, 5)
    conv = nir.Conv1d(input_shape=None, weight=w, stride=2, padding=1, dilation=1, groups=1, bias=b)
    graph = chain(("conv", conv), input_shape=[3, 20])
    x = _sparse_input(rng, (3, 20))
    plan = lower(graph, precision="float64")
    assert plan.shapes["conv"] == (5, 10)
    ref = F.conv1d(torch.tensor(x), torch.tensor(w), torch.tensor(b), stride=2, padding=1).numpy()
    np.testing.assert_allclose(run(plan, x).outputs["conv"][0], ref, atol=1e-12)


@pytest.mark.parametrize("kind", ["SumPool2d", "AvgPool2d"])
@pytest.mark.parametrize("kernel,stride,padding", [(2, 2, 0), (3, 2, 1), ((2, 3), (1, 2), (1, 0))])
def test_pooling_matches_pytorch(kind, kernel, stride, padding):
    rng = np.random.default_rng(2)
    pair = lambda v: np.array(v if isinstance(v, tuple) else (v, v))
    node = getattr(nir, kind)(kernel_size=pair(kernel), stride=pair(stride), padding=pair(padding))
    graph = chain(("pool", node), input_shape=[2, 7, 8])
    x = _sparse_input(rng, (2, 7, 8))
    out = run(lower(graph, precision="float64"), x).outputs["pool"][0]
    k = pair(kernel)
    ref = F.avg_pool2d(torch.tensor(x), tuple(k), tuple(pair(stride)), tuple(pair(padding)),
                       count_include_pad=True).numpy()
    if kind == "SumPool2d":
        ref = ref * k.prod()
    np.testing.assert_allclose(out, ref, atol=1e-12)


def test_conv_flatten_affine_lif():
    """Flatten is a reshape in C order between a conv and a dense layer."""
    rng = np.random.default_rng(3)
    w, b = rng.normal(0, 1, (2, 1, 3, 3)), np.zeros(2)
    wd, bd = rng.normal(0, 1, (3, 2 * 4 * 4)), rng.normal(0, 0.1, 3)
    graph = chain(("conv", nir.Conv2d(None, w, 1, 1, 1, 1, b)),
                   ("flat", nir.Flatten(input_type={"input": None}, start_dim=0, end_dim=-1)),
                   ("fc", nir.Affine(wd, bd)), input_shape=[1, 4, 4])
    x = _sparse_input(rng, (1, 4, 4))
    result = run(lower(graph, precision="float64"), x)
    assert result.outputs["flat"].shape == (1, 6, 32)
    conv = F.conv2d(torch.tensor(x), torch.tensor(w), torch.tensor(b), padding=1).numpy()
    np.testing.assert_allclose(result.outputs["flat"][0], conv.reshape(6, -1), atol=1e-12)
    np.testing.assert_allclose(result.outputs["fc"][0], conv.reshape(6, -1) @ wd.T + bd, atol=1e-12)


def _if(n, th=0.5):
    return nir.IF(r=np.ones(n), v_threshold=np.full(n, th), v_reset=np.zeros(n))


def test_recurrent_edge_reads_the_previous_step():
    """Two IF neurons that excite each other through a back edge: a spike at t reaches the other at t + 1."""
    graph = chain(("fc", nir.Affine(np.eye(2), np.zeros(2))), ("n", _if(2)),
                   ("w", nir.Linear(np.array([[0.0, 1.0], [1.0, 0.0]]))),
                   edges=[("input", "fc"), ("fc", "n"), ("n", "w"), ("w", "n"), ("n", "output")],
                   input_shape=[2])
    x = np.zeros((8, 2))
    x[0, 0] = 1.0
    plan = lower(graph, dt=1.0)
    assert plan.back_edges == [("w", "n")]
    spikes = run(plan, x).outputs["n"][0]
    expected = np.zeros((8, 2))
    expected[0::2, 0] = 1
    expected[1::2, 1] = 1
    np.testing.assert_array_equal(spikes, expected)


def test_recurrent_edge_is_zero_at_the_first_step():
    """A Linear on the cycle with a bias-free self-excitation: nothing arrives at t = 0."""
    graph = chain(("n", _if(1, th=0.5)), ("w", nir.Affine(np.array([[1.0]]), np.array([0.25]))),
                   edges=[("input", "n"), ("n", "w"), ("w", "n"), ("n", "output")], input_shape=[1])
    x = np.zeros((4, 1))
    out = run(lower(graph, dt=1.0), x).outputs
    # w's output (bias 0.25) enters n from t = 1: v = 0, 0.25, 0.5, 0.75 -> first spike at t = 3
    np.testing.assert_array_equal(out["n"][0, :, 0], [0, 0, 0, 1])


def test_delay_node_shifts_each_element_by_whole_steps():
    delays = np.array([0.0, 2e-3, 3e-3, 1e-3], np.float32)
    graph = chain(("d", nir.Delay(delay=delays)), input_shape=[4])
    rng = np.random.default_rng(4)
    x = rng.random((10, 4))
    out = run(lower(graph, dt=1e-3, precision="float64"), x).outputs["d"][0]
    for i, k in enumerate([0, 2, 3, 1]):
        np.testing.assert_array_equal(out[k:, i], x[:10 - k, i])
        np.testing.assert_array_equal(out[:k, i], 0)


def test_delay_that_is_not_a_whole_number_of_steps_warns():
    graph = chain(("d", nir.Delay(delay=np.array([1.5e-3, 1e-3]))), input_shape=[2])
    plan = lower(graph, dt=1e-3)
    assert any("not whole multiples of dt" in w for w in plan.warnings)


def test_delay_breaks_a_cycle():
    """A Delay is state, so it may close a cycle. The back edge (d -> s) reads d's previous output, as every back
    edge does, so the loop delay is the Delay's 1 step plus the back edge's 1 step: s[t] = x[t] + s[t - 2]."""
    graph = chain(("s", nir.Scale(np.ones(1))), ("d", nir.Delay(np.array([1e-3]))),
                   edges=[("input", "s"), ("s", "d"), ("d", "s"), ("s", "output")], input_shape=[1])
    plan = lower(graph, dt=1e-3, precision="float64")
    assert plan.back_edges == [("d", "s")]
    out = run(plan, np.ones((6, 1))).outputs["s"]
    np.testing.assert_array_equal(out[0, :, 0], [1, 1, 2, 2, 3, 3])


def _recurrent_subgraph(w_rec):
    return nir.NIRGraph(nodes={"input": nir.Input(input_type={"input": np.array([3])}), "lif": lif(3, th=0.4),
                               "w_rec": nir.Linear(w_rec), "output": nir.Output(output_type={"output": np.array([3])})},
                        edges=[("input", "lif"), ("lif", "w_rec"), ("w_rec", "lif"), ("lif", "output")],
                        type_check=False)


def test_nested_subgraph_is_flattened_with_dotted_names(write):
    rng = np.random.default_rng(5)
    w_in, w_rec = rng.normal(0.5, 1, (3, 4)), rng.normal(0, 1, (3, 3))
    nested = nir.NIRGraph(nodes={"input": nir.Input(input_type={"input": np.array([4])}),
                                 "fc": nir.Affine(w_in, np.zeros(3)), "rec": _recurrent_subgraph(w_rec),
                                 "output": nir.Output(output_type={"output": np.array([3])})},
                          edges=[("input", "fc"), ("fc", "rec"), ("rec", "output")], type_check=False)
    flat = nir.NIRGraph(nodes={"input": nir.Input(input_type={"input": np.array([4])}),
                               "fc": nir.Affine(w_in, np.zeros(3)), "lif": lif(3, th=0.4), "w_rec": nir.Linear(w_rec),
                               "output": nir.Output(output_type={"output": np.array([3])})},
                        edges=[("input", "fc"), ("fc", "lif"), ("lif", "w_rec"), ("w_rec", "lif"), ("lif", "output")],
                        type_check=False)
    x = (rng.random((60, 4)) < 0.4).astype(np.float32)
    a = run(lower(load_graph(write(nested, "n.nir")).graph, dt=1e-3), x)
    b = run(lower(load_graph(write(flat, "f.nir")).graph, dt=1e-3), x)
    assert {"rec.input", "rec.lif", "rec.w_rec", "rec.output"} <= set(a.outputs)
    assert a.outputs["rec.lif"].sum() > 0
    np.testing.assert_array_equal(a.outputs["rec.lif"], b.outputs["lif"])
    np.testing.assert_array_equal(a.output, b.output)


def test_edges_may_name_nodes_inside_a_subgraph():
    sub = nir.NIRGraph(nodes={"lif": lif(2, th=0.1)}, edges=[], type_check=False)
    graph = nir.NIRGraph(nodes={"input": nir.Input(input_type={"input": np.array([2])}), "sub": sub,
                                "output": nir.Output(output_type={"output": np.array([2])})},
                         edges=[("input", "sub.lif"), ("sub.lif", "output")], type_check=False)
    plan = lower(graph, dt=1e-3)
    assert "sub.lif" in plan.node_names


def test_two_inputs_into_one_neuron_are_summed():
    graph = chain(("a", nir.Affine(np.array([[1.0]]), np.array([0.5]))),
                   ("b", nir.Affine(np.array([[2.0]]), np.array([0.0]))), ("i", nir.I(r=np.array([1.0]))),
                   edges=[("input", "a"), ("input", "b"), ("a", "i"), ("b", "i"), ("i", "output")], input_shape=[1])
    x = np.array([[1.0], [0.0], [2.0]])
    out = run(lower(graph, dt=0.5, precision="float64"), x).outputs["i"][0, :, 0]
    # I: v += dt*r*(a + b) = 0.5*(3.5), 0.5*(0.5), 0.5*(6.5) cumulatively
    np.testing.assert_allclose(out, np.cumsum([1.75, 0.25, 3.25]))


def test_scale_threshold_and_li():
    graph = chain(("s", nir.Scale(np.array([2.0, -1.0]))), ("th", nir.Threshold(np.array([1.0, 0.0]))),
                   ("li", nir.LI(tau=np.array([0.01, 0.02]), r=np.array([1.0, 2.0]), v_leak=np.array([0.0, 0.1]))),
                   input_shape=[2])
    x = np.array([[0.5, -1.0], [0.6, 1.0], [0.0, -2.0]])
    out = run(lower(graph, dt=1e-3, precision="float64"), x).outputs
    np.testing.assert_array_equal(out["s"][0], x * [2.0, -1.0])
    np.testing.assert_array_equal(out["th"][0], [[0, 1], [1, 0], [0, 1]])
    a = 1e-3 * np.array([100.0, 50.0])
    v = np.zeros(2)  # spec starts at 0
    for t in range(3):
        v = v + a * ((np.array([0.0, 0.1]) - v) + np.array([1.0, 2.0]) * out["th"][0, t])
        np.testing.assert_allclose(out["li"][0, t], v, rtol=1e-15)


def test_cuba_lif_follows_the_documented_spec_equations():
    """Spec CubaLIF: u = i + (dt*w_in/tau_syn)*x; v' = v + a*((v_leak - v) + r*u); i = u - a_syn*u."""
    rng = np.random.default_rng(6)
    n = 5
    p = dict(tau_mem=rng.uniform(0.01, 0.03, n), tau_syn=rng.uniform(0.003, 0.01, n), r=rng.uniform(0.8, 1.5, n),
             v_leak=rng.uniform(-0.1, 0.1, n), v_threshold=rng.uniform(0.05, 0.2, n), v_reset=rng.uniform(-0.1, 0, n),
             w_in=rng.uniform(0.5, 2, n))
    graph = chain(("fc", nir.Affine(rng.normal(0.3, 1, (n, 3)), np.zeros(n))), ("c", nir.CubaLIF(**p)),
                   input_shape=[3])
    x = (rng.random((80, 3)) < 0.5).astype(np.float64)
    dt = 1e-3
    out = run(lower(graph, dt=dt, precision="float64"), x, record_voltages=True)
    v, i = np.zeros(n), np.zeros(n)
    a, a_syn = dt * (1 / p["tau_mem"]), dt * (1 / p["tau_syn"])
    cur = out.outputs["fc"][0]
    spikes = []
    for t in range(len(x)):
        u = i + dt * p["w_in"] / p["tau_syn"] * cur[t]
        v = v + a * ((p["v_leak"] - v) + p["r"] * u)
        i = u - a_syn * u
        z = v > p["v_threshold"]
        v = np.where(z, p["v_reset"], v)
        spikes.append(z)
    assert np.sum(spikes) > 0
    np.testing.assert_array_equal(out.outputs["c"][0], np.array(spikes, float))
    np.testing.assert_allclose(out.voltages["c"][0, -1], v, atol=1e-12)


def test_event_counts_and_spike_counts():
    rng = np.random.default_rng(7)
    graph = nir.NIRGraph.from_list(nir.Affine(rng.normal(1, 1, (6, 5)), np.zeros(6)), lif(6, th=0.2),
                                   nir.Linear(rng.normal(0, 1, (2, 6))))
    x = (rng.random((3, 40, 5)) < 0.2).astype(np.float32)
    result = run(lower(graph, dt=1e-3), x)
    assert result.input_events["affine"] == np.count_nonzero(x)
    assert result.spike_counts["lif"] == int(result.outputs["lif"].sum()) > 0
    assert result.input_events["linear"] == int(result.outputs["lif"].sum())
    assert set(result.spike_counts) == {"lif"}


def test_batch_runs_in_parallel_match_single_sample_runs():
    rng = np.random.default_rng(8)
    graph = nir.NIRGraph.from_list(nir.Affine(rng.normal(0.5, 1, (7, 4)), np.zeros(7)), lif(7, th=0.3))
    plan = lower(graph, dt=1e-3)
    x = (rng.random((5, 30, 4)) < 0.3).astype(np.float32)
    together = run(plan, x, record_voltages=True)
    serial = run(plan, x, parallel=False)
    for s in range(5):
        one = run(plan, x[s])
        np.testing.assert_array_equal(together.outputs["lif"][s], one.outputs["lif"][0])
    np.testing.assert_array_equal(together.output, serial.output)
    assert together.voltages["lif"].shape == (5, 30, 7)


def test_record_subset_keeps_the_output():
    graph = nir.NIRGraph.from_list(nir.Affine(np.ones((2, 2)), np.zeros(2)), lif(2))
    result = run(lower(graph, dt=1e-3), np.ones((3, 2)), record=["lif"])
    assert set(result.outputs) == {"lif", "output"}
