"""`neurostack inspect`: a NIR graph's nodes, edges and simulator support, as text."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def _param_summary(node) -> str:
    parts = []
    for key, value in vars(node).items():
        if key in ("input_type", "output_type", "metadata") or not isinstance(value, np.ndarray):
            continue
        v = np.asarray(value)
        if v.size == 0:
            parts.append(f"{key}=[]")
        elif v.size == 1 or np.all(v == v.flat[0]):
            parts.append(f"{key}={v.flat[0]:.4g}" + (f" x{v.shape}" if v.ndim else ""))
        else:
            parts.append(f"{key}{tuple(v.shape)} in [{v.min():.3g}, {v.max():.3g}]")
    return ", ".join(parts)


def _shape(node, key: str):
    t = getattr(node, key, None) or {}
    s = next(iter(t.values()), None) if isinstance(t, dict) else None
    return tuple(int(i) for i in s) if s is not None else None


def describe_graph(path: str | Path) -> str:
    """Nodes (type, shape, parameter summary, supported?), edges and metadata of the NIR file at `path`."""
    import nir

    from neurostack.sim import load_graph
    from neurostack.sim.lowering import unsupported_nodes

    loaded = load_graph(path)
    problems = dict(unsupported_nodes(loaded.graph))
    lines = [f"{path}: {len(loaded.graph.nodes)} nodes, {len(loaded.graph.edges)} edges"]
    for w in loaded.warnings:
        lines.append(f"  repaired: {w}")

    def walk(graph, prefix: str):
        for name, node in graph.nodes.items():
            full = prefix + name
            if isinstance(node, nir.NIRGraph):
                lines.append(f"  {full:<18} NIRGraph (subgraph, {len(node.nodes)} nodes)")
                walk(node, full + ".")
                continue
            status = f"UNSUPPORTED: {problems[full]}" if full in problems else "supported"
            shape = _shape(node, "output_type")
            lines.append(f"  {full:<18} {type(node).__name__:<10} {str(shape):<14} {status}")
            summary = _param_summary(node)
            if summary:
                lines.append(f"  {'':<18} {summary}")

    walk(loaded.graph, "")
    lines.append("edges:")
    lines += [f"  {a} -> {b}" for a, b in loaded.graph.edges]
    if loaded.metadata:
        m = loaded.metadata
        lines.append(f"neurostack metadata: dt {m.get('dt')} s, convention {m.get('convention')}, "
                     f"input {m.get('input', {}).get('data')} ({m.get('input', {}).get('encoder')}), "
                     f"readout {m.get('readout', {}).get('node')} ({m.get('readout', {}).get('rule')})")
    n_bad = len(problems)
    lines.append("simulator: all nodes supported" if not n_bad else f"simulator: {n_bad} node(s) unsupported")
    return "\n".join(lines)
