"""Round a NIR graph's synaptic weights to a chip's weight precision (what deploying it would do).

Symmetric, per-node uniform quantisation: weights w become s * round(w / s) with integers in
[-(2^(b-1) - 1), 2^(b-1) - 1] and s = max|w| / (2^(b-1) - 1), one scale per node (Affine, Linear, Conv1d, Conv2d,
Scale). Biases are rounded to the same scale (chips hold them with more bits, so they are not clipped). Neuron
parameters and membrane states are left as they are; the scale s can be folded into thresholds on the chip.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import nir
import numpy as np

from neurostack.errors import NeurostackError

WEIGHTED = (nir.Affine, nir.Linear, nir.Conv1d, nir.Conv2d, nir.Scale)


@dataclass
class QuantizedNode:
    """What rounding did to one node: bits, scale (weight units per integer step), largest change."""

    name: str
    bits: int
    scale: float
    max_abs_error: float
    zeroed: int  # non-zero weights that rounded to zero


def quantize_array(w: np.ndarray, bits: int) -> tuple[np.ndarray, float]:
    """(w rounded to `bits`-bit signed integers times a per-array scale, the scale)."""
    if bits < 2:
        raise NeurostackError(f"cannot quantise weights to {bits} bit(s): need at least 2 (sign and magnitude)")
    levels = 2 ** (bits - 1) - 1
    peak = float(np.max(np.abs(w), initial=0.0))
    if peak == 0.0:
        return w.copy(), 0.0
    scale = peak / levels
    return (np.clip(np.round(w / scale), -levels, levels) * scale).astype(w.dtype), scale


def quantize_graph(graph: nir.NIRGraph, bits: int) -> tuple[nir.NIRGraph, list[QuantizedNode]]:
    """A copy of `graph` (nested subgraphs included) with every weight rounded to `bits` bits."""
    graph = copy.deepcopy(graph)
    report: list[QuantizedNode] = []
    _quantize_nodes(graph, bits, "", report)
    return graph, report


def _quantize_nodes(graph: nir.NIRGraph, bits: int, prefix: str, report: list[QuantizedNode]) -> None:
    for name, node in graph.nodes.items():
        if isinstance(node, nir.NIRGraph):
            _quantize_nodes(node, bits, f"{prefix}{name}.", report)
            continue
        if not isinstance(node, WEIGHTED):
            continue
        attr = "scale" if isinstance(node, nir.Scale) else "weight"
        w = np.asarray(getattr(node, attr))
        wq, scale = quantize_array(w, bits)
        setattr(node, attr, wq)
        bias = getattr(node, "bias", None)
        if scale > 0 and bias is not None and np.ndim(bias) > 0:
            node.bias = (np.round(np.asarray(bias) / scale) * scale).astype(np.asarray(bias).dtype)
        report.append(QuantizedNode(name=prefix + name, bits=bits, scale=scale,
                                    max_abs_error=float(np.max(np.abs(wq - w), initial=0.0)),
                                    zeroed=int(np.count_nonzero((w != 0) & (wq == 0)))))
