"""NIR node types that neurostack adds to the spec: what they mean, how a file stores them, who can read them.

nir 1.0.8 has no primitive for spiking self-attention (a product of two time-varying spike matrices), so a
Spikformer's attention is written as one extension node per block, stored like any NIR node (an HDF5 group with
its fields) under a type string that names its owner: "neurostack.SpikingSelfAttention".

  SpikingSelfAttention(shape (D, N[, 1]), heads H, scale, q, k, v)
      q, k, v name the three source nodes (each with an edge into this node, output shape `shape`) whose
      outputs are Q, K and V: spike arrays laid out channels first, entry (c, n) is channel c of token n;
      head h owns channels h*D/H .. (h+1)*D/H - 1. The node's output, same shape, is per step and per head
          A_h = (Q_h K_h^T) V_h * scale          (Q_h, K_h, V_h: (N, D/H) matrices, no softmax)
      i.e. out[c, n] = scale * sum_m (sum_{c' in head(c)} Q[c', n] K[c', m]) V[c, m].
      Unlike a standard node, it does not sum its inputs: the edges only say where Q, K and V come from.

Who reads a file with such a node: neurostack (load, inspect, simulate with SOP counts, and the PyTorch importer
`frontend.nir_import`). No one else: every
other tool (Norse, snnTorch, Sinabs, Rockpool, Lava, Spyx) loads NIR files with nir.read, and nir.read in nir
1.0.8 stops at the unknown type with a bare AssertionError (`assert type in __all_ir`). `readers` says so in words,
and for graphs of standard nodes names the ones that Norse's and snnTorch's importers lack (`IMPORTERS`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import nir
import numpy as np

ATTENTION_TYPE = "neurostack.SpikingSelfAttention"


@dataclass(eq=False)
class SpikingSelfAttention(nir.NIRNode):
    """Spiking self-attention of one Spikformer block (see the module docstring). shape: (D, N) or (D, N, 1)."""

    shape: np.ndarray
    heads: int
    scale: float
    q: str
    k: str
    v: str

    NIR_TYPE: ClassVar[str] = ATTENTION_TYPE
    NAME_FIELDS: ClassVar[tuple[str, ...]] = ("q", "k", "v")  # fields that hold node names, not numbers

    def __post_init__(self) -> None:
        self.shape = np.asarray(self.shape, np.int64).ravel()
        self.heads = int(self.heads)
        self.scale = float(self.scale)
        self.q, self.k, self.v = (_text(getattr(self, f)) for f in self.NAME_FIELDS)
        self.input_type = {"input": self.shape.copy()}
        self.output_type = {"output": self.shape.copy()}

    def to_dict(self) -> dict[str, Any]:
        d = super().to_dict()
        d["type"] = self.NIR_TYPE
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "SpikingSelfAttention":
        kw = {k: v for k, v in d.items() if k != "type"}
        missing = {"shape", "heads", "scale", *cls.NAME_FIELDS} - set(kw)
        if missing:
            raise ValueError(f"{ATTENTION_TYPE} node lacks {', '.join(sorted(missing))}")
        return cls(**kw)


def _text(value) -> str:
    if isinstance(value, bytes):
        return value.decode("utf8", "replace")
    if isinstance(value, np.ndarray) and value.size == 1:
        return _text(value.ravel()[0])
    return str(value)


EXTENSIONS: dict[str, type] = {ATTENTION_TYPE: SpikingSelfAttention}


def nir_type(node) -> str:
    """The type string a node is stored under: the class name for nir's primitives, else its NIR_TYPE."""
    return getattr(node, "NIR_TYPE", type(node).__name__)


def extension_nodes(graph: nir.NIRGraph) -> dict[str, str]:
    """Dotted name -> type of every extension node in `graph` (nested subgraphs included)."""
    found: dict[str, str] = {}
    for name, node in graph.nodes.items():
        if isinstance(node, nir.NIRGraph):
            found.update({f"{name}.{k}": t for k, t in extension_nodes(node).items()})
        elif nir_type(node) in EXTENSIONS:
            found[str(name)] = nir_type(node)
    return found


OTHER_TOOLS = ("Norse", "snnTorch", "Sinabs", "Rockpool", "Lava", "Spyx")
# Node types the two importers installed beside neurostack map to modules (from their sources, checked on our
# exported mlp, csnn, delay and adlif files), and what they do with the others.
IMPORTERS = {
    "Norse 1.1.0 from_nir": ({"Input", "Output", "Affine", "Linear", "Conv2d", "Flatten", "SumPool2d", "IF", "LIF",
                              "CubaLIF"}, "it fails on them with a KeyError, or drops one without a word where it "
                                          "ends the graph, as an LI readout does"),
    "snnTorch 1.0.0 import_from_nir": ({"Input", "Output", "Affine", "Linear", "Conv2d", "Flatten", "AvgPool2d", "IF",
                                        "LIF", "CubaLIF"}, "it fails on them with a ValueError"),
}
EXTENDED = ("readable by neurostack (simulate, inspect, frontend.nir_import) only. Not by {tools}, nor nir.read "
            "itself: nir 1.0.8 stops on node type {types} with an AssertionError (no message), and all those tools "
            "read files through nir.read")


def _types(graph: nir.NIRGraph) -> set[str]:
    found: set[str] = set()
    for node in graph.nodes.values():
        found |= _types(node) if isinstance(node, nir.NIRGraph) else {nir_type(node)}
    return found


def readers(graph: nir.NIRGraph) -> str:
    """Which tools can read `graph` once written, in words (one paragraph)."""
    types = sorted(set(extension_nodes(graph).values()))
    if types:
        return EXTENDED.format(tools=", ".join(OTHER_TOOLS), types=", ".join(repr(t) for t in types))
    parts = ["nir.read loads it (standard NIR 1.0.8 primitives only)"]
    for tool, (mapped, otherwise) in IMPORTERS.items():
        missing = sorted(_types(graph) - mapped)
        parts.append(f"{tool} has no {', '.join(missing)} ({otherwise})" if missing else f"{tool} maps every node")
    return "; ".join(parts) + "; each tool runs what it maps with its own discretisation (see neurostack simulate " \
                              "--convention)"
