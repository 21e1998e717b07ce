"""`neurostack inspect`: a NIR graph's nodes, edges and simulator support, as text."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from neurostack.errors import NeurostackError


def _param_summary(node) -> str:
    parts = []
    for key, value in vars(node).items():
        if key in ("input_type", "output_type", "metadata"):
            continue
        if isinstance(value, str):  # e.g. an extension node's sources
            parts.append(f"{key}={value!r}")
            continue
        if isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, (bool, np.bool_)):
            parts.append(f"{key}={value:.4g}")  # e.g. Flatten's dims, Conv's groups, an extension's heads
            continue
        if not isinstance(value, np.ndarray):
            continue
        v = np.asarray(value)
        if v.dtype.kind not in "biuf":  # what a damaged file may hold: say what it is, compute nothing
            parts.append(f"{key}{tuple(v.shape)} of dtype {v.dtype}")
        elif v.size == 0:
            parts.append(f"{key}=[]")
        elif v.size == 1 or np.all(v == v.flat[0]):
            parts.append(f"{key}={v.flat[0]:.4g}" + (f" x{v.shape}" if v.ndim else ""))
        else:
            finite = v[np.isfinite(v)] if v.dtype.kind == "f" else v
            span = f" in [{finite.min():.3g}, {finite.max():.3g}]" if finite.size else ""
            parts.append(f"{key}{tuple(v.shape)}{span}" + (" with NaN or inf" if finite.size < v.size else ""))
    return ", ".join(parts)


def _shape(node, key: str):
    from neurostack.sim.lowering import _tuple

    t = getattr(node, key, None)
    return _tuple(next(iter(t.values()), None)) if isinstance(t, dict) else None


def describe_graph(path: str | Path) -> str:
    """Nodes (type, shape, parameter summary, supported?), edges and metadata of the NIR file at `path`."""
    return inspect_graph(path)[0]


def inspect_graph(path: str | Path) -> tuple[str, list[tuple[str, str]]]:
    """(describe_graph's text, [(node, problem), ...] for what the simulator cannot run; [] when it all runs).

    A file that cannot be read raises NeurostackError; a readable graph is always described, problems included.
    """
    import nir

    from neurostack.sim import load_graph
    from neurostack.sim.lowering import unsupported_nodes

    loaded = load_graph(path)
    problems = dict(unsupported_nodes(loaded.graph))
    lines = [f"{path}: {len(loaded.graph.nodes)} nodes, {len(loaded.graph.edges)} edges"]
    for w in loaded.warnings:
        lines.append(f"  repaired: {w}")

    listed: set[str] = set()

    def walk(graph, prefix: str):
        for name, node in graph.nodes.items():
            full = prefix + name
            listed.add(full)
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
    lines += [f"  {name:<18} UNSUPPORTED: {msg}" for name, msg in problems.items() if name not in listed]
    lines.append("edges:")
    lines += [f"  {a} -> {b}" for a, b in loaded.graph.edges]
    if loaded.metadata:
        m = loaded.metadata
        part = lambda key: m.get(key) if isinstance(m.get(key), dict) else {}
        lines.append(f"neurostack metadata: dt {m.get('dt')} s, convention {m.get('convention')}, "
                     f"input {part('input').get('data')} ({part('input').get('encoder')}), "
                     f"readout {part('readout').get('node')} ({part('readout').get('rule')})")
    n_bad = len(problems)
    lines.append("simulator: all nodes supported" if not n_bad else f"simulator: {n_bad} node(s) unsupported")
    return "\n".join(lines), list(problems.items())


def unsupported_error(path: str | Path, problems: list[tuple[str, str]]) -> NeurostackError:
    """The one-line error for a graph the simulator cannot run (`problems` from inspect_graph)."""
    more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
    return NeurostackError(f"{path}: the simulator cannot run this graph: {problems[0][1]}{more}")
