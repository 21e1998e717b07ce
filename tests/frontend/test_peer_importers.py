"""Our exported graphs in other tools' NIR importers: Norse 1.1.0 `norse.torch.from_nir` and snnTorch 1.0.0
`snntorch.import_nir.import_from_nir` (not re-exported at the package top level in 1.0.0).

Each graph is written with nir.write and read back with nir.read (type_check=True), then run step by step in the
importer's module on the same input as our model. Measured with hidden 32, 5 classes, seed 0, inputs uniform in
[0, 1), data-dependent init (std 2), batch 4, csnn on a (1, 10, 16) image; T = 100 for Norse, 200 for snnTorch:

Norse from_nir (dt 1 ms, forward Euler, reset to value, strict threshold: the same as ours):
  - LIF layers: spikes identical to our model's (mlp lif1: 793 spikes, 0 mismatches; csnn lif_c1 / lif_c2 /
    lif1: 5031 / 1320 / 877 spikes, 0 mismatches).
  - the LI readout is silently dropped (no error, no log record): the module's output is the readout's input
    current (`fc_out`, bit for bit), not the LI voltage (max |difference| 6.9 on these inputs).
  - v_reset is ignored (LIFBoxParameters keeps its default 0): with v_reset = -0.5 in the file, Norse's hidden
    spikes are exactly those of a v_reset = 0 model (793) and differ from ours (641) in 748 of 12800 entries.
  - Flatten is passed to torch.nn.Flatten verbatim, but NIR's dims exclude the batch: a file with start_dim = 0
    makes it flatten the batch too, and a batch of 4 fails in the next Linear ("mat1 and mat2 shapes cannot be
    multiplied"). So our exporter writes start_dim = -len(input shape) (equally valid NIR, read the same way by
    nir and our simulator), and batches run, exact.

snnTorch import_from_nir:
  - rejects any graph with an LI node: ValueError "Unknown node type <class 'nir.ir.neuron.LI'>, mapping does
    not exist in node_map" (its node map has no LI), so neither our mlp nor our csnn loads as exported.
  - with the readout cut off (input -> ... -> lif1 -> output) it loads: each LIF becomes a Leaky with the
    hard-coded dt = 1e-4 s, beta = 1 - dt/tau = 0.98, and r*dt/tau = 0.02 folded into threshold = 1/0.02 = 50
    (it prints "[warning] scaling weights to avoid scaling inputs"); v_leak must be 0 and the threshold one value
    per layer (it asserts both). Reset is to zero in the same step (reset_delay=False), as in the spec.
  - so it runs our ODE with a step of 0.1 ms: its spikes equal our model rebuilt with dt = 1e-4 exactly (0
    mismatches in every layer) and have little to do with the model trained at 1 ms: mlp lif1 141 spikes
    against 1577; csnn lif_c1 / lif_c2 / lif1 (measured at batch 1) 240 / 5 / 19 against 2527 / 664 / 441.
  - dividing every tau by 10 in the file (not what the spec means: a workaround for its fixed dt) gives
    beta = 0.8 and threshold 5, and then every LIF spike equals the 1 ms model's (0 mismatches, mlp and csnn).
  - its Flatten has the same batch problem as Norse's with start_dim = 0 (not with our negative dims).
"""

from __future__ import annotations

import contextlib
import copy
import io

import nir
import numpy as np
import pytest
import torch

from neurostack.frontend.layers import LI, LIF
from neurostack.frontend.models import ModelConfig, build_model, calibrate_init, model_input_shape
from neurostack.frontend.nir_export import model_to_nir, write_graph

norse_torch = pytest.importorskip("norse.torch")
snn_import = pytest.importorskip("snntorch.import_nir")

STEPS = 100


def _model(name: str, steps: int = STEPS, batch: int = 4):
    torch.manual_seed(0)
    shape = model_input_shape(name, "image", 10, 16, 16)
    cfg = ModelConfig(name=name, input_shape=shape, n_classes=5, hidden=(32,), channels=(4, 8), dropout=0.0)
    model = build_model(cfg).eval()
    x = torch.rand(steps, batch, *shape)
    calibrate_init(model, x, target_std=2.0)
    return cfg, model, x


def _through_file(graph: nir.NIRGraph, tmp_path, name: str = "g.nir") -> nir.NIRGraph:
    path = tmp_path / name
    write_graph(graph, path)
    return nir.read(str(path))


def _record(model, x) -> dict[str, torch.Tensor]:
    with torch.no_grad():
        _, outs, _ = model.run(x, record=True)
    return outs


def _with_dt(model, dt: float):
    """The same model (weights, taus) integrated with another time step."""
    other = copy.deepcopy(model)
    for stage in other.stages:
        if isinstance(stage, (LIF, LI)):
            stage.dt = dt
    return other


def _step_through(module, x: torch.Tensor, names: list[str], stateful: bool) -> tuple[torch.Tensor, dict]:
    """Run an imported module one step at a time; its output and the named submodules' spikes, (T, B, ...)."""
    rec: dict[str, list] = {n: [] for n in names}

    def keep(n):
        return lambda m, i, o: rec[n].append((o[0] if isinstance(o, tuple) else o).detach())

    hooks = [getattr(module, n).register_forward_hook(keep(n)) for n in names]
    state, outs = None, []
    with torch.no_grad():
        for t in range(x.shape[0]):
            out, state = module(x[t], state) if stateful else module(x[t])
            outs.append(out)
    for h in hooks:
        h.remove()
    return torch.stack(outs), {n: torch.stack(v) for n, v in rec.items()}


def _lif_names(model) -> list[str]:
    return [n for n, s in zip(model.stage_names, model.stages) if isinstance(s, LIF)]


def _without_readout(graph: nir.NIRGraph, last: str = "lif1") -> nir.NIRGraph:
    """input -> ... -> `last` -> output: the exported chain with the fc_out / li_out readout cut off."""
    nodes, edges = {}, []
    for a, b in graph.edges:
        nodes[a] = graph.nodes[a]
        if a == last:
            break
        edges.append((a, b))
    n = int(graph.nodes[last].tau.size)
    nodes["output"] = nir.Output(output_type={"output": np.array([n])})
    return nir.NIRGraph(nodes=nodes, edges=edges + [(last, "output")])


def _snn_import(graph: nir.NIRGraph):
    with contextlib.redirect_stdout(io.StringIO()) as printed:  # snnTorch prints its warnings
        module = snn_import.import_from_nir(graph)
    return module, printed.getvalue()


# ------------------------------------------------------------------------------------------------ Norse
def test_norse_mlp_reproduces_hidden_spikes_and_drops_the_li_readout(tmp_path, caplog):
    """Hidden spikes exact; the LI node vanishes without a word and the output is fc_out's current."""
    cfg, model, x = _model("mlp")
    ref = _record(model, x)
    with caplog.at_level("WARNING"):
        module = norse_torch.from_nir(_through_file(model_to_nir(model, {"dt": cfg.dt}), tmp_path))
    assert not [r for r in caplog.records if r.levelname == "WARNING"]
    children = dict(module.named_children())
    assert "li_out" not in children and "lif1" in children
    out, spikes = _step_through(module, x, ["lif1"], stateful=True)
    assert ref["lif1"].sum() > 0
    assert torch.equal(spikes["lif1"], ref["lif1"])
    assert torch.equal(out, ref["fc_out"])  # the readout's input current, not its voltage
    assert (out - ref["li_out"]).abs().max() > 1.0  # measured: 6.9


def test_norse_ignores_v_reset(tmp_path):
    """A file with v_reset = -0.5 runs as if v_reset were 0."""
    cfg, model, x = _model("mlp")
    reset_to_zero = _record(model, x)["lif1"]
    model.stages[model.stage_names.index("lif1")].v_reset.fill_(-0.5)
    ours = _record(model, x)["lif1"]
    graph = _through_file(model_to_nir(model, {"dt": cfg.dt}), tmp_path)
    assert np.all(graph.nodes["lif1"].v_reset == -0.5)
    _, spikes = _step_through(norse_torch.from_nir(graph), x, ["lif1"], stateful=True)
    assert torch.equal(spikes["lif1"], reset_to_zero)
    mismatches = int((spikes["lif1"] != ours).sum())
    assert mismatches > 0.02 * ours.numel()  # measured: 748 of 12800 (step, sample, neuron) entries


def test_norse_csnn_spikes_exact(tmp_path):
    """Conv2d + LIF layers reproduce exactly at batch 4. (Our Flatten is written with negative dims, the same NIR
    semantics as start_dim=0; Norse passes the dims to torch.nn.Flatten verbatim, where start_dim=0 would flatten
    the batch too and fail with "mat1 and mat2 shapes cannot be multiplied" at any batch above 1.)"""
    cfg, model, x = _model("csnn")
    ref = _record(model, x)
    lifs = _lif_names(model)
    assert x.shape[1] > 1
    module = norse_torch.from_nir(_through_file(model_to_nir(model, {"dt": cfg.dt}), tmp_path))
    _, spikes = _step_through(module, x, lifs, stateful=True)
    for name in lifs:
        assert ref[name].sum() > 0
        assert torch.equal(spikes[name], ref[name]), name


# ------------------------------------------------------------------------------------------------ snnTorch
@pytest.mark.parametrize("name", ["mlp", "csnn"])
def test_snntorch_rejects_the_li_readout(tmp_path, name):
    cfg, model, _ = _model(name, steps=2)
    graph = _through_file(model_to_nir(model, {"dt": cfg.dt}), tmp_path)
    with pytest.raises(ValueError, match=r"Unknown node type <class 'nir\.ir\.neuron\.LI'>"):
        _snn_import(graph)


@pytest.mark.parametrize("name", ["mlp", "csnn"])
def test_snntorch_runs_our_lif_layers_at_its_fixed_dt_of_0_1_ms(tmp_path, name):
    """Readout cut off: snnTorch's spikes are exactly our model's with dt = 1e-4 s, not with the 1 ms we trained at."""
    cfg, model, x = _model(name, steps=200)
    lifs = _lif_names(model)
    module, printed = _snn_import(_through_file(_without_readout(model_to_nir(model, {"dt": cfg.dt})), tmp_path))
    assert "scaling weights to avoid scaling inputs" in printed
    for lif in lifs:
        neuron = getattr(module, lif)
        assert torch.allclose(neuron.beta, torch.tensor(0.98)) and float(neuron.threshold) == pytest.approx(50.0)
    _, spikes = _step_through(module, x, lifs, stateful=False)
    at_0_1_ms, at_1_ms = _record(_with_dt(model, 1e-4), x), _record(model, x)
    for lif in lifs:
        got = spikes[lif].reshape(at_1_ms[lif].shape)
        assert torch.equal(got, at_0_1_ms[lif]), lif
        assert got.sum() < 0.2 * at_1_ms[lif].sum(), lif  # measured: mlp 141 spikes against 1577


@pytest.mark.parametrize("name", ["mlp", "csnn"])
def test_snntorch_matches_the_1_ms_model_when_taus_are_divided_by_ten(tmp_path, name):
    """A workaround, not the spec: tau/10 in the file makes snnTorch's beta = 1 - 1e-4/(tau/10) = 0.8 and threshold
    5, i.e. our 1 ms Euler step (scaled by 5); measured: every LIF spike identical."""
    cfg, model, x = _model(name, steps=200)
    graph = _without_readout(model_to_nir(model, {"dt": cfg.dt}))
    for node in graph.nodes.values():
        if isinstance(node, nir.LIF):
            node.tau = node.tau * (1e-4 / cfg.dt)
    module, _ = _snn_import(_through_file(graph, tmp_path))
    lifs = _lif_names(model)
    _, spikes = _step_through(module, x, lifs, stateful=False)
    ref = _record(model, x)
    for lif in lifs:
        assert ref[lif].sum() > 0
        assert torch.equal(spikes[lif].reshape(ref[lif].shape), ref[lif]), lif


def test_flatten_from_dim_0_swallows_the_batch_in_both_importers_but_ours_does_not(tmp_path):
    """Why the exporter writes Flatten with negative dims (see the module docstring)."""
    cfg, model, x = _model("csnn", steps=2)
    ours = _without_readout(model_to_nir(model, {"dt": cfg.dt}))
    assert ours.nodes["flatten"].start_dim < 0
    from_zero = copy.deepcopy(ours)
    shape = np.asarray(from_zero.nodes["flatten"].input_type["input"])
    from_zero.nodes["flatten"] = nir.Flatten(input_type={"input": shape}, start_dim=0, end_dim=-1)
    module, _ = _snn_import(_through_file(from_zero, tmp_path, "zero.nir"))
    with pytest.raises(RuntimeError, match="mat1 and mat2 shapes cannot be multiplied"):
        _step_through(module, x, [], stateful=False)
    module, _ = _snn_import(_through_file(ours, tmp_path, "ours.nir"))
    out, _ = _step_through(module, x, [], stateful=False)
    assert out.shape[1] == x.shape[1]
