"""The conventions table, and the behaviours it names, on tiny networks with hand-checked answers."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import nir
import numpy as np
import pytest

from neurostack.errors import NeurostackError
from neurostack.sim import CONVENTIONS, lower, run
from neurostack.sim.conventions import TABLE, describe_table, get_convention, input_gain, snap_unit
from sim_helpers import lif

ALLOWED = {
    "decay": {"euler", "exp"}, "update": {"increment", "product"},
    "syn_order": {"jump_then_decay", "decay_then_add", "add_then_decay"}, "reset": {"value", "subtract"},
    "reset_timing": {"same_step", "next_step"}, "threshold": {"strict", "inclusive"}, "spikes": {"single", "multi"},
    "latency": {0, 1}, "v_init": {"zero", "v_leak"}, "tau_fix": {"none", "norse_1_1"},
    "zero_clears": {"old", "new_for_cuba_and_recurrent"},
}


def test_table_has_every_convention_with_valid_fields():
    assert CONVENTIONS == ("spec", "norse", "snntorch", "sinabs", "rockpool", "spyx")
    for name, conv in TABLE.items():
        assert conv.name == name and conv.dt > 0 and conv.source
        for key, allowed in ALLOWED.items():
            assert getattr(conv, key) in allowed, (name, key)
    text = describe_table()
    assert all(name in text for name in CONVENTIONS)


def test_overrides():
    assert get_convention("snntorch", reset="zero").reset == "value"
    assert get_convention("spec", reset="subtract").reset == "subtract"
    assert get_convention("sinabs", spikes="single").spikes == "single"
    assert get_convention("sinabs").spikes == "multi"
    with pytest.raises(NeurostackError):
        get_convention("sinabs", spikes="many")


def test_snntorch_gain_is_exactly_one_despite_float32_rounding():
    beta = np.float32(np.linspace(0.5, 0.99, 1000))
    tau = np.float32(1e-4) / (np.float32(1) - beta)  # snnTorch's exporter, in float32
    r = tau / np.float32(1e-4)
    conv = TABLE["snntorch"]
    d = 1 - 1e-4 / tau.astype(np.float64)
    assert np.all(input_gain(conv, 1e-4, tau, r, d) == 1.0)
    graph = nir.NIRGraph.from_list(nir.Affine(np.eye(1000), np.zeros(1000)),
                                   nir.LIF(tau=tau, r=r, v_leak=np.zeros(1000, np.float32),
                                           v_threshold=np.ones(1000, np.float32), v_reset=np.zeros(1000, np.float32)))
    plan = lower(graph, convention="snntorch")
    decay = plan.fparams[plan.fp_off[plan.index("lif")]:][:1000]
    assert np.array_equal(decay, beta)  # beta recovered exactly, also where 1 - dt/tau misses it by an ulp
    assert snap_unit(np.array([1.0 + 1e-3]))[0] == 1.0 + 1e-3


def _one_neuron(th=1.0, tau=2e-4, r=None, n=1):
    r = tau / 1e-4 if r is None else r
    return nir.NIRGraph.from_list(nir.Affine(np.eye(n), np.zeros(n)),
                                  nir.LIF(tau=np.full(n, tau), r=np.full(n, r), v_leak=np.zeros(n),
                                          v_threshold=np.full(n, th), v_reset=np.zeros(n)))


def test_snntorch_leaky_subtract_resets_one_step_late():
    """beta = 1 - dt/tau = 0.5, input enters unscaled: mem = 0.5 mem + x - thr*spk[t-1]."""
    x = np.array([[1.2], [0.0], [0.0], [1.0], [0.9]])
    out = run(lower(_one_neuron(), convention="snntorch", precision="float64"), x, record_voltages=True)
    mem, spk, ref_v, ref_z = 0.0, 0.0, [], []
    for xt in x[:, 0]:
        mem = 0.5 * mem + xt - 1.0 * spk
        spk = float(mem > 1.0)
        ref_v.append(mem)
        ref_z.append(spk)
    np.testing.assert_allclose(out.voltages["lif"][0, :, 0], ref_v)
    np.testing.assert_array_equal(out.outputs["lif"][0, :, 0], ref_z)


def test_spyx_emits_the_previous_steps_spike():
    """Spyx = snnTorch's subtractive dynamics with every spike emitted one step later."""
    rng = np.random.default_rng(0)
    x = rng.random((60, 3)) * 1.5
    graph = _one_neuron(n=3, tau=4.0, r=4.0)  # snnTorch at dt = 1 step: r = tau/dt
    a = run(lower(graph, convention="snntorch", reset="subtract", dt=1.0, precision="float64"), x).outputs["lif"]
    for node in graph.nodes.values():
        if isinstance(node, nir.LIF):
            node.r = 1 - 1.0 / node.tau  # spyx writes r = beta
    b = run(lower(graph, convention="spyx", precision="float64"), x).outputs["lif"]
    assert a.sum() > 0
    np.testing.assert_array_equal(b[0, 1:], a[0, :-1])
    np.testing.assert_array_equal(b[0, 0], 0)


def test_threshold_comparison_and_multi_spikes():
    graph = nir.NIRGraph.from_list(nir.Affine(np.eye(1), np.zeros(1)),
                                   nir.IF(r=np.ones(1), v_threshold=np.ones(1), v_reset=np.zeros(1)))
    x = np.array([[1.0], [2.5], [0.2]])
    strict = run(lower(graph, convention="spec", dt=1.0), x).outputs["if"][0, :, 0]
    np.testing.assert_array_equal(strict, [0, 1, 0])  # v = 1 is not > 1; v = 3.5 -> one spike, reset to 0
    multi = run(lower(graph, convention="sinabs"), x).outputs["if"][0, :, 0]
    np.testing.assert_array_equal(multi, [1, 2, 0])  # v = 1 >= 1; v = 2.5 -> 2 spikes, 0.5 left; 0.7
    single = run(lower(graph, convention="sinabs", spikes="single"), x).outputs["if"][0, :, 0]
    np.testing.assert_array_equal(single, [1, 1, 1])  # 2.5 - 1 = 1.5; 1.7 >= 1


def test_norse_convention_undoes_the_norse_1_1_tau_bug():
    rng = np.random.default_rng(1)
    w = rng.normal(0.5, 1, (5, 4))
    true_tau = rng.uniform(0.005, 0.02, 5)

    def graph(tau):
        return nir.NIRGraph.from_list(nir.Affine(w, np.zeros(5)), lif(5, tau=tau, th=0.3, dtype=np.float64))

    x = (rng.random((80, 4)) < 0.3).astype(np.float64)
    buggy = lower(graph(true_tau * 1e-3), convention="norse")
    assert any("Norse 1.1.0" in m for m in buggy.warnings)
    right = lower(graph(true_tau), convention="spec", dt=1e-3)
    np.testing.assert_array_equal(run(buggy, x).output, run(right, x).output)
    assert not any("Norse 1.1.0" in m for m in lower(graph(true_tau), convention="norse").warnings)


def test_norse_convention_starts_at_v_leak():
    graph = nir.NIRGraph.from_list(nir.Affine(np.zeros((1, 1)), np.zeros(1)),
                                   nir.LI(tau=np.array([0.01]), r=np.ones(1), v_leak=np.array([0.5])))
    x = np.zeros((3, 1))
    norse = run(lower(graph, convention="norse", precision="float64"), x).outputs["li"][0, :, 0]
    spec = run(lower(graph, convention="spec", precision="float64"), x).outputs["li"][0, :, 0]
    np.testing.assert_allclose(norse, 0.5)
    np.testing.assert_allclose(spec, 0.5 - 0.5 * 0.9 ** np.arange(1, 4))
    v_leak_start = run(lower(graph, initial_v="v_leak", precision="float64"), x).outputs["li"][0, :, 0]
    np.testing.assert_allclose(v_leak_start, 0.5)


def test_rockpool_synapse_decays_before_reaching_the_membrane():
    """isyn = (isyn + x)*beta; v = v*alpha + isyn: a single input pulse reaches v already decayed."""
    dt, tau_m, tau_s = 1e-3, 0.02, 0.005
    alpha, beta = np.exp(-dt / tau_m), np.exp(-dt / tau_s)
    graph = nir.NIRGraph.from_list(
        nir.Affine(np.eye(1), np.zeros(1)),
        nir.CubaLIF(tau_mem=np.array([tau_m]), tau_syn=np.array([tau_s]), r=np.array([tau_m * alpha / dt]),
                    v_leak=np.zeros(1), v_threshold=np.array([10.0]), v_reset=np.zeros(1), w_in=np.ones(1)))
    x = np.array([[1.0], [0.0], [0.0]])
    v = run(lower(graph, convention="rockpool", precision="float64"), x, record_voltages=True).voltages["cubalif"]
    i1, i2, i3 = beta, beta**2, beta**3
    np.testing.assert_allclose(v[0, :, 0], [i1, i1 * alpha + i2, (i1 * alpha + i2) * alpha + i3], rtol=1e-14)


def test_simulator_does_not_import_torch(tmp_path):
    code = textwrap.dedent("""
        import sys, numpy as np, nir
        from neurostack import sim
        g = nir.NIRGraph.from_list(nir.Affine(np.ones((2, 2)), np.zeros(2)),
                                   nir.LIF(tau=np.full(2, 0.01), r=np.ones(2), v_leak=np.zeros(2),
                                           v_threshold=np.ones(2), v_reset=np.zeros(2)))
        nir.write(sys.argv[1], g)
        r = sim.run(sim.lower(sim.load_graph(sys.argv[1]).graph), np.ones((5, 2)))
        assert r.output.shape == (1, 5, 2)
        bad = [m for m in sys.modules if m == "torch" or m.startswith("torch.")]
        assert not bad, bad
        print("ok")
    """)
    out = subprocess.run([sys.executable, "-c", code, str(tmp_path / "g.nir")], capture_output=True, text=True)
    assert out.returncode == 0 and "ok" in out.stdout, out.stderr[-2000:]
