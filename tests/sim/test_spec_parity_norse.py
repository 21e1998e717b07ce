"""The "spec" convention reproduces Norse LIFBox / LIBox networks spike for spike (float32 and float64).

Norse is what neurostack trains with, so this is the parity the whole project rests on. The networks are built
twice: as NIR graphs written to disk (tau in seconds) and as Norse modules with the same weights.
"""

from __future__ import annotations

import nir
import numpy as np
import pytest

torch = pytest.importorskip("torch")
nt = pytest.importorskip("norse.torch")

from neurostack.sim import load_graph, lower, run  # noqa: E402
from neurostack.sim.plan import P_DECAY  # noqa: E402

DT = 1e-3


def _norse_run(layers, x: np.ndarray, dtype) -> list[np.ndarray]:
    """Run a SequentialState of Linear / LIFBoxCell / LIBoxCell on x (T, n_in); each cell's output per step."""
    net = nt.SequentialState(*layers).to(dtype)
    recorded = {i: [] for i, m in enumerate(layers) if not isinstance(m, torch.nn.Linear)}
    def keep(i):
        return lambda module, inp, out: recorded[i].append(out[0][0].detach().numpy().copy())

    hooks = [net[i].register_forward_hook(keep(i)) for i in recorded]
    state = None
    with torch.no_grad():
        for t in range(len(x)):
            _, state = net(torch.tensor(x[t:t + 1]).to(dtype), state)
    for h in hooks:
        h.remove()
    return [np.stack(v) for v in recorded.values()]


def _linear(w: np.ndarray, b: np.ndarray):
    lin = torch.nn.Linear(w.shape[1], w.shape[0])
    with torch.no_grad():
        lin.weight[:] = torch.tensor(w)
        lin.bias[:] = torch.tensor(b)
    return lin


def _lif_cell(tmi: torch.Tensor, th: float, dtype):
    n = tmi.shape[0]
    p = nt.LIFBoxParameters(tau_mem_inv=tmi.to(dtype), v_th=torch.full((n,), th, dtype=dtype),
                            v_leak=torch.zeros(n, dtype=dtype), v_reset=torch.zeros(n, dtype=dtype))
    return nt.LIFBoxCell(p, dt=DT)


def test_check_script_graph_matches_norse_lifbox_float32(write):
    """The lead's check: from_list(Affine, LIF(tau=0.01), Affine, LIF), dt = 1 ms, (300, 20) Bernoulli input."""
    rng = np.random.default_rng(0)
    w1, b1 = rng.normal(0, 0.6, (32, 20)).astype(np.float32), rng.normal(0, 0.1, 32).astype(np.float32)
    w2, b2 = rng.normal(0, 0.6, (8, 32)).astype(np.float32), np.zeros(8, np.float32)

    def lif(n, tau, th):
        return nir.LIF(tau=np.full(n, tau, np.float32), r=np.ones(n, np.float32), v_leak=np.zeros(n, np.float32),
                       v_threshold=np.full(n, th, np.float32), v_reset=np.zeros(n, np.float32))

    graph = nir.NIRGraph.from_list(nir.Affine(w1, b1), lif(32, 0.01, 0.3), nir.Affine(w2, b2), lif(8, 0.02, 0.2))
    x = (rng.random((300, 20)) < 0.25).astype(np.float32)
    hidden, out = _norse_run([_linear(w1, b1), _lif_cell(torch.full((32,), 1 / 0.01), 0.3, torch.float32),
                              _linear(w2, b2), _lif_cell(torch.full((8,), 1 / 0.02), 0.2, torch.float32)],
                             x, torch.float32)
    result = run(lower(load_graph(write(graph)).graph, dt=DT), x)
    assert out.sum() > 0 and hidden.sum() > 0
    assert np.array_equal(result.outputs["lif"][0], hidden)
    assert np.array_equal(result.outputs["lif_1"][0], out)
    assert np.array_equal(result.output[0], out)


@pytest.mark.parametrize("precision", ["float32", "float64"])
def test_per_neuron_taus_as_neurostack_exports_them(write, precision):
    """tau = 1/tau_mem_inv written as float64 (what neurostack's exporter does), per-neuron thresholds and taus,
    an LI readout; spikes identical, LI voltages identical up to the matmul's rounding."""
    dtype = torch.float64 if precision == "float64" else torch.float32
    rng = np.random.default_rng(1)
    gen = torch.Generator().manual_seed(1)
    n_in, n_h, n_out = 24, 40, 6
    w1, b1 = rng.normal(0, 0.5, (n_h, n_in)).astype(np.float32), rng.normal(0, 0.1, n_h).astype(np.float32)
    w2, b2 = rng.normal(0, 0.5, (n_out, n_h)).astype(np.float32), rng.normal(0, 0.1, n_out).astype(np.float32)
    tmi_h = torch.empty(n_h).uniform_(30.0, 250.0, generator=gen)
    tmi_o = torch.empty(n_out).uniform_(30.0, 250.0, generator=gen)
    th = 0.25
    nodes = {
        "input": nir.Input(input_type={"input": np.array([n_in])}),
        "fc1": nir.Affine(w1, b1),
        "lif": nir.LIF(tau=1.0 / tmi_h.numpy().astype(np.float64), r=np.ones(n_h, np.float32),
                       v_leak=np.zeros(n_h, np.float32), v_threshold=np.full(n_h, th, np.float32),
                       v_reset=np.zeros(n_h, np.float32)),
        "fc2": nir.Affine(w2, b2),
        "li": nir.LI(tau=1.0 / tmi_o.numpy().astype(np.float64), r=np.ones(n_out, np.float32),
                     v_leak=np.zeros(n_out, np.float32)),
        "output": nir.Output(output_type={"output": np.array([n_out])}),
    }
    edges = [("input", "fc1"), ("fc1", "lif"), ("lif", "fc2"), ("fc2", "li"), ("li", "output")]
    x = (rng.random((200, n_in)) < 0.3).astype(np.float32)
    li_cell = nt.LIBoxCell(nt.LIBoxParameters(tau_mem_inv=tmi_o.to(dtype), v_leak=torch.zeros(n_out, dtype=dtype)),
                           dt=DT)
    hidden, readout = _norse_run([_linear(w1, b1), _lif_cell(tmi_h, th, dtype), _linear(w2, b2), li_cell], x, dtype)
    plan = lower(load_graph(write(nir.NIRGraph(nodes=nodes, edges=edges))).graph, dt=DT, precision=precision)
    # the membrane increment a = dt * tau_mem_inv is bit-identical to Norse's
    a = plan.fparams[plan.fp_off[plan.index("lif")] + P_DECAY * n_h:][:n_h]
    assert np.array_equal(a, (torch.tensor(DT, dtype=dtype) * tmi_h.to(dtype)).numpy()) if precision == "float32" \
        else np.array_equal(a, DT * tmi_h.to(torch.float64).numpy())
    result = run(plan, x, record_voltages=True)
    assert hidden.sum() > 0
    assert np.array_equal(result.outputs["lif"][0], hidden)
    tol = 1e-12 if precision == "float64" else 1e-5
    np.testing.assert_allclose(result.outputs["li"][0], readout, atol=tol, rtol=0)
    np.testing.assert_array_equal(result.voltages["li"], result.outputs["li"])


def test_float64_plan_gives_identical_spikes_to_norse_float64_on_real_valued_input(write):
    """Dense real-valued first layer (like mel features) and a spiking second layer, float64 end to end."""
    rng = np.random.default_rng(2)
    w1, b1 = rng.normal(0, 0.4, (30, 16)), rng.normal(0, 0.05, 30)
    w2, b2 = rng.normal(0.3, 0.5, (5, 30)), np.zeros(5)
    graph = nir.NIRGraph.from_list(
        nir.Affine(w1, b1), nir.LIF(tau=np.full(30, 0.02), r=np.ones(30), v_leak=np.zeros(30),
                                    v_threshold=np.full(30, 0.5), v_reset=np.zeros(30)),
        nir.Affine(w2, b2), nir.LIF(tau=np.full(5, 0.01), r=np.ones(5), v_leak=np.zeros(5),
                                    v_threshold=np.full(5, 0.1), v_reset=np.zeros(5)))
    x = np.abs(rng.normal(0, 1.0, (250, 16)))
    lin1, lin2 = torch.nn.Linear(16, 30).double(), torch.nn.Linear(30, 5).double()
    with torch.no_grad():
        lin1.weight[:], lin1.bias[:] = torch.tensor(w1), torch.tensor(b1)
        lin2.weight[:], lin2.bias[:] = torch.tensor(w2), torch.tensor(b2)
    hidden, out = _norse_run([lin1, _lif_cell(torch.full((30,), 1 / 0.02, dtype=torch.float64), 0.5, torch.float64),
                              lin2, _lif_cell(torch.full((5,), 1 / 0.01, dtype=torch.float64), 0.1, torch.float64)],
                             x, torch.float64)
    result = run(lower(load_graph(write(graph)).graph, dt=DT, precision="float64"), x)
    assert hidden.sum() > 0 and out.sum() > 0
    assert np.array_equal(result.outputs["lif"][0], hidden)
    assert np.array_equal(result.outputs["lif_1"][0], out)
