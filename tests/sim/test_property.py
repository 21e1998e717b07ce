"""Property: for random small Affine -> LIF -> Affine -> LIF graphs and spike inputs, the event-driven simulator
equals a plain NumPy float64 implementation of the spec equations, spike for spike and voltage for voltage.

The reference is written independently of the simulator: dense loops over the weight matrix, Norse's operation
order (bias first, then the weight columns in input order; v += a*((I + v_leak) - v); strict threshold; reset to
v_reset; v starts at 0), with a = dt * tau_mem_inv for the float32 tau_mem_inv the network was built from and
tau = 1/tau_mem_inv written to the graph in float64, as neurostack's exporter does.
"""

from __future__ import annotations

import nir
import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from neurostack.sim import lower, run

DT = 1e-3


def _reference(x, layers):
    """x (N, T, n_in) -> list of per-layer (spikes, voltages), each (N, T, n)."""
    n_samples, steps, _ = x.shape
    out = []
    h = x
    for w, b, tmi, v_leak, v_th, v_reset in layers:
        n_out, n_in = w.shape
        a = DT * tmi.astype(np.float64)
        z = np.zeros((n_samples, steps, n_out))
        vs = np.zeros((n_samples, steps, n_out))
        for s in range(n_samples):
            v = np.zeros(n_out)
            for t in range(steps):
                cur = b.astype(np.float64).copy()
                for j in range(n_in):
                    if h[s, t, j] != 0:
                        cur = cur + h[s, t, j] * w[:, j]
                v = v + a * ((cur + v_leak) - v)
                spk = v > v_th
                v = np.where(spk, v_reset, v)
                z[s, t] = spk
                vs[s, t] = v
        out.append((z, vs))
        h = z
    return out


@st.composite
def networks(draw):
    seed = draw(st.integers(0, 2**31 - 1))
    rng = np.random.default_rng(seed)
    sizes = [draw(st.integers(1, 12)), draw(st.integers(1, 16)), draw(st.integers(1, 6))]
    layers = []
    for n_in, n_out in zip(sizes, sizes[1:]):
        w = rng.normal(draw(st.floats(-0.2, 0.8)), draw(st.floats(0.1, 2.0)), (n_out, n_in))
        b = rng.normal(0, 0.2, n_out)
        tmi = rng.uniform(20.0, 500.0, n_out).astype(np.float32)  # 1/s
        v_leak = rng.uniform(-0.1, 0.1, n_out) * draw(st.sampled_from([0.0, 1.0]))
        v_th = rng.uniform(0.05, 1.0, n_out)
        v_reset = rng.uniform(-0.3, 0.0, n_out) * draw(st.sampled_from([0.0, 1.0]))
        layers.append((w, b, tmi, v_leak, v_th, v_reset))
    n_samples, steps = draw(st.integers(1, 3)), draw(st.integers(1, 40))
    x = (rng.random((n_samples, steps, sizes[0])) < draw(st.floats(0.0, 0.9))).astype(np.float64)
    return layers, x


def _graph(layers):
    nodes = []
    for w, b, tmi, v_leak, v_th, v_reset in layers:
        n = w.shape[0]
        nodes += [nir.Affine(w, b), nir.LIF(tau=1.0 / tmi.astype(np.float64), r=np.ones(n), v_leak=v_leak,
                                            v_threshold=v_th, v_reset=v_reset)]
    return nir.NIRGraph.from_list(*nodes)


@settings(max_examples=40, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(networks())
def test_event_driven_simulator_equals_dense_numpy_reference(net):
    layers, x = net
    plan = lower(_graph(layers), dt=DT, precision="float64")
    result = run(plan, x, record_voltages=True)
    ref = _reference(x, layers)
    for name, (z, v) in zip(["lif", "lif_1"], ref):
        np.testing.assert_array_equal(result.outputs[name], z)
        np.testing.assert_array_equal(result.voltages[name], v)
    assert result.input_events["affine"] == np.count_nonzero(x)
    assert result.input_events["affine_1"] == int(ref[0][0].sum())
    assert result.spike_counts == {"lif": int(ref[0][0].sum()), "lif_1": int(ref[1][0].sum())}
