"""Operation counts on small graphs with answers worked out by hand: SOPs vs MACs, padding taps, a recurrent
edge, a Delay, neuron updates and dense connections."""

from __future__ import annotations

import nir
import numpy as np
import pytest

from neurostack.sim import lower, run
from sim_helpers import chain, lif


def _if(n: int, th=100.0) -> nir.IF:
    return nir.IF(r=np.ones(n), v_threshold=np.full(n, th), v_reset=np.zeros(n))


W = np.array([[1.0, 0, 2, 0], [0, 0, 3, 1], [1, 1, 0, 0]])  # non-zero weights per input column: 2, 1, 2, 1
X = np.array([[1.0, 1, 0, 0], [0, 0, 1, 1], [1, 0, 1, 0]])  # 6 spikes over 3 steps


def test_linear_sops_count_nonzero_weights_reached_by_each_spike():
    graph = chain(("fc", nir.Affine(weight=W, bias=np.array([0.5, 0, 0]))), ("n", _if(3)), input_shape=[4])
    plan = lower(graph, dt=1.0, precision="float64")
    work = run(plan, X, count_per_step=True).workload(plan)
    fc = work.node("fc")
    # step 0: inputs 0, 1 -> 2 + 1; step 1: inputs 2, 3 -> 2 + 1; step 2: inputs 0, 2 -> 2 + 2
    assert fc.per_step_sops == [3.0, 3.0, 4.0]
    assert fc.sops == 10 and fc.macs == 0
    assert fc.dense == 3 * 12 and fc.dense_per_step == 12
    assert fc.bias_adds == 3 * 1  # one non-zero bias, every step
    assert fc.input_events == 6
    assert fc.fan_in == 2 and fc.fan_out == 2 and fc.n_weights == 12 and fc.n_nonzero_weights == 6


def test_real_valued_or_graded_input_counts_macs_for_that_step():
    x = X.copy()
    x[1, 2] = 0.5  # step 1 has a real value: its operations are MACs
    x[2, 0] = 2.0  # step 2 has a spike count of 2 (multi-spike): MACs as well
    graph = chain(("fc", nir.Linear(weight=W)), ("n", _if(3)), input_shape=[4])
    plan = lower(graph, dt=1.0, precision="float64")
    fc = run(plan, x, count_per_step=True).workload(plan).node("fc")
    assert fc.per_step_sops == [3.0, 0.0, 0.0]
    assert fc.per_step_macs == [0.0, 3.0, 4.0]


def test_conv_with_padding_counts_only_taps_inside_the_output():
    w = np.ones((1, 1, 3, 3))
    conv = nir.Conv2d(input_shape=(3, 3), weight=w, stride=1, padding=1, dilation=1, groups=1, bias=np.zeros(1))
    graph = chain(("conv", conv), input_shape=[1, 3, 3])
    plan = lower(graph, precision="float64")
    x = np.zeros((3, 1, 3, 3))
    x[0, 0, 0, 0] = 1  # corner: reaches a 2x2 block of outputs
    x[1, 0, 0, 1] = 1  # edge: 2x3
    x[2, 0, 1, 1] = 1  # centre: 3x3
    conv_work = run(plan, x, count_per_step=True).workload(plan).node("conv")
    assert conv_work.per_step_sops == [4.0, 6.0, 9.0]
    # dense per step: 4 corners x 4 + 4 edges x 6 + centre 9 (a 3x3 'same' conv has 49, not 81, real taps)
    assert conv_work.dense_per_step == 49
    assert conv_work.fan_in == 9 and conv_work.fan_out == 9


def test_conv_zero_weights_and_stride_reduce_the_count():
    w = np.zeros((2, 1, 2, 2))
    w[0, 0, 0, 0] = 1.0
    w[1, 0, 1, 1] = -1.0
    conv = nir.Conv2d(input_shape=(4, 4), weight=w, stride=2, padding=0, dilation=1, groups=1, bias=np.zeros(2))
    graph = chain(("conv", conv), input_shape=[1, 4, 4])
    plan = lower(graph, precision="float64")
    x = np.ones((1, 1, 4, 4))
    work = run(plan, x).workload(plan).node("conv")
    # with stride 2 and a 2x2 kernel each input belongs to exactly one window, through one tap;
    # only tap (0,0) of channel 0 and tap (1,1) of channel 1 are non-zero: 4 + 4 inputs reach one weight each
    assert work.sops == 8
    assert work.dense == 16 * 2


def test_recurrent_edge_counts_the_previous_steps_spikes():
    rng = np.random.default_rng(3)
    w_in = rng.normal(0, 2, (5, 3))
    w_rec = rng.normal(0, 1, (5, 5))
    w_rec[0, :] = 0  # row zero: each column reaches 4 non-zero weights
    nodes = [("fc", nir.Linear(weight=w_in)), ("lif", lif(5, tau=0.005, th=0.5)), ("rec", nir.Linear(weight=w_rec))]
    edges = [("input", "fc"), ("fc", "lif"), ("lif", "rec"), ("rec", "lif"), ("lif", "output")]
    graph = chain(*nodes, edges=edges, input_shape=[3])
    plan = lower(graph, dt=1e-3, precision="float64")
    x = (rng.random((20, 3)) < 0.5).astype(float)
    result = run(plan, x, count_per_step=True)
    spikes = result.outputs["lif"][0]  # (T, 5)
    rec = result.workload(plan).node("rec")
    # rec runs after lif within a step (the back edge is rec -> lif: lif reads rec's output of step t-1),
    # so rec does its operations in the step the spikes happen
    expected = [4.0 * spikes[t].sum() for t in range(20)]
    assert spikes.sum() > 0
    assert rec.per_step_sops == expected


def test_delay_moves_events_and_counts_nothing():
    graph = chain(("d", nir.Delay(delay=np.full(2, 2.0))), ("fc", nir.Linear(weight=np.ones((1, 2)))),
                   input_shape=[2])
    plan = lower(graph, dt=1.0, precision="float64")
    x = np.zeros((5, 2))
    x[0] = 1  # arrives at step 2
    x[4] = 1  # would arrive at step 6: after the end, never counted
    work = run(plan, x, count_per_step=True).workload(plan)
    assert work.node("fc").per_step_sops == [0.0, 0.0, 2.0, 0.0, 0.0]
    assert work.node("d").sops == work.node("d").macs == 0


def test_neuron_updates_clock_driven_and_driven_and_means_over_samples():
    graph = chain(("fc", nir.Linear(weight=np.eye(2))), ("n", _if(2, th=0.5)), input_shape=[2])
    plan = lower(graph, dt=1.0, precision="float64")
    x = np.zeros((2, 4, 2))
    x[0, 0, 0] = x[0, 1, 1] = x[0, 2, 0] = 1  # sample 0: 3 driven neuron-steps, 3 spikes (IF, threshold 0.5)
    x[1, 3, :] = 1  # sample 1: 2 driven, 2 spikes
    work = run(plan, x).workload(plan)
    n = work.node("n")
    assert n.neuron_updates == 2 * 4
    assert n.neuron_updates_driven == pytest.approx((3 + 2) / 2)
    assert n.spikes == pytest.approx((3 + 2) / 2)
    assert work.samples == 2 and work.steps == 4
    assert work.node("fc").sops == pytest.approx(2.5)
