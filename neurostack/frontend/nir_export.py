"""A trained model -> a NIR graph written to the NIR spec (nir 1.0.8).

What we write (and Norse 1.1.0's own `to_nir` gets wrong): time constants in seconds (tau = 1/tau_mem_inv,
stored as float64 so a float64 simulation reproduces the model's dt/tau exactly), per-neuron parameter arrays,
no batch dimension, `v_reset` and `r` always set. The graph's metadata carries, as one JSON string under
"neurostack", everything `neurostack simulate` needs to rebuild the inputs and read the answer: dt, the
discretisation convention, the data set and feature/encoder description, the readout rule and class names.

How each model maps (dt the model's step, in seconds; node names are the model's stage names):
  mlp, csnn   Affine / Conv1d / Conv2d / Flatten -> LIF per stage, Affine -> LI readout (one node per stage).
  delay       each DelayedLinear `fc_k` with whole-step delays d[o, i] (rounded as evaluation rounds them) becomes one
              branch per distinct delay s: Delay(s * dt) `fc_k_delay{s}` (left out for s = 0) -> Linear `fc_k_w{s}`
              holding the weights of the synapses with delay s (zeros elsewhere; the first branch is an Affine
              with the bias); the LIF sums the branches:  I[t] = b + sum_s W_s x[t - s] = the model's
              b + sum_i W[o, i] x[t - d[o, i], i]. With `batch_norm` the eval BatchNorm (s y + shift per output)
              is folded in, in float64: W' = s W, b' = s b + shift.
  adlif       AdLIFRecurrent `lif_k` becomes the cycle  fc_k -> LIF lif_k -> Linear rec_k (W_rec) -> lif_k  and
              lif_k -> Scale adapt_k_in (-b) -> LI adapt_k (tau_adapt, r = 1, v_leak = 0) -> lif_k. Back edges read
              the previous step, so lif_k's input at step t is (ff_t + W_rec z_{t-1}) + a_t, summed in that
              (file) order, and a_{t+1} = a_t + dt/tau_adapt ((0 - a_t) + (-b z_t)): `functional.adlif_step`
              term for term. Parameters come from the layer evaluated in float64 (`parameters_tuple`).
  spikformer  see `nir_spikformer` (standard primitives plus one neurostack.SpikingSelfAttention node per block).
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

import nir
import numpy as np
import torch
from torch import nn

from neurostack import __version__
from neurostack.atomic import write_with
from neurostack.errors import NeurostackError
from neurostack.frontend.layers import LI, LIF, AdLIFRecurrent, DelayedLinear, TimeDistributed
from neurostack.frontend.models import SpikingClassifier

METADATA_KEY = "neurostack"


def _np(t: torch.Tensor, dtype=np.float32) -> np.ndarray:
    return t.detach().cpu().numpy().astype(dtype)


class GraphBuilder:
    """Nodes and edges in the order they are added (the file order: a node sums its inputs in edge order)."""

    def __init__(self) -> None:
        self.nodes: dict[str, nir.NIRNode] = {}
        self.edges: list[tuple[str, str]] = []

    def add(self, name: str, node: nir.NIRNode, sources: list[str]) -> list[str]:
        """Add `node` fed by `sources` (summed); returns [name], the sources of what comes next."""
        if name in self.nodes:
            raise NeurostackError(f"export: two NIR nodes named '{name}'")
        self.nodes[name] = node
        self.edges += [(s, name) for s in sources]
        return [name]

    def graph(self, metadata: dict) -> nir.NIRGraph:
        return nir.NIRGraph(nodes=self.nodes, edges=self.edges, metadata={METADATA_KEY: json.dumps(metadata)})


def _stage_to_node(stage: nn.Module, in_shape: tuple[int, ...]) -> nir.NIRNode:
    if isinstance(stage, TimeDistributed):
        m = stage.module
        if isinstance(m, nn.Linear):
            bias = _np(m.bias) if m.bias is not None else np.zeros(m.out_features, np.float32)
            return nir.Affine(weight=_np(m.weight), bias=bias)
        if isinstance(m, nn.Conv1d):
            bias = _np(m.bias) if m.bias is not None else np.zeros(m.out_channels, np.float32)
            return nir.Conv1d(input_shape=int(in_shape[-1]), weight=_np(m.weight), stride=int(m.stride[0]),
                              padding=int(m.padding[0]), dilation=int(m.dilation[0]), groups=int(m.groups), bias=bias)
        if isinstance(m, nn.Conv2d):
            bias = _np(m.bias) if m.bias is not None else np.zeros(m.out_channels, np.float32)
            return nir.Conv2d(input_shape=tuple(int(s) for s in in_shape[-2:]), weight=_np(m.weight),
                              stride=tuple(m.stride), padding=tuple(m.padding), dilation=tuple(m.dilation),
                              groups=int(m.groups), bias=bias)
        if isinstance(m, nn.Flatten):
            # negative dims: the same NIR semantics as start_dim=0 (NIR dims exclude the batch), but Norse's and
            # snnTorch's importers hand them to torch.nn.Flatten as they are, where 0 would flatten the batch too
            return nir.Flatten(input_type={"input": np.array(in_shape)}, start_dim=-len(in_shape), end_dim=-1)
    if isinstance(stage, LIF):
        return nir.LIF(tau=1.0 / _np(stage.tau_mem_inv, np.float64), r=np.ones(stage.shape, np.float32),
                       v_leak=_np(stage.v_leak), v_threshold=_np(stage.v_th), v_reset=_np(stage.v_reset))
    if isinstance(stage, LI):
        return nir.LI(tau=1.0 / _np(stage.tau_mem_inv, np.float64), r=np.ones(stage.shape, np.float32),
                      v_leak=_np(stage.v_leak))
    raise NeurostackError(f"cannot export a {type(stage).__name__} stage to NIR")


def _delayed_linear(b: GraphBuilder, name: str, stage: DelayedLinear, sources: list[str], dt: float) -> list[str]:
    """One Delay -> Linear branch per distinct whole-step delay (see the module docstring); returns the branches."""
    steps = stage.integer_delays().cpu().numpy()  # (n_out, n_in), what evaluation uses
    weight = _np(stage.weight)
    bias = _np(stage.bias) if stage.bias is not None else np.zeros(stage.out_features, np.float32)
    folded = stage.bn_scale_shift()
    if folded is not None:  # eval BatchNorm s y + shift folds in, in float64 (as spikformer's BN)
        s64, shift = (t.cpu().numpy() for t in folded)
        weight = weight.astype(np.float64) * s64[:, None]
        bias = bias.astype(np.float64) * s64 + shift
    branches: list[str] = []
    for s in np.unique(steps).tolist():
        src = sources
        if s > 0:
            src = b.add(f"{name}_delay{s}", nir.Delay(delay=np.full(stage.in_features, s * dt, np.float64)), sources)
        w = np.where(steps == s, weight, weight.dtype.type(0))
        if not branches:
            node = nir.Affine(weight=w, bias=bias)
        else:
            node = nir.Linear(weight=w)
        branches += b.add(f"{name}_w{s}", node, src)
    return branches


def _adlif(b: GraphBuilder, stage: AdLIFRecurrent, sources: list[str]) -> list[str]:
    """The adaptive recurrent layer as LIF + recurrent Linear + Scale(-b) -> LI cycle (see the module docstring)."""
    p = copy.deepcopy(stage).double().parameters_tuple()  # float64, as a float64 parity run computes them
    n = stage.shape
    f64 = lambda t: t.detach().cpu().numpy().astype(np.float64)  # noqa: E731
    lif = stage.lif_name
    b.add(lif, nir.LIF(tau=1.0 / f64(p.tau_mem_inv), r=np.ones(n, np.float32), v_leak=_np(p.v_leak),
                       v_threshold=_np(p.v_th), v_reset=_np(p.v_reset)), sources)
    if stage.rec is not None:
        b.add(stage.rec_name, nir.Linear(weight=_np(stage.rec.weight)), [lif])
        b.edges.append((stage.rec_name, lif))
    b.add(f"{stage.adapt_name}_in", nir.Scale(scale=-f64(p.b)), [lif])
    b.add(stage.adapt_name, nir.LI(tau=1.0 / f64(p.tau_adapt_inv), r=np.ones(n, np.float32),
                                   v_leak=np.zeros(n, np.float32)), [f"{stage.adapt_name}_in"])
    b.edges.append((stage.adapt_name, lif))
    return [lif]


def model_to_nir(model: SpikingClassifier, metadata: dict) -> nir.NIRGraph:
    """The model as a NIR graph: input -> stages in order (dropout left out) -> output."""
    if model.config.name == "spikformer":
        from neurostack.frontend.nir_spikformer import spikformer_to_nir

        return spikformer_to_nir(model, metadata)
    in_shape = tuple(model.config.input_shape)
    b = GraphBuilder()
    sources = b.add("input", nir.Input(input_type={"input": np.array(in_shape)}), [])
    shape = in_shape
    with torch.no_grad():
        for name, stage in zip(model.stage_names, model.stages):
            if isinstance(stage, nn.Dropout):
                continue
            if isinstance(stage, DelayedLinear):
                sources = _delayed_linear(b, name, stage, sources, float(model.config.dt))
            elif isinstance(stage, AdLIFRecurrent):
                sources = _adlif(b, stage, sources)
            else:
                sources = b.add(name, _stage_to_node(stage, shape), sources)
            shape = tuple(int(s) for s in _output_shape(stage, shape))
    b.add("output", nir.Output(output_type={"output": np.array(shape)}), sources)
    return b.graph(metadata)


def _output_shape(stage: nn.Module, in_shape: tuple[int, ...]) -> tuple[int, ...]:
    if isinstance(stage, (LIF, LI, AdLIFRecurrent)):
        return tuple(stage.shape)
    if isinstance(stage, DelayedLinear):
        return (stage.out_features,)
    with torch.no_grad():
        dtype = next((p.dtype for p in stage.parameters()), torch.float32)  # a float64 model exports too
        x = torch.zeros(1, 1, *in_shape, dtype=dtype)
        return tuple(stage(x).shape[2:])


def neuron_nodes(model: SpikingClassifier) -> dict[str, tuple[str, np.ndarray | None]]:
    """The exported graph's neuron nodes that the model records: name -> ("LIF", threshold) or ("LI", None), in
    execution order, thresholds (float64) in the graph's layout (what parity compares node by node)."""
    if model.config.name == "spikformer":
        from neurostack.frontend.nir_spikformer import spikformer_neurons

        return spikformer_neurons(model)
    found: dict[str, tuple[str, np.ndarray | None]] = {}
    for name, stage in zip(model.stage_names, model.stages):
        if isinstance(stage, LIF):
            found[name] = ("LIF", _np(stage.v_th, np.float64))
        elif isinstance(stage, LI):
            found[name] = ("LI", None)
        elif isinstance(stage, AdLIFRecurrent):
            found[stage.lif_name] = ("LIF", _np(stage.v_th, np.float64))
            found[stage.adapt_name] = ("LI", None)
    return found


def to_graph_layout(model: SpikingClassifier, name: str, values: np.ndarray) -> np.ndarray:
    """A recording of node `name` from `model.run`, (N, T, *model shape), in the exported graph's layout."""
    if model.config.name == "spikformer":
        from neurostack.frontend.nir_spikformer import token_layout

        return token_layout(values)
    return values


def readout_rule(model: SpikingClassifier) -> dict:
    """The metadata's readout: the node whose output over time gives the class scores, and how."""
    node = model.stage_names[-1]
    return {"node": node, "rule": "mean_over_time" if model.readout == "mean" else "max_over_time"}


def run_metadata(cfg, classes: list[str], model: SpikingClassifier | None = None) -> dict:
    """The metadata block for a run's graph (see the module docstring)."""
    readout = readout_rule(model) if model is not None else {"node": "li_out", "rule": "max_over_time"}
    return {
        "producer": "neurostack",
        "version": __version__,
        "dt": cfg.model.dt,
        "convention": "spec",
        "input": {"data": cfg.data, "split": cfg.split, "data_seed": cfg.data_seed, "features": cfg.features,
                  "view": cfg.view, "encoder": cfg.encoder, "steps": cfg.steps, "steps_per_frame": cfg.steps_per_frame,
                  "encoder_seed": cfg.seed,
                  "shape": list(cfg.model.input_shape)},
        "readout": readout,
        "classes": classes,
        "model": cfg.model.to_dict(),
    }


def write_graph(graph: nir.NIRGraph, path: str | Path) -> None:
    """Write `graph` to `path` atomically (nir.write leaves a truncated file behind when it fails)."""
    write_with(path, lambda tmp: nir.write(str(tmp), graph))


def export_run(run_dir: str | Path, output: str | Path) -> str:
    """Export a run directory's best model to `output`; returns a summary: what was written, then (second line)
    which tools can read it."""
    from neurostack.sim.extensions import extension_nodes, nir_type, readers
    from neurostack.sim.load import load_graph
    from neurostack.train.rundir import RunPaths, load_trained_model

    cfg, model = load_trained_model(run_dir)
    metrics_path = RunPaths(Path(run_dir)).metrics
    classes = [str(i) for i in range(cfg.model.n_classes)]
    try:  # class names are a convenience: a damaged metrics.json keeps the numbered ones
        named = json.loads(metrics_path.read_text())["data"]["classes"]
        if isinstance(named, list) and len(named) == cfg.model.n_classes:
            classes = [str(c) for c in named]
    except (OSError, ValueError, KeyError, TypeError):
        pass
    graph = model_to_nir(model, run_metadata(cfg, classes, model))
    write_graph(graph, output)
    if extension_nodes(graph):  # nir.read cannot read those: our reader, with nir's type checks on the rest
        loaded = load_graph(output)
        if loaded.warnings:
            raise NeurostackError(f"{output}: the exported graph reads back only with repairs: {loaded.warnings[0]}")
    else:
        nir.read(str(output), type_check=True)  # what we write must pass the spec's own checks
    n_neurons = sum(int(np.prod(n.v_threshold.shape)) for n in graph.nodes.values() if isinstance(n, nir.LIF))
    types: dict[str, int] = {}
    for node in graph.nodes.values():
        types[nir_type(node)] = types.get(nir_type(node), 0) + 1
    listed = ", ".join(t if k == 1 else f"{t} x{k}" for t, k in types.items())
    return f"{len(graph.nodes)} nodes ({listed}), {n_neurons} spiking neurons, dt {cfg.model.dt:g} s\n" \
           f"readers: {readers(graph)}"
