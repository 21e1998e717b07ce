"""NIR -> PyTorch import (neurostack.frontend.nir_import): our own graphs come back as the model they were, the
module and the simulator agree spike for spike, files are read tolerantly, and unknown nodes are errors."""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import h5py
import nir
import numpy as np
import pytest
import torch

from neurostack.errors import NeurostackError
from neurostack.frontend.models import ModelConfig, build_model, calibrate_init, model_input_shape
from neurostack.frontend.nir_export import model_to_nir, write_graph
from neurostack.frontend.nir_import import NIRNetwork, import_nir
from neurostack.sim import load_graph, lower, run

SHARED = Path(os.environ.get("NEUROSTACK_SHARED", Path(__file__).resolve().parents[2].parent / "shared"))
HANDWRITTEN = SHARED / "nir-graphs" / "handwritten"


def _trained_shape_model(name: str, seed: int = 0, steps: int = 40, batch: int = 3):
    """A model shaped like a trained one (image view, dropout in the config, data-dependent init)."""
    torch.manual_seed(seed)
    shape = model_input_shape(name, "image", 10, 16, 16)
    cfg = ModelConfig(name=name, input_shape=shape, n_classes=5, hidden=(32,), channels=(4, 8), dropout=0.3)
    model = build_model(cfg).eval()
    x = torch.rand(steps, batch, *shape)
    calibrate_init(model, x, target_std=2.0)
    return cfg, model, x


@pytest.mark.parametrize("name", ["mlp", "csnn"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_exported_model_comes_back_bit_for_bit(tmp_path, name, dtype):
    """Every stage's output (currents, spikes, LI voltages) and every membrane is identical, float32 and float64.

    Exact, not approximate, because the module repeats the model's floating-point operations: an acyclic graph
    runs node by node over the whole sequence, so Affine/Conv see the same (T*B, ...) batch as the model's
    TimeDistributed (a per-step batch changes the matmul's summation order for large layers); LIF/LI use the
    same lif_step/li_step; and tau_mem_inv = 1/tau comes back as the model's float32 value (float64 snapped).
    """
    cfg, model, x = _trained_shape_model(name)
    path = tmp_path / "m.nir"
    write_graph(model_to_nir(model, {"dt": cfg.dt}), path)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # our own files need no repair
        net = import_nir(path, dtype=dtype)
    assert isinstance(net, NIRNetwork) and net.dt == cfg.dt and net.warnings == [] and not net.cyclic
    model, x = model.to(dtype), x.to(dtype)
    with torch.no_grad():
        ref, ref_outs, ref_volts = model.run(x, record=True, record_voltages=True)
        out, outs, volts = net.run(x, record=True, record_voltages=True)
    assert torch.equal(out, ref)
    stages = [n for n in model.stage_names if not n.startswith("drop")]
    assert set(stages) <= set(outs)
    for stage in stages:
        assert torch.equal(outs[stage], ref_outs[stage]), stage
    for stage in ref_volts:  # LIF membranes after reset, LI voltages
        assert torch.equal(volts[stage], ref_volts[stage]), stage
    lifs = [n for n in stages if n.startswith("lif")]
    assert all(ref_outs[n].sum() > 0 for n in lifs)  # every layer spikes: the comparison means something


def test_gradients_flow_through_the_imported_module():
    """Synapses are parameters and spikes have a surrogate gradient, so an imported graph can be fine-tuned."""
    cfg, model, x = _trained_shape_model("mlp")
    net = import_nir(model_to_nir(model, {"dt": cfg.dt}))
    net(x).max(dim=0).values.sum().backward()
    grads = [p.grad for p in net.parameters()]
    assert grads and all(g is not None and torch.isfinite(g).all() for g in grads)
    assert any(g.abs().sum() > 0 for g in grads)


@pytest.mark.skipif(not HANDWRITTEN.is_dir(), reason=f"no peer fixtures under {HANDWRITTEN}")
@pytest.mark.parametrize("fixture", ["recurrent_lif_delay", "recurrent_lif_delay_params"])
@pytest.mark.parametrize("precision", ["float32", "float64"])
def test_module_and_simulator_agree_on_handwritten_fixture(fixture, precision):
    """Recurrent LIF (a cycle through a Linear), a Delay node, per-neuron r / v_leak / v_threshold / v_reset:
    the module, the simulator (spec convention) and the fixture's own reference give the same spikes, and the
    membranes agree with the simulator's to rounding (exactly, as measured)."""
    folder = HANDWRITTEN / fixture
    x = np.load(folder / "input.npy")
    expected = np.load(folder / "expected.npz")
    dtype = torch.float64 if precision == "float64" else torch.float32
    net = import_nir(folder / "graph.nir", dt=1e-3, dtype=dtype)
    assert net.cyclic
    with torch.no_grad():
        _, outs, volts = net.run(torch.tensor(x, dtype=dtype)[:, None], record=True, record_voltages=True)
    sim = run(lower(load_graph(folder / "graph.nir").graph, dt=1e-3, precision=precision), x, record_voltages=True)
    for key in ("lif", "delay", "lif_out"):
        got = outs[key][:, 0].numpy()
        np.testing.assert_array_equal(got, expected[key], err_msg=key)
        np.testing.assert_array_equal(got, sim.outputs[key][0], err_msg=key)
    for key in ("lif", "lif_out"):
        np.testing.assert_allclose(volts[key][:, 0].numpy(), sim.voltages[key][0], rtol=0, atol=1e-12 if
                                   precision == "float64" else 1e-6)


def _every_primitive_graph() -> nir.NIRGraph:
    """Conv2d -> IF -> SumPool2d (padded) -> AvgPool2d -> Flatten -> Affine -> CubaLIF -> Scale -> Linear ->
    CubaLI -> I -> Threshold, per-neuron parameters, Input declared with a batch dim."""
    rng = np.random.default_rng(3)
    u = lambda lo, hi, *shape: rng.uniform(lo, hi, shape)  # noqa: E731
    nodes = {
        "input": nir.Input(input_type={"input": np.array([1, 1, 4, 6])}),
        "conv": nir.Conv2d(input_shape=(4, 6), weight=rng.normal(0.4, 0.5, (3, 1, 3, 3)), stride=1, padding=1,
                           dilation=1, groups=1, bias=rng.normal(0, 0.1, 3)),
        "if": nir.IF(r=u(200, 400, 3, 4, 6), v_threshold=u(0.5, 1.5, 3, 4, 6), v_reset=u(-0.2, 0, 3, 4, 6)),
        "pool": nir.SumPool2d(kernel_size=np.array([2, 2]), stride=np.array([2, 2]), padding=np.array([1, 1])),
        "avg": nir.AvgPool2d(kernel_size=np.array([2, 2]), stride=np.array([1, 1]), padding=np.array([0, 0])),
        "flat": nir.Flatten(input_type={"input": np.array([3, 2, 3])}, start_dim=0, end_dim=-1),
        "fc": nir.Affine(rng.normal(0.3, 0.6, (10, 18)), rng.normal(0, 0.1, 10)),
        "cuba": nir.CubaLIF(tau_syn=u(0.002, 0.01, 10), tau_mem=u(0.005, 0.02, 10), r=u(0.5, 1.5, 10),
                            v_leak=u(-0.1, 0.1, 10), v_threshold=u(0.3, 0.6, 10), v_reset=np.zeros(10),
                            w_in=u(0.5, 1.5, 10)),
        "scale": nir.Scale(u(0.5, 1.5, 10)),
        "fc2": nir.Linear(rng.normal(0.3, 0.6, (5, 10))),
        "cubali": nir.CubaLI(tau_syn=u(0.002, 0.01, 5), tau_mem=u(0.005, 0.02, 5), r=u(0.5, 1.5, 5),
                             v_leak=u(-0.1, 0.1, 5), w_in=u(0.5, 1.5, 5)),
        "integ": nir.I(r=u(50, 100, 5)),
        "thr": nir.Threshold(threshold=u(0, 0.5, 5)),
        "output": nir.Output(output_type={"output": np.array([5])}),
    }
    names = list(nodes)
    return nir.NIRGraph(nodes=nodes, edges=list(zip(names[:-1], names[1:])), type_check=False)


def test_every_primitive_agrees_with_the_simulator():
    """All primitives the simulator runs, in float64: identical spikes (IF, CubaLIF, Threshold) and values equal
    to rounding (the simulator's event-driven sums add in another order than PyTorch's matmul)."""
    graph = _every_primitive_graph()
    rng = np.random.default_rng(4)
    x = (rng.random((60, 1, 4, 6)) < 0.5).astype(np.float64)
    with pytest.warns(UserWarning, match="stripped batch dim from Input"):
        net = import_nir(graph, dt=1e-3, dtype=torch.float64)
    assert net.input_shape == (1, 4, 6)
    with torch.no_grad():
        _, outs, volts = net.run(torch.tensor(x)[:, None], record=True, record_voltages=True)
    sim = run(lower(graph, dt=1e-3, precision="float64"), x, record_voltages=True)
    assert set(sim.outputs) == set(outs)
    for key, ref in sim.outputs.items():
        got = outs[key][:, 0].numpy()
        if net.node_types[key] in ("IF", "CubaLIF", "Threshold"):
            assert ref.sum() > 0, key
            np.testing.assert_array_equal(got, ref[0], err_msg=key)
        else:
            np.testing.assert_allclose(got, ref[0], rtol=0, atol=1e-12, err_msg=key)
    for key, ref in sim.voltages.items():
        np.testing.assert_allclose(volts[key][:, 0].numpy(), ref[0], rtol=0, atol=1e-12, err_msg=key)


def test_graph_object_is_left_untouched():
    graph = _every_primitive_graph()
    with pytest.warns(UserWarning):
        import_nir(graph, dt=1e-3)
    assert tuple(graph.nodes["input"].input_type["input"]) == (1, 1, 4, 6)


# ------------------------------------------------------------------------------------------------ tolerance
def _write(tmp_path, graph, name="g.nir") -> Path:
    path = tmp_path / name
    nir.write(str(path), graph)
    return path


def _small_graph() -> nir.NIRGraph:
    n = 3
    return nir.NIRGraph.from_list(nir.Affine(np.ones((n, 2)), np.zeros(n)),
                                  nir.LIF(tau=np.full(n, 0.01), r=np.ones(n), v_leak=np.zeros(n),
                                          v_threshold=np.ones(n), v_reset=np.zeros(n)))


def test_old_file_without_v_reset_and_missing_dt_are_repaired_with_a_warning(tmp_path):
    path = _write(tmp_path, _small_graph())
    with h5py.File(path, "r+") as f:
        del f["node/nodes/lif/v_reset"]
    with pytest.warns(UserWarning, match="added v_reset=0.*graph carries no dt"):
        net = import_nir(path)
    assert net.dt == 1e-3 and any("v_reset" in w for w in net.warnings)
    out = net(torch.full((20, 1, 2), 1.0))
    assert out.shape == (20, 1, 3) and out.sum() > 0


def test_scalar_parameter_is_broadcast_with_a_warning(tmp_path):
    path = _write(tmp_path, _small_graph())
    with h5py.File(path, "r+") as f:  # a 0-d tau, as Norse 1.1.0 writes scalar parameters
        del f["node/nodes/lif/tau"]
        f["node/nodes/lif/tau"] = np.float64(0.01)
    with pytest.warns(UserWarning, match="broadcast scalar tau of node 'lif'"):
        net = import_nir(path, dt=1e-3)
    assert net.shapes["lif"] == (3,)
    assert torch.equal(net.nodes[net.node_names.index("lif")].tau_mem_inv, torch.full((3,), 100.0))


@pytest.mark.skipif(not (SHARED / "nir-graphs" / "norse").is_dir(), reason="no Norse fixture")
def test_norse_file_needing_type_check_false_loads_with_a_warning():
    with pytest.warns(UserWarning, match="type_check=False.*stripped batch dim"):
        net = import_nir(SHARED / "nir-graphs" / "norse" / "lifbox_mlp" / "graph.nir")
    assert net.input_shape == (12,) and net.output_shape == (4,)


# ------------------------------------------------------------------------------------------------ errors
class _Mystery(nir.NIRNode):
    """A node type neither NIR's reader nor neurostack knows."""

    def __init__(self):
        self.input_type = {"input": np.array([3])}
        self.output_type = {"output": np.array([3])}
        self.metadata = {}


def test_unsupported_nodes_are_errors_naming_every_one():
    graph = _small_graph()
    graph.nodes["odd1"], graph.nodes["odd2"] = _Mystery(), _Mystery()
    graph.edges = [("input", "affine"), ("affine", "odd1"), ("odd1", "odd2"), ("odd2", "lif"), ("lif", "output")]
    with pytest.raises(NeurostackError, match=r"'odd1' \(_Mystery\), 'odd2' \(_Mystery\)"):
        import_nir(graph, dt=1e-3)


def test_unknown_type_in_a_file_is_an_error_naming_the_node(tmp_path):
    path = _write(tmp_path, _small_graph())
    with h5py.File(path, "r+") as f:
        del f["node/nodes/lif/type"]
        f["node/nodes/lif/type"] = b"Mystery"
    with pytest.raises(NeurostackError, match="node 'lif' has unknown NIR type"):
        import_nir(path)


def test_shape_mismatch_and_bad_input_are_errors(tmp_path):
    graph = _small_graph()
    graph.nodes["affine"] = nir.Affine(np.ones((4, 2)), np.zeros(4))  # 4 outputs into a LIF of 3
    with pytest.raises(NeurostackError, match="affine"):
        import_nir(graph, dt=1e-3)
    net = import_nir(_small_graph(), dt=1e-3)
    with pytest.raises(NeurostackError, match=r"expected \(T, B, 2\)"):
        net(torch.zeros(5, 2))
    with pytest.raises(NeurostackError, match="no such file"):
        import_nir(tmp_path / "missing.nir")
    with pytest.raises(NeurostackError, match="dt must be a positive"):
        import_nir(_small_graph(), dt=0.0)
