"""Tolerant reading of NIR files: what other tools write, repaired where the intent is clear, with warnings.

Reading goes: HDF5 -> plain dict (nir's own hdf2dict) -> repairs on the dict that nir would otherwise refuse
(old files without v_reset, neuron parameters of unequal shapes) -> nir objects with type_check=True, or with
type_check=False (at every nesting level) when the strict build fails -> repairs on the graph (batch dims
stripped from Input/Output, scalar parameters broadcast to the node's shape; see lowering.infer_shapes).
Every repair is recorded in LoadedGraph.warnings. A missing, corrupt or truncated file, or one whose arrays
would not fit in memory (judged from the HDF5 headers, before reading them), raises NeurostackError. The
HDF5 reading runs in a forked child (neurostack.isolate): a damaged file that makes libhdf5 loop or crash
becomes an error after READ_TIMEOUT_S, not a hung or crashed neurostack.
"""

from __future__ import annotations

import copy
import json
import os
import warnings as pywarnings
from dataclasses import dataclass, field

import h5py
import nir
import numpy as np
from nir.serialization import hdf2dict

from neurostack.errors import NeurostackError
from neurostack.isolate import isolated
from neurostack.memory import check_memory, nbytes
from neurostack.sim.extensions import EXTENSIONS
from neurostack.sim.memory import check_file

NIR_TYPES = {"Affine", "AvgPool2d", "Conv1d", "Conv2d", "CubaLI", "CubaLIF", "Delay", "Flatten", "I", "IF", "Input",
             "LI", "LIF", "Linear", "NIRGraph", "Output", "Scale", "SumPool2d", "Threshold"}
NEURON_PARAMS = {  # per-neuron parameters of each neuron primitive (also what lowering packs)
    "LIF": ("tau", "r", "v_leak", "v_threshold", "v_reset"),
    "LI": ("tau", "r", "v_leak"),
    "CubaLIF": ("tau_mem", "tau_syn", "r", "v_leak", "v_threshold", "v_reset", "w_in"),
    "CubaLI": ("tau_mem", "tau_syn", "r", "v_leak", "w_in"),
    "IF": ("r", "v_threshold", "v_reset"),
    "I": ("r",),
}
METADATA_KEY = "neurostack"
READ_TIMEOUT_S = 60.0  # reading a NIR file may take this long, plus a second per READ_BYTES_PER_S of file
READ_BYTES_PER_S = 20e6


@dataclass
class LoadedGraph:
    """A NIR graph as read, the repairs made to it (in words), and its parsed neurostack metadata ({} if none)."""

    graph: nir.NIRGraph
    warnings: list[str] = field(default_factory=list)
    metadata: dict = field(default_factory=dict)


def neurostack_metadata(graph: nir.NIRGraph) -> dict:
    """graph.metadata["neurostack"] (a JSON string neurostack writes: dt, convention, input, readout), or {}."""
    md = getattr(graph, "metadata", None)
    raw = md.get(METADATA_KEY) if isinstance(md, dict) else None
    if isinstance(raw, bytes):
        raw = raw.decode("utf8", "replace")
    if isinstance(raw, dict):
        return raw
    if isinstance(raw, str):
        try:
            parsed = json.loads(raw)
        except ValueError:
            return {}
        return parsed if isinstance(parsed, dict) else {}
    return {}


def load_graph(path: str | os.PathLike) -> LoadedGraph:
    """Read the NIR file at `path`, repairing what other tools get wrong (see the module docstring)."""
    path = os.fspath(path)
    if not os.path.exists(path):
        raise NeurostackError(f"{path}: no such file")
    if not os.path.isfile(path):
        raise NeurostackError(f"{path}: not a file")
    timeout = READ_TIMEOUT_S + os.path.getsize(path) / READ_BYTES_PER_S
    raw = isolated(_read_raw, path, timeout=timeout, what=path)
    try:
        return _from_dict(raw, path)
    except RecursionError:  # nir's constructors and our repairs recurse once per level of nesting
        raise NeurostackError(f"{path}: subgraphs nested too deeply to read") from None


def _read_raw(path: str) -> dict:
    """The file's 'node' group as a plain dict (nir's hdf2dict), after checking the declared sizes fit in memory.

    Runs in a forked child (neurostack.isolate): a damaged file can make libhdf5 loop forever or crash.
    """
    try:
        with h5py.File(path, "r") as f:
            if not isinstance(f.get("node"), h5py.Group):
                raise NeurostackError(f"{path}: not a NIR file (no 'node' group)")
            check_file(f["node"], path)  # declared sizes, before reading any array
            return hdf2dict(f["node"])
    except NeurostackError:
        raise
    except RecursionError:
        raise NeurostackError(f"{path}: subgraphs nested too deeply to read") from None
    except Exception as exc:  # h5py raises OSError, KeyError, RuntimeError... on corrupt or truncated files
        raise NeurostackError(f"{path}: cannot read it as a NIR (HDF5) file: {_short(exc)}") from None


def _from_dict(raw: dict, path: str) -> LoadedGraph:
    warnings: list[str] = []
    _repair_dict(raw, "", warnings, path)
    try:
        graph = _build(raw, type_check=True)
    except RecursionError:
        raise
    except Exception as strict_exc:
        try:
            graph = _build(raw, type_check=False)
        except RecursionError:
            raise
        except Exception as exc:
            raise NeurostackError(f"{path}: not a valid NIR graph: {_failing_node(raw) or _short(exc)}") from None
        warnings.append(f"file needed type_check=False ({_short(strict_exc)})")
    if not isinstance(graph, nir.NIRGraph):
        raise NeurostackError(f"{path}: holds a single {type(graph).__name__} node, not a NIR graph")
    warnings += repair_graph(graph)
    return LoadedGraph(graph=graph, warnings=warnings, metadata=neurostack_metadata(graph))


def repair_graph(graph: nir.NIRGraph) -> list[str]:
    """Strip batch dims from Input/Output and broadcast scalar parameters in place; the repairs, in words.

    Leaves the graph alone (and says nothing) when it does not lower: `lower` reports those problems.
    """
    from neurostack.sim.lowering import ELEMENTWISE_PARAMS, infer_shapes

    try:
        res = infer_shapes(graph)
    except NeurostackError:
        return []
    for fn in res.nodes.values():
        if fn.type in ("Input", "Output") and fn.shape is not None:
            shape = np.array(fn.shape)
            fn.node.input_type = {"input": shape}
            fn.node.output_type = {"output": shape}
        elif fn.type in ELEMENTWISE_PARAMS and fn.params:
            for key, value in fn.params.items():
                if getattr(fn.node, key, None) is not None and np.shape(getattr(fn.node, key)) != np.shape(value):
                    setattr(fn.node, key, np.array(value))
            fn.node.input_type = {"input": np.array(fn.shape)}
            fn.node.output_type = {"output": np.array(fn.shape)}
    _refresh_graph_types(graph)
    return list(res.warnings)


def _refresh_graph_types(graph: nir.NIRGraph) -> None:
    """Recompute each (sub)graph's input_type/output_type from its (repaired) Input/Output nodes."""
    for node in graph.nodes.values():
        if isinstance(node, nir.NIRGraph):
            _refresh_graph_types(node)
    update = getattr(graph, "_update_input_output_types", None)
    if callable(update):
        try:
            update()
        except Exception:  # nir-internal helper; the nodes themselves are already repaired
            pass


def _short(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= 160 else text[:157] + "..."


def _repair_dict(d: dict, prefix: str, warnings: list[str], path: str) -> None:
    """Dict-level repairs that nir's constructors would otherwise refuse; recurses into subgraphs."""
    kind = d.get("type")
    if not isinstance(kind, str) or (kind not in NIR_TYPES and kind not in EXTENSIONS):
        where = f"node '{prefix.rstrip('.')}'" if prefix else "the top-level node"
        shown = repr(kind.tolist() if isinstance(kind, np.ndarray) else kind)
        raise NeurostackError(f"{path}: {where} has unknown NIR type {shown[:60]}")
    if kind == "NIRGraph":
        nodes = d.get("nodes")
        if not isinstance(nodes, dict) or "edges" not in d:
            raise NeurostackError(f"{path}: graph '{prefix.rstrip('.') or '<top>'}' lacks nodes or edges")
        for name, sub in nodes.items():
            if not isinstance(sub, dict):
                raise NeurostackError(f"{path}: node '{prefix}{name}' is not a group")
            _repair_dict(sub, f"{prefix}{name}.", warnings, path)
        return
    name = prefix.rstrip(".")
    fields = NEURON_PARAMS.get(kind)
    if not fields:
        return
    if "v_threshold" in fields and "v_reset" not in d and "v_threshold" in d:
        v_th = np.asarray(d["v_threshold"])
        d["v_reset"] = np.zeros(v_th.shape, v_th.dtype if v_th.dtype.kind in "biuf" else np.float64)
        warnings.append(f"added v_reset=0 to old file (node '{name}')")
    present = {k: np.asarray(d[k]) for k in fields if k in d}
    shapes = {a.shape for a in present.values()}
    if len(shapes) > 1:
        try:
            target = np.broadcast_shapes(*shapes)
        except ValueError:
            raise NeurostackError(f"{path}: node '{name}': parameter shapes {sorted(shapes)} do not fit "
                                  f"together") from None
        check_memory(sum(nbytes(target, a.itemsize) for a in present.values()),
                     f"{path}: broadcasting the parameters of node '{name}' to {target}")
        for k, a in present.items():
            if a.shape != target:
                d[k] = np.array(np.broadcast_to(a, target))
                warnings.append(f"broadcast scalar {k} of node '{name}' to shape {target}" if a.size == 1 else
                                f"broadcast {k} of node '{name}' from {a.shape} to shape {target}")


def _failing_node(raw: dict, prefix: str = "") -> str | None:
    """'node NAME: reason' for the first leaf node nir cannot build on its own, or None."""
    for name, sub in raw.get("nodes", {}).items():
        if sub.get("type") == "NIRGraph":
            found = _failing_node(sub, f"{prefix}{name}.")
            if found:
                return found
            continue
        try:
            with pywarnings.catch_warnings(), np.errstate(all="ignore"):
                pywarnings.simplefilter("ignore")
                _node_from_dict(copy.deepcopy(sub), type_check=False)
        except Exception as exc:
            return f"node '{prefix}{name}': {_short(exc)}"
    return None


def _build(raw: dict, type_check: bool) -> nir.NIRNode:
    """nir objects from the dict; type_check=False is applied to nested subgraphs too."""
    d = copy.deepcopy(raw)

    def mark(node: dict) -> None:
        if node.get("type") == "NIRGraph":
            node["type_check"] = type_check
            for sub in node["nodes"].values():
                mark(sub)

    if type_check:
        d["type_check"] = True
    else:
        mark(d)
    with pywarnings.catch_warnings(), np.errstate(all="ignore"):  # nir's shape arithmetic on damaged parameters
        pywarnings.simplefilter("ignore")
        return _node_from_dict(d, type_check)


def _has_extensions(d: dict) -> bool:
    if d.get("type") in EXTENSIONS:
        return True
    return d.get("type") == "NIRGraph" and any(_has_extensions(sub) for sub in d.get("nodes", {}).values())


def _node_from_dict(d: dict, type_check: bool) -> nir.NIRNode:
    """nir.dict2NIRNode, except that neurostack's extension nodes (which nir does not know) are built by their
    own classes, and the graphs around them by nir.NIRGraph directly (as NIRGraph.from_dict would)."""
    if not _has_extensions(d):
        return nir.dict2NIRNode(d)
    if d["type"] in EXTENSIONS:
        return EXTENSIONS[d["type"]].from_dict(d)
    nodes = {k: _node_from_dict(sub, sub.get("type_check", type_check)) for k, sub in d["nodes"].items()}
    edges = [(_str(a), _str(b)) for a, b in d["edges"]]
    return nir.NIRGraph(nodes=nodes, edges=edges, metadata=d.get("metadata", {}), type_check=type_check)


def _str(value) -> str:
    return value.decode("utf8") if isinstance(value, bytes) else str(value)
