"""Helpers shared by the simulator tests (imported as `sim_helpers`; pytest puts tests/sim on sys.path)."""

from __future__ import annotations

import os
from pathlib import Path

import nir
import numpy as np


def shared_root() -> Path:
    """$NEUROSTACK_SHARED, else ../shared beside the checkout, else /work/shared."""
    env = os.environ.get("NEUROSTACK_SHARED")
    if env:
        return Path(env)
    beside = Path(__file__).resolve().parents[2].parent / "shared"
    return beside if beside.is_dir() else Path("/work/shared")


def lif(n: int, tau=0.01, th=1.0, r=1.0, v_leak=0.0, v_reset=0.0, dtype=np.float32) -> nir.LIF:
    """A LIF node with per-neuron arrays (time constants in seconds)."""
    full = lambda v: np.broadcast_to(np.asarray(v, dtype), (n,)).copy()
    return nir.LIF(tau=full(tau), r=full(r), v_leak=full(v_leak), v_threshold=full(th), v_reset=full(v_reset))


def chain(*pairs, edges=None, input_shape) -> nir.NIRGraph:
    """An in-memory graph input -> nodes (in order) -> output, or with the given edges; shapes left to the
    simulator to infer (nir.write could not store the undefined ones)."""
    nodes = {"input": nir.Input(input_type={"input": np.array(input_shape)})}
    nodes.update(pairs)
    names = list(nodes)
    nodes["output"] = nir.Output(output_type={"output": None})
    if edges is None:
        edges = [(a, b) for a, b in zip(names, names[1:] + ["output"])]
    return nir.NIRGraph(nodes=nodes, edges=edges, type_check=False)
