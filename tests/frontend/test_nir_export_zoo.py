"""The zoo models (delay, adlif, spikformer) as NIR graphs: structure, round trip through a file, and the
simulator reproducing the PyTorch model spike for spike at float64 (no CLI: see tests/cli/test_pipeline_zoo.py)."""

from __future__ import annotations

import copy

import nir
import numpy as np
import pytest
import torch

from neurostack import sim
from neurostack.frontend.layers import AdLIFRecurrent, DelayedLinear
from neurostack.frontend.models import ModelConfig, build_model, calibrate_init
from neurostack.frontend.nir_export import model_to_nir, neuron_nodes, to_graph_layout, write_graph

DT = 1e-3


def _model(name: str, shape, steps: int, seed: int = 0, **kw):
    torch.manual_seed(seed)
    cfg = ModelConfig(name=name, input_shape=shape, n_classes=3, dt=DT, dropout=0.0, **kw)
    model = build_model(cfg)
    x = torch.rand(steps, 6, *shape)
    calibrate_init(model, x, 2.0)
    return model.eval(), x


def _round_trip(model, tmp_path) -> nir.NIRGraph:
    path = tmp_path / "m.nir"
    write_graph(model_to_nir(model, {"dt": DT}), path)
    return sim.load_graph(path).graph


def _check_parity(model, x, graph) -> int:
    """Run graph and model (both float64) on x (T, B, ...); every neuron node equal. Returns the spikes seen."""
    plan = sim.lower(graph, dt=DT, precision="float64")
    xs = np.swapaxes(x.double().numpy(), 0, 1)
    res = sim.run(plan, xs.reshape(*xs.shape[:2], *plan.input_shape), record_voltages=True)
    model = model.double()
    with torch.no_grad():
        readout, outs, volts = model.run(x.double(), record=True, record_voltages=True)
    spikes = 0
    for name, (kind, _) in neuron_nodes(model).items():
        ref = to_graph_layout(model, name, np.swapaxes(outs[name].numpy(), 0, 1))
        got = res.outputs[name].reshape(ref.shape)
        if kind == "LIF":
            np.testing.assert_array_equal(got, ref, err_msg=name)
        else:  # an LI's output is its voltage: equal up to float64 rounding
            np.testing.assert_allclose(got, ref, rtol=0, atol=1e-12, err_msg=name)
        ref_v = to_graph_layout(model, name, np.swapaxes(volts[name].numpy(), 0, 1))
        np.testing.assert_allclose(res.voltages[name].reshape(ref_v.shape), ref_v, rtol=0, atol=1e-12, err_msg=name)
        spikes += int(ref.sum()) if kind == "LIF" else 0
    np.testing.assert_allclose(res.outputs[model.stage_names[-1]], np.swapaxes(readout.numpy(), 0, 1), atol=1e-12)
    return spikes


# --------------------------------------------------------------------------------------------------- delay
def test_delay_exports_one_delay_branch_per_distinct_whole_step_delay(tmp_path):
    model, x = _model("delay", (8,), 30, hidden=(12, 10), max_delay=6, tau_mem=0.02)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, DelayedLinear):
                m.delay.uniform_(0, 5)  # fractional: export and evaluation both round
    graph = _round_trip(model, tmp_path)
    fc1 = model.stages[model.stage_names.index("fc1")]
    steps = fc1.integer_delays().numpy()
    weight = fc1.weight.detach().numpy()
    total = np.zeros_like(weight)
    for s in np.unique(steps):
        branch = graph.nodes[f"fc1_w{s}"]
        np.testing.assert_array_equal(branch.weight, np.where(steps == s, weight, 0))
        total += branch.weight
        if s == 0:
            assert "fc1_delay0" not in graph.nodes and ("input", "fc1_w0") in graph.edges
        else:
            delay = graph.nodes[f"fc1_delay{s}"]
            assert isinstance(delay, nir.Delay)
            np.testing.assert_allclose(delay.delay, s * DT)  # seconds, as NIR wants
            assert ("input", f"fc1_delay{s}") in graph.edges and (f"fc1_delay{s}", f"fc1_w{s}") in graph.edges
        assert (f"fc1_w{s}", "lif1") in graph.edges
    np.testing.assert_array_equal(total, weight)  # every synapse in exactly one branch
    first = graph.nodes[f"fc1_w{steps.min()}"]
    assert isinstance(first, nir.Affine) and np.array_equal(first.bias, fc1.bias.detach().numpy())
    assert _check_parity(model, x, graph) > 0


def test_delay_export_uses_the_rounded_delays_evaluation_uses(tmp_path):
    model, x = _model("delay", (4,), 20, hidden=(6,), max_delay=4)
    with torch.no_grad():
        fc1 = model.stages[0]
        fc1.delay.fill_(1.4)
        fc1.delay[0, 0] = 2.6
    graph = model_to_nir(model, {"dt": DT})
    assert set(graph.nodes) >= {"fc1_delay1", "fc1_delay3", "fc1_w1", "fc1_w3"} and "fc1_delay2" not in graph.nodes


def test_delay_batch_norm_folds_into_the_synapses(tmp_path):
    model, x = _model("delay", (8,), 30, hidden=(12, 10), max_delay=6, batch_norm=True)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, DelayedLinear):
                m.delay.uniform_(0, 5)
                n = m.out_features  # eval statistics and affine parameters far from the identity
                m.bn.running_mean.copy_(torch.randn(n) * 0.3)
                m.bn.running_var.copy_(torch.rand(n) * 2 + 0.2)
                m.bn.weight.copy_(torch.rand(n) + 0.5)
                m.bn.bias.copy_(torch.randn(n) * 0.2)
    graph = _round_trip(model, tmp_path)
    assert not any("bn" in name for name in graph.nodes)  # nothing but the usual Delay / Linear branches
    fc1 = model.stages[model.stage_names.index("fc1")]
    s, shift = (t.numpy() for t in fc1.bn_scale_shift())
    steps = fc1.integer_delays().numpy()
    total = sum(graph.nodes[f"fc1_w{d}"].weight for d in np.unique(steps))
    np.testing.assert_allclose(total, fc1.weight.detach().double().numpy() * s[:, None], rtol=1e-15)
    first = graph.nodes[f"fc1_w{steps.min()}"]
    np.testing.assert_allclose(first.bias, fc1.bias.detach().double().numpy() * s + shift, rtol=1e-12, atol=1e-15)
    assert _check_parity(model, x, graph) > 0


def test_delay_batch_norm_normalises_in_training_and_is_affine_in_eval():
    torch.manual_seed(0)
    layer = DelayedLinear(5, 4, max_delay=3, batch_norm=True)
    x = torch.rand(20, 8, 5) * 3
    y = layer.train()(x)
    np.testing.assert_allclose(y.reshape(-1, 4).mean(0).detach().numpy(), 0, atol=1e-5)
    layer.eval()
    s, shift = layer.bn_scale_shift()
    plain = DelayedLinear(5, 4, max_delay=3)
    plain.load_state_dict({k: v for k, v in layer.state_dict().items() if not k.startswith("bn.")})
    with torch.no_grad():
        np.testing.assert_allclose(layer(x).numpy(), (plain.eval()(x).double() * s + shift).numpy(), atol=1e-5)
    assert DelayedLinear(5, 4, max_delay=3).bn_scale_shift() is None


# --------------------------------------------------------------------------------------------------- adlif
def test_adlif_exports_lif_recurrence_and_adaptation_loop(tmp_path):
    model, x = _model("adlif", (8,), 40, hidden=(12, 10), tau_mem=0.01)
    graph = _round_trip(model, tmp_path)
    layer: AdLIFRecurrent = model.stages[model.stage_names.index("lif1")]
    with torch.no_grad():
        p = copy.deepcopy(layer).double().parameters_tuple()
    lif, rec, scale, adapt = (graph.nodes[n] for n in ("lif1", "rec1", "adapt1_in", "adapt1"))
    assert isinstance(lif, nir.LIF) and isinstance(rec, nir.Linear)
    assert isinstance(scale, nir.Scale) and isinstance(adapt, nir.LI)
    np.testing.assert_allclose(lif.tau, 1 / p.tau_mem_inv.numpy(), rtol=1e-15)
    np.testing.assert_allclose(adapt.tau, 1 / p.tau_adapt_inv.numpy(), rtol=1e-15)
    np.testing.assert_allclose(scale.scale, -p.b.numpy(), rtol=1e-15)
    np.testing.assert_array_equal(rec.weight, layer.rec.weight.detach().numpy())
    assert np.all(adapt.v_leak == 0) and np.all(adapt.r == 1)
    # the cycle, and lif1's inputs in the model's summation order: feed-forward, recurrent, adaptation
    into_lif = [a for a, b in graph.edges if b == "lif1"]
    assert into_lif == ["fc1", "rec1", "adapt1"]
    assert {("lif1", "rec1"), ("lif1", "adapt1_in"), ("adapt1_in", "adapt1")} <= set(graph.edges)
    assert _check_parity(model, x * 3, graph) > 0


def test_adlif_without_recurrence_has_no_recurrent_node(tmp_path):
    model, x = _model("adlif", (8,), 30, hidden=(10,), recurrent=False)
    graph = _round_trip(model, tmp_path)
    assert "rec1" not in graph.nodes and [a for a, b in graph.edges if b == "lif1"] == ["fc1", "adapt1"]
    _check_parity(model, x * 3, graph)


def test_zoo_graphs_pass_nirs_own_type_check(tmp_path):
    for name, shape, kw in (("delay", (8,), {"max_delay": 4}), ("adlif", (8,), {})):
        model, _ = _model(name, shape, 10, hidden=(6,), **kw)
        path = tmp_path / f"{name}.nir"
        write_graph(model_to_nir(model, {"dt": DT}), path)
        graph = nir.read(str(path), type_check=True)
        assert isinstance(graph.nodes["input"], nir.Input) and "output" in graph.nodes


# ---------------------------------------------------------------------------------------------- spikformer
def _spikformer(seed: int = 0, **kw):
    """A tiny spikformer whose every layer spikes: small BatchNorm variances (an untrained model with its initial
    statistics is silent after the first layer), and Q, K, V pushed up so that the attention sums reach the
    attention LIF's threshold."""
    model, x = _model("spikformer", (20, 8), 8, seed=seed, **{"hidden": (8,), "dim": 16, "depth": 2, "heads": 2,
                                                              "patch": 3, "patch_stride": 2, **kw})
    with torch.no_grad():
        for name, m in model.named_modules():
            if isinstance(m, torch.nn.BatchNorm1d):
                m.running_mean.zero_()
                m.running_var.fill_(0.01)
                if any(f"{part}_bn" in name for part in ("q", "k", "v")):
                    m.bias.fill_(3.0)
    return model, x * 4


def test_spikformer_exports_standard_nodes_and_one_attention_node_per_block(tmp_path):
    from neurostack.sim.extensions import ATTENTION_TYPE, SpikingSelfAttention, readers

    model, _ = _spikformer()
    graph = _round_trip(model, tmp_path)
    n_tokens = model.stages[0].n_tokens(20)  # (20 + 2 - 3) // 2 + 1 = 10
    assert n_tokens == 10
    assert tuple(graph.nodes["input"].input_type["input"]) == (1, 20, 8)  # the (frames, bins) image, one channel
    for k in (1, 2):
        attn = graph.nodes[f"b{k}_attn"]
        assert isinstance(attn, SpikingSelfAttention) and attn.NIR_TYPE == ATTENTION_TYPE
        assert (attn.q, attn.k, attn.v) == (f"b{k}_q_lif", f"b{k}_k_lif", f"b{k}_v_lif")
        assert attn.heads == 2 and attn.scale == 0.125 and tuple(attn.shape) == (16, n_tokens, 1)
        assert [a for a, b in graph.edges if b == f"b{k}_attn"] == [f"b{k}_q_lif", f"b{k}_k_lif", f"b{k}_v_lif"]
        q_fc = graph.nodes[f"b{k}_q_fc"]
        assert isinstance(q_fc, nir.Conv2d) and q_fc.weight.shape == (16, 16, 1, 1)  # per-token Linear: 1x1 conv
        np.testing.assert_array_equal(graph.nodes[f"b{k}_attn_lif"].v_threshold, 0.5)
    # residuals: block input + projection, then + MLP
    assert [a for a, b in graph.edges if b == "b1_res1"] == ["lif_embed", "b1_proj_lif"]
    assert [a for a, b in graph.edges if b == "block1"] == ["b1_res1", "b1_mlp2_lif"]
    assert [a for a, b in graph.edges if b == "b2_q_fc"] == ["block1"]
    assert isinstance(graph.nodes["pool"], nir.AvgPool2d) and isinstance(graph.nodes["fc_out"], nir.Affine)
    assert ATTENTION_TYPE in readers(graph) and "nir.read" in readers(graph)


def test_spikformer_batchnorm_is_folded_into_the_synapses(tmp_path):
    model, _ = _spikformer()
    graph = model_to_nir(model, {})
    blk = model.stages[model.stage_names.index("block1")]
    bn = blk.q_bn.bn
    f64 = lambda t: t.detach().double().numpy()  # noqa: E731 (the export folds in float64)
    s = f64(bn.weight) / np.sqrt(f64(bn.running_var) + bn.eps)
    w = blk.q_fc.weight.detach().double().numpy() * s[:, None]
    np.testing.assert_allclose(graph.nodes["b1_q_fc"].weight[:, :, 0, 0], w, rtol=1e-15)
    np.testing.assert_allclose(graph.nodes["b1_q_fc"].bias, bn.bias.detach().double().numpy(), rtol=1e-15)


@pytest.mark.parametrize("seed", [0, 1])
def test_spikformer_graph_reproduces_every_spike_at_float64(tmp_path, seed):
    model, x = _spikformer(seed)
    graph = _round_trip(model, tmp_path)
    assert _check_parity(model, x, graph) > 0
    # every block's attention drove spikes (the path through the extension node is exercised)
    with torch.no_grad():
        _, outs, _ = model.run(x.double(), record=True)  # _check_parity left the model in float64
    assert all(float(outs[f"b{k}_attn_lif"].sum()) > 0 for k in (1, 2))


def test_spikformer_with_a_position_embedding_is_refused():
    from neurostack.errors import NeurostackError

    model, _ = _model("spikformer", (10, 8), 2, hidden=(8,), dim=8, depth=1, heads=2, pos_embedding=True)
    with pytest.raises(NeurostackError, match="pos_embedding"):
        model_to_nir(model, {})


def test_spikformer_graph_imports_back_into_pytorch(tmp_path):
    from neurostack.frontend.nir_import import import_nir

    model, x = _spikformer()
    path = tmp_path / "sf.nir"
    write_graph(model_to_nir(model, {"dt": DT}), path)
    net = import_nir(path, dtype=torch.float64)
    model = model.double()
    with torch.no_grad():
        out, outs, _ = net.run(x.double()[:, :, None], record=True)  # the graph's input is (1, frames, bins)
        readout, ref, _ = model.run(x.double(), record=True)
    for name in ("b1_attn_lif", "b2_attn_lif", "b2_mlp2_lif"):
        expected = to_graph_layout(model, name, np.swapaxes(ref[name].numpy(), 0, 1))
        np.testing.assert_array_equal(np.swapaxes(outs[name].numpy(), 0, 1), expected, err_msg=name)
    torch.testing.assert_close(out, readout, rtol=0, atol=1e-12)


@pytest.mark.parametrize("name,missing", [("delay", "Delay, LI"), ("adlif", "LI, Scale")])
def test_the_readers_note_names_what_norse_and_snntorch_lack_and_they_do_fail(tmp_path, name, missing):
    from neurostack.sim.extensions import readers

    norse_torch = pytest.importorskip("norse.torch")
    snn_import = pytest.importorskip("snntorch.import_nir")
    model, _ = _model(name, (8,), 10, hidden=(6,), max_delay=4)
    path = tmp_path / f"{name}.nir"
    write_graph(model_to_nir(model, {"dt": DT}), path)
    note = readers(nir.read(str(path)))
    assert f"Norse 1.1.0 from_nir has no {missing}" in note
    assert f"snnTorch 1.0.0 import_from_nir has no {missing}" in note
    with pytest.raises(KeyError):
        norse_torch.from_nir(str(path))
    with pytest.raises(ValueError, match="Unknown node type"):
        snn_import.import_from_nir(nir.read(str(path)))
