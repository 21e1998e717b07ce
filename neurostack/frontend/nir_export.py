"""A trained model -> a NIR graph written to the NIR spec (nir 1.0.8).

What we write (and Norse 1.1.0's own `to_nir` gets wrong): time constants in seconds (tau = 1/tau_mem_inv,
stored as float64 so a float64 simulation reproduces the model's dt/tau exactly), per-neuron parameter arrays,
no batch dimension, `v_reset` and `r` always set. The graph's metadata carries, as one JSON string under
"neurostack", everything `neurostack simulate` needs to rebuild the inputs and read the answer: dt, the
discretisation convention, the data set and feature/encoder description, the readout rule and class names.
"""

from __future__ import annotations

import json
from pathlib import Path

import nir
import numpy as np
import torch
from torch import nn

from neurostack import __version__
from neurostack.atomic import write_with
from neurostack.errors import NeurostackError
from neurostack.frontend.layers import LI, LIF, TimeDistributed
from neurostack.frontend.models import SpikingClassifier

METADATA_KEY = "neurostack"


def _np(t: torch.Tensor, dtype=np.float32) -> np.ndarray:
    return t.detach().cpu().numpy().astype(dtype)


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


def model_to_nir(model: SpikingClassifier, metadata: dict) -> nir.NIRGraph:
    """The model as a NIR graph: input -> stages in order (dropout left out) -> output."""
    in_shape = tuple(model.config.input_shape)
    nodes: dict[str, nir.NIRNode] = {"input": nir.Input(input_type={"input": np.array(in_shape)})}
    edges: list[tuple[str, str]] = []
    previous, shape = "input", in_shape
    with torch.no_grad():
        for name, stage in zip(model.stage_names, model.stages):
            if isinstance(stage, nn.Dropout):
                continue
            node = _stage_to_node(stage, shape)
            nodes[name] = node
            edges.append((previous, name))
            previous = name
            shape = tuple(int(s) for s in _output_shape(stage, shape))
    nodes["output"] = nir.Output(output_type={"output": np.array(shape)})
    edges.append((previous, "output"))
    return nir.NIRGraph(nodes=nodes, edges=edges, metadata={METADATA_KEY: json.dumps(metadata)})


def _output_shape(stage: nn.Module, in_shape: tuple[int, ...]) -> tuple[int, ...]:
    with torch.no_grad():
        dtype = next((p.dtype for p in stage.parameters()), torch.float32)  # a float64 model exports too
        x = torch.zeros(1, 1, *in_shape, dtype=dtype)
        if isinstance(stage, (LIF, LI)):
            return tuple(stage.shape)
        return tuple(stage(x).shape[2:])


def run_metadata(cfg, classes: list[str]) -> dict:
    """The metadata block for a run's graph (see the module docstring)."""
    readout = "li_out"
    return {
        "producer": "neurostack",
        "version": __version__,
        "dt": cfg.model.dt,
        "convention": "spec",
        "input": {"data": cfg.data, "split": cfg.split, "data_seed": cfg.data_seed, "features": cfg.features,
                  "view": cfg.view, "encoder": cfg.encoder, "steps": cfg.steps, "steps_per_frame": cfg.steps_per_frame,
                  "encoder_seed": cfg.seed,
                  "shape": list(cfg.model.input_shape)},
        "readout": {"node": readout, "rule": "max_over_time"},
        "classes": classes,
        "model": cfg.model.to_dict(),
    }


def write_graph(graph: nir.NIRGraph, path: str | Path) -> None:
    """Write `graph` to `path` atomically (nir.write leaves a truncated file behind when it fails)."""
    write_with(path, lambda tmp: nir.write(str(tmp), graph))


def export_run(run_dir: str | Path, output: str | Path) -> str:
    """Export a run directory's best model to `output`; returns a one-line summary."""
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
    graph = model_to_nir(model, run_metadata(cfg, classes))
    write_graph(graph, output)
    nir.read(str(output), type_check=True)  # what we write must pass the spec's own checks
    n_neurons = sum(int(np.prod(n.v_threshold.shape)) for n in graph.nodes.values() if isinstance(n, nir.LIF))
    return f"{len(graph.nodes)} nodes ({', '.join(type(n).__name__ for n in graph.nodes.values())}), " \
           f"{n_neurons} spiking neurons, dt {cfg.model.dt:g} s"
