"""NIR graph -> Plan: flatten subgraphs, order the nodes, infer shapes, discretise parameters, pack arrays.

Steps (each a function below):
  1. `flatten_graph`  nested NIRGraphs become dotted names ("1.lif"); an edge to / from a subgraph goes to its
                      Input / from its Output node, which stay as pass-through nodes ("1.input", "1.output").
  2. `order_nodes`    depth-first from the Input node, edges in file order; the reverse post-order is the
                      execution order, and edges that close a cycle (back edges) read their source's output of
                      the previous step (zeros at t = 0), as Norse and the nirtorch executors do. A cycle must
                      contain a stateful node (neuron or Delay). The rule is uniform: a cycle closed through a
                      Delay of k steps feeds back after k + 1 steps.
  3. `infer_shapes`   shapes along the edges (batch dims stripped from Input, scalar parameters broadcast,
                      conv/pool output sizes computed with PyTorch's formulas); any mismatch is an error.
  4. `lower`          parameters discretised with dt and the convention (conventions.py) and packed into flat
                      float32/float64 arrays; the layouts are in plan.py and kernels.py.
neurostack's extension nodes (extensions.py, e.g. neurostack.SpikingSelfAttention) are checked and packed by their
own module (attention.py).
Errors that are the user's (unknown primitive, bad shapes, stateless cycle, non-finite parameters, missing dt)
raise NeurostackError naming the node(s).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import nir
import numpy as np

from neurostack.errors import NeurostackError
from neurostack.sim import attention
from neurostack.sim import plan as P
from neurostack.sim.extensions import ATTENTION_TYPE, EXTENSIONS, nir_type
from neurostack.sim.load import NEURON_PARAMS
from neurostack.sim.memory import check_lowering
from neurostack.sim.plan import Plan
from neurostack.sim.conventions import (
    Convention, decay_factor, get_convention, input_gain, snap_unit, syn_input_gain,
)

ELEMENTWISE_PARAMS = {**NEURON_PARAMS, "Scale": ("scale",), "Threshold": ("threshold",), "Delay": ("delay",)}
SUPPORTED = {"Input", "Output", "Identity", "Affine", "Linear", "Conv1d", "Conv2d", "SumPool2d", "AvgPool2d",
             "Flatten", *ELEMENTWISE_PARAMS, *EXTENSIONS}
STATEFUL = {*NEURON_PARAMS, "Delay"}
TIMED = {"LIF", "LI", "CubaLIF", "CubaLI", "IF", "I", "Delay"}  # nodes whose discretisation needs dt
TIME_CONSTANTS = ("tau", "tau_mem", "tau_syn")


@dataclass
class FlatNode:
    """One node of the flattened graph. shape: its output shape; in_shape: the shape it expects as input."""

    name: str
    node: Any
    type: str
    nested_io: bool = False  # the Input/Output node of a nested subgraph (a pass-through)
    in_shape: tuple[int, ...] | None = None
    shape: tuple[int, ...] | None = None
    params: dict[str, np.ndarray] = field(default_factory=dict)  # elementwise parameters, broadcast to shape


@dataclass
class Resolved:
    """A graph after steps 1-3: flat nodes in execution order, edges, back edges, shapes, repairs made."""

    nodes: dict[str, FlatNode]
    edges: list[tuple[str, str]]
    order: list[str]
    back_edges: list[tuple[str, str]]
    input_name: str
    output_name: str
    on_cycle: set[str]
    warnings: list[str]
    input_declared: tuple[int, ...] | None = None


# --------------------------------------------------------------------------------------------- 1. flatten
def flatten_graph(graph: nir.NIRGraph) -> tuple[dict[str, FlatNode], list[tuple[str, str]]]:
    """All leaf nodes by dotted name (file order) and the edges between them (file order)."""
    nodes: dict[str, FlatNode] = {}
    edges: list[tuple[str, str]] = []
    _flatten(graph, "", nodes, edges)
    return nodes, edges


def _flatten(graph: nir.NIRGraph, prefix: str, nodes: dict, edges: list) -> None:
    for name, node in graph.nodes.items():
        full = prefix + str(name)
        if isinstance(node, nir.NIRGraph):
            _flatten(node, full + ".", nodes, edges)
        else:
            nested_io = bool(prefix) and isinstance(node, (nir.Input, nir.Output))
            nodes[full] = FlatNode(full, node, nir_type(node), nested_io=nested_io)
    for a, b in graph.edges:
        edges.append((_endpoint(graph, prefix, str(a), "src", (a, b)), _endpoint(graph, prefix, str(b), "dst", (a, b))))


def _endpoint(graph: nir.NIRGraph, prefix: str, ref: str, role: str, edge) -> str:
    """The flat name an edge endpoint refers to (a node, a subgraph's Input/Output, or 'sub.node')."""
    if ref in graph.nodes:
        node = graph.nodes[ref]
        if not isinstance(node, nir.NIRGraph):
            return prefix + ref
        want = nir.Output if role == "src" else nir.Input
        ports = [k for k, v in node.nodes.items() if isinstance(v, want)]
        if len(ports) != 1:
            raise NeurostackError(f"edge {edge[0]} -> {edge[1]}: subgraph '{prefix + ref}' has {len(ports)} "
                                  f"{want.__name__} nodes; the edge must name one of its nodes")
        return prefix + ref + "." + str(ports[0])
    head, _, rest = ref.partition(".")
    if rest and head in graph.nodes and isinstance(graph.nodes[head], nir.NIRGraph):
        return _endpoint(graph.nodes[head], prefix + head + ".", rest, role, edge)
    raise NeurostackError(f"edge {edge[0]} -> {edge[1]}: the graph has no node '{prefix + ref}'")


# --------------------------------------------------------------------------------------------- 2. order
def order_nodes(nodes: dict[str, FlatNode], edges: list[tuple[str, str]], input_name: str):
    """(execution order, back edges): reverse post-order of a depth-first search from the Input node."""
    succ: dict[str, list[str]] = {n: [] for n in nodes}
    for a, b in edges:
        succ[a].append(b)
    state: dict[str, int] = {}  # 1: on the DFS stack, 2: finished
    post: list[str] = []
    back: list[tuple[str, str]] = []
    for root in [input_name] + [n for n in nodes if n != input_name]:
        if root in state:
            continue
        state[root] = 1
        stack = [(root, iter(succ[root]))]
        while stack:
            name, it = stack[-1]
            for nxt in it:
                if nxt not in state:
                    state[nxt] = 1
                    stack.append((nxt, iter(succ[nxt])))
                    break
                if state[nxt] == 1:
                    back.append((name, nxt))
            else:
                stack.pop()
                state[name] = 2
                post.append(name)
    return post[::-1], back


def _check_stateless_cycles(nodes: dict[str, FlatNode], edges: list[tuple[str, str]]) -> None:
    """Raise if a cycle runs through stateless nodes only (nothing would hold a value from step to step)."""
    stateless = {n for n, fn in nodes.items() if fn.type not in STATEFUL}
    sub = [(a, b) for a, b in edges if a in stateless and b in stateless]
    live = set(stateless)
    changed = True
    while changed:  # peel off nodes without an incoming or without an outgoing edge: what remains is cyclic
        changed = False
        has_in = {b for a, b in sub if a in live and b in live}
        has_out = {a for a, b in sub if a in live and b in live}
        for n in list(live):
            if n not in has_in or n not in has_out:
                live.discard(n)
                changed = True
    if live:
        names = ", ".join(f"'{n}'" for n in sorted(live))
        raise NeurostackError(f"cycle without a stateful node through {names}: no neuron or Delay holds state "
                              f"to break it")


def _nodes_on_cycles(nodes: dict[str, FlatNode], edges: list[tuple[str, str]]) -> set[str]:
    succ: dict[str, list[str]] = {n: [] for n in nodes}
    for a, b in edges:
        succ[a].append(b)
    found = set()
    for start in nodes:
        seen, todo = set(), list(succ[start])
        while todo:
            n = todo.pop()
            if n == start:
                found.add(start)
                break
            if n not in seen:
                seen.add(n)
                todo.extend(succ[n])
    return found


# --------------------------------------------------------------------------------------------- 3. shapes
def _tuple(a) -> tuple[int, ...] | None:
    """A declared shape as a tuple of ints; None when absent or not a list of whole numbers."""
    if a is None or isinstance(a, (str, bytes)):
        return None
    arr = np.asarray(a)
    if arr.dtype.kind not in "biuf" or arr.ndim > 1:
        return None
    arr = np.atleast_1d(arr)
    if arr.dtype.kind == "f" and not (np.all(np.isfinite(arr)) and np.all(arr == np.round(arr))):
        return None
    return tuple(int(v) for v in arr)


def _declared(node, key: str) -> tuple[int, ...] | None:
    types = getattr(node, key, None)
    if not isinstance(types, dict) or len(types) != 1:
        return None
    return _tuple(next(iter(types.values())))


def _pair(v, name: str, node_name: str) -> tuple[int, int]:
    a = np.atleast_1d(np.asarray(v))
    if a.dtype.kind not in "biuf" or not np.all(np.abs(a.astype(np.float64)) < 2**62):  # NaN fails too
        raise NeurostackError(f"node '{node_name}': {name} {_show(v)} is not one or two integers")
    a = a.astype(np.int64).ravel()
    if a.size == 1:
        return int(a[0]), int(a[0])
    if a.size == 2:
        return int(a[0]), int(a[1])
    raise NeurostackError(f"node '{node_name}': {name} {a.tolist()} is not one or two integers")


def _expected_input(fn: FlatNode) -> tuple[int, ...] | int | None:
    """What a node wants as input: a full shape, a number of dimensions, or None (anything)."""
    node, t = fn.node, fn.type
    if t in ("Affine", "Linear"):
        return (int(np.shape(node.weight)[-1]),) if np.ndim(node.weight) == 2 else None
    if t == "Conv2d" or t in ("SumPool2d", "AvgPool2d"):
        return 3
    if t == "Conv1d":
        return 2
    if t in ELEMENTWISE_PARAMS:
        shapes = [np.shape(getattr(node, p)) for p in ELEMENTWISE_PARAMS[t] if getattr(node, p, None) is not None]
        big = [s for s in shapes if int(np.prod(s)) > 1]
        return tuple(big[0]) if big else None
    if t == "Flatten" or t in EXTENSIONS:
        return _declared(node, "input_type")
    return None


def _strip_batch(shape: tuple[int, ...], want) -> tuple[int, ...]:
    ndim = want if isinstance(want, int) else (len(want) if want is not None else None)
    while ndim is not None and len(shape) > ndim and shape[0] == 1:
        shape = shape[1:]
    return shape


def _conv_out(size: int, pad_lo: int, pad_hi: int, dil: int, k: int, stride: int) -> int:
    return (size + pad_lo + pad_hi - dil * (k - 1) - 1) // stride + 1


def _conv_geometry(fn: FlatNode, in_shape: tuple[int, ...]) -> dict:
    """Conv1d/Conv2d as a 2-d conv: channels, sizes, kernel, stride, padding (low side), dilation, groups."""
    node, name = fn.node, fn.name
    w = np.asarray(node.weight)
    one_d = fn.type == "Conv1d"
    if w.ndim != (3 if one_d else 4):
        raise NeurostackError(f"node '{name}': {fn.type} weight has shape {w.shape}")
    groups = _pair(node.groups, "groups", name)[0] if node.groups is not None else 1
    if one_d:
        c, length = in_shape
        h, wd, kh, kw = 1, length, 1, w.shape[2]
        sh, sw = 1, _pair(node.stride, "stride", name)[0]
        dh, dw = 1, _pair(node.dilation, "dilation", name)[0]
    else:
        c, h, wd = in_shape
        kh, kw = w.shape[2], w.shape[3]
        sh, sw = _pair(node.stride, "stride", name)
        dh, dw = _pair(node.dilation, "dilation", name)
    if min(sh, sw, dh, dw) < 1:
        raise NeurostackError(f"node '{name}': {fn.type} stride {(sh, sw)} and dilation {(dh, dw)} must be >= 1")
    if groups < 1 or c != w.shape[1] * groups or w.shape[0] % groups:
        raise NeurostackError(f"node '{name}': {fn.type} weight {w.shape} with groups={groups} does not fit "
                              f"{c} input channels")
    pad = node.padding
    if isinstance(pad, bytes):
        pad = pad.decode()
    if isinstance(pad, np.ndarray) and pad.dtype.kind in "SUO":
        pad = str(pad.ravel()[0].decode() if isinstance(pad.ravel()[0], bytes) else pad.ravel()[0])
    if isinstance(pad, str):
        if pad == "valid":
            ph = (0, 0)
            pw = (0, 0)
        elif pad == "same":
            if sh != 1 or sw != 1:
                raise NeurostackError(f"node '{name}': padding='same' needs stride 1 (PyTorch)")
            th, tw = dh * (kh - 1), dw * (kw - 1)
            ph, pw = (th // 2, th - th // 2), (tw // 2, tw - tw // 2)
        else:
            raise NeurostackError(f"node '{name}': unknown padding '{pad}'")
    elif one_d:
        p = _pair(pad, "padding", name)[0]
        ph, pw = (0, 0), (p, p)
    else:
        p0, p1 = _pair(pad, "padding", name)
        ph, pw = (p0, p0), (p1, p1)
    if min(ph + pw) < 0:
        raise NeurostackError(f"node '{name}': negative padding {_show(pad)}")
    if node.bias is not None and np.size(node.bias) not in (1, w.shape[0]):
        raise NeurostackError(f"node '{name}': {fn.type} bias has {np.size(node.bias)} entries for {w.shape[0]} "
                              f"output channels")
    oh = _conv_out(h, ph[0], ph[1], dh, kh, sh)
    ow = _conv_out(wd, pw[0], pw[1], dw, kw, sw)
    if oh < 1 or ow < 1:
        raise NeurostackError(f"node '{name}': {fn.type} on input {in_shape} gives an empty output")
    return dict(c_in=c, h=h, w=wd, c_out=int(w.shape[0]), oh=oh, ow=ow, kh=kh, kw=kw, sh=sh, sw=sw,
                ph=ph[0], pw=pw[0], dh=dh, dw=dw, groups=groups, one_d=one_d)


def _pool_geometry(fn: FlatNode, in_shape: tuple[int, ...]) -> dict:
    node, name = fn.node, fn.name
    if len(in_shape) != 3:
        raise NeurostackError(f"node '{name}': {fn.type} needs a (channels, height, width) input, got {in_shape}")
    c, h, w = in_shape
    kh, kw = _pair(node.kernel_size, "kernel_size", name)
    sh, sw = _pair(node.stride if node.stride is not None else node.kernel_size, "stride", name)
    ph, pw = _pair(node.padding if node.padding is not None else 0, "padding", name)
    if min(kh, kw, sh, sw) < 1 or min(ph, pw) < 0:
        raise NeurostackError(f"node '{name}': {fn.type} kernel {(kh, kw)}, stride {(sh, sw)} and padding "
                              f"{(ph, pw)} must be positive (padding >= 0)")
    oh, ow = _conv_out(h, ph, ph, 1, kh, sh), _conv_out(w, pw, pw, 1, kw, sw)
    if oh < 1 or ow < 1:
        raise NeurostackError(f"node '{name}': {fn.type} kernel {(kh, kw)} stride {(sh, sw)} does not fit {in_shape}")
    return dict(c=c, h=h, w=w, oh=oh, ow=ow, kh=kh, kw=kw, sh=sh, sw=sw, ph=ph, pw=pw)


def _flatten_shape(fn: FlatNode, in_shape: tuple[int, ...]) -> tuple[int, ...]:
    declared = _declared(fn.node, "output_type")
    if declared is not None and int(np.prod(declared)) == int(np.prod(in_shape)):
        return declared
    nd = len(in_shape)
    if nd == 0:
        return (1,)
    start = int(np.asarray(fn.node.start_dim)) % nd
    end = int(np.asarray(fn.node.end_dim)) % nd
    if end < start:
        raise NeurostackError(f"node '{fn.name}': Flatten start_dim {start} > end_dim {end} for input {in_shape}")
    return in_shape[:start] + (int(np.prod(in_shape[start:end + 1])),) + in_shape[end + 1:]


def _elementwise(fn: FlatNode, in_shape: tuple[int, ...] | None, warnings: list[str]) -> tuple[int, ...]:
    """Shape of a neuron / Scale / Threshold / Delay node; its parameters broadcast to it (fn.params)."""
    names = ELEMENTWISE_PARAMS[fn.type]
    arrays = {}
    for p in names:
        v = getattr(fn.node, p, None)
        if v is None:
            if p == "v_reset":
                v = 0.0
            elif p == "w_in":
                v = 1.0
            else:
                raise NeurostackError(f"node '{fn.name}': {fn.type} has no '{p}'")
        arrays[p] = np.asarray(v)
        if arrays[p].dtype.kind not in "fiub":
            raise NeurostackError(f"node '{fn.name}': parameter {p} is not numeric")
    big = [a.shape for a in arrays.values() if a.size > 1]
    shape = tuple(big[0]) if big else in_shape  # a mismatch with the input is reported by the edge check
    if shape is None:
        raise NeurostackError(f"node '{fn.name}': {fn.type} has scalar parameters and no input to take its "
                              f"shape from")
    for p, a in arrays.items():
        if a.shape == shape:
            continue
        if a.size == 1:
            warnings.append(f"broadcast scalar {p} of node '{fn.name}' to shape {shape}")
        else:
            try:
                np.broadcast_to(a, shape)
            except ValueError:
                raise NeurostackError(f"node '{fn.name}': parameter {p} of shape {a.shape} does not fit the "
                                      f"shape {shape} of its other parameters") from None
            warnings.append(f"broadcast {p} of node '{fn.name}' from {a.shape} to shape {shape}")
        arrays[p] = np.broadcast_to(a, shape)
    fn.params = arrays
    return shape


def infer_shapes(graph: nir.NIRGraph) -> Resolved:
    """Steps 1-3: flatten, order, check cycles, infer and check every shape (no discretisation yet)."""
    nodes, edges = flatten_graph(graph)
    for fn in nodes.values():
        if fn.type not in SUPPORTED:
            raise NeurostackError(f"node '{fn.name}': unsupported NIR primitive {fn.type}")
    tops_in = [n for n, fn in nodes.items() if fn.type == "Input" and not fn.nested_io]
    tops_out = [n for n, fn in nodes.items() if fn.type == "Output" and not fn.nested_io]
    if len(tops_in) != 1:
        raise NeurostackError(f"the graph needs exactly one Input node, it has {len(tops_in)}"
                              + (f" ({', '.join(tops_in)})" if tops_in else ""))
    if len(tops_out) != 1:
        raise NeurostackError(f"the graph needs exactly one Output node, it has {len(tops_out)}"
                              + (f" ({', '.join(tops_out)})" if tops_out else ""))
    input_name, output_name = tops_in[0], tops_out[0]
    _check_params(nodes)
    _check_stateless_cycles(nodes, edges)
    order, back = order_nodes(nodes, edges, input_name)
    back_set = set(back)
    warnings: list[str] = []
    sources: dict[str, list[str]] = {n: [] for n in nodes}
    consumers: dict[str, list[str]] = {n: [] for n in nodes}
    for a, b in edges:
        sources[b].append(a)
        consumers[a].append(b)

    for name, fn in nodes.items():
        if fn.type == ATTENTION_TYPE:
            attention.check_node(name, fn.node, sources[name], [a for a in sources[name] if (a, name) in back_set])
    declared_in = _declared(nodes[input_name].node, "input_type")
    for name in order:
        fn = nodes[name]
        fwd = [a for a in sources[name] if (a, name) not in back_set]
        in_shapes = [nodes[a].shape for a in fwd]
        for a, s in zip(fwd, in_shapes):
            if s != in_shapes[0]:
                raise NeurostackError(f"node '{name}': its inputs have different shapes ('{fwd[0]}' {in_shapes[0]}, "
                                      f"'{a}' {s})")
        in_shape = in_shapes[0] if in_shapes else None
        if fn.type == "Input" and not fn.nested_io:
            if declared_in is None:
                raise NeurostackError(f"Input node '{name}' has no shape (input_type "
                                      f"{_show(getattr(fn.node, 'input_type', None))})")
            shape = declared_in
            for c in consumers[name]:
                stripped = _strip_batch(shape, _expected_input(nodes[c]))
                if stripped != shape:
                    warnings.append(f"stripped batch dim from Input '{name}': {shape} -> {stripped}")
                    shape = stripped
                    break
            if any(s < 1 for s in shape):
                raise NeurostackError(f"Input node '{name}': shape {shape} has an empty or negative dimension")
            fn.in_shape = fn.shape = shape
            continue
        if in_shape is None:
            in_shape = _fallback_input_shape(fn)
        fn.in_shape = in_shape
        fn.shape = _output_shape(fn, in_shape, warnings)
        if fn.shape is not None and any(s < 1 for s in fn.shape):
            raise NeurostackError(f"node '{name}': output shape {fn.shape} has an empty or negative dimension")
    # every edge, back edges included, must join equal shapes
    for a, b in edges:
        sa, want = nodes[a].shape, nodes[b].in_shape
        if sa != want:
            raise NeurostackError(f"edge {a} -> {b}: '{a}' gives shape {sa} but '{b}' expects {want}")
    res = Resolved(nodes=nodes, edges=edges, order=order, back_edges=back, input_name=input_name,
                   output_name=output_name, on_cycle=_nodes_on_cycles(nodes, edges), warnings=warnings,
                   input_declared=declared_in)
    check_lowering(res)  # absurd shapes stop here, before anything of their size is allocated
    return res


def _fallback_input_shape(fn: FlatNode) -> tuple[int, ...]:
    """The input shape of a node none of whose inputs is computed before it (it only has back edges or none)."""
    want = _expected_input(fn)
    if isinstance(want, tuple):
        return want
    declared = _declared(fn.node, "input_type")
    if declared is not None:
        return declared
    raise NeurostackError(f"node '{fn.name}': cannot tell its input shape (no input edge and no declared type)")


def _output_shape(fn: FlatNode, in_shape: tuple[int, ...], warnings: list[str]) -> tuple[int, ...]:
    t, name = fn.type, fn.name
    if t == "Identity":
        return in_shape
    if t in ("Input", "Output"):  # nested pass-through, or the graph's Output
        declared = _declared(fn.node, "output_type" if t == "Output" else "input_type")
        if declared is not None and declared != in_shape:
            stripped = _strip_batch(declared, len(in_shape))
            if stripped != in_shape:
                raise NeurostackError(f"edge into '{name}': shape {in_shape} does not match the declared {declared}")
            warnings.append(f"stripped batch dim from {t} '{name}': {declared} -> {stripped}")
        return in_shape
    if t in ("Affine", "Linear"):
        w = np.asarray(fn.node.weight)
        if w.ndim != 2:
            raise NeurostackError(f"node '{name}': {t} weight must be 2-d (out, in), got shape {w.shape}")
        want = (w.shape[1],)
        if in_shape != want:
            fn.in_shape = want  # reported by the edge check
        if t == "Affine":
            b = np.asarray(fn.node.bias)
            if b.size not in (1, w.shape[0]):
                raise NeurostackError(f"node '{name}': Affine bias has {b.size} entries for {w.shape[0]} outputs")
        return (int(w.shape[0]),)
    if t in ("Conv1d", "Conv2d"):
        if len(in_shape) != (2 if t == "Conv1d" else 3):
            layout = "(channels, length)" if t == "Conv1d" else "(channels, height, width)"
            raise NeurostackError(f"edge into '{name}': {t} needs a {layout} input, got {in_shape}")
        declared = _declared(fn.node, "input_type")
        if declared is not None and _strip_batch(declared, len(in_shape)) != in_shape:
            raise NeurostackError(f"edge into '{name}': input shape {in_shape} does not match the {t}'s declared "
                                  f"input {declared}")
        g = _conv_geometry(fn, in_shape)
        return (g["c_out"], g["ow"]) if g["one_d"] else (g["c_out"], g["oh"], g["ow"])
    if t in ("SumPool2d", "AvgPool2d"):
        g = _pool_geometry(fn, in_shape)
        return (g["c"], g["oh"], g["ow"])
    if t == "Flatten":
        return _flatten_shape(fn, in_shape)
    if t in ELEMENTWISE_PARAMS:
        shape = _elementwise(fn, in_shape, warnings)
        fn.in_shape = shape
        return shape
    if t == ATTENTION_TYPE:  # its sources were checked in infer_shapes; the edge check compares their shapes
        fn.in_shape = tuple(int(s) for s in fn.node.shape)
        return fn.in_shape
    raise NeurostackError(f"node '{name}': unsupported NIR primitive {t}")


def _show(value) -> str:
    """A parameter value for an error message, kept short."""
    text = " ".join(repr(value.tolist() if isinstance(value, np.ndarray) else value).split())
    return text if len(text) <= 60 else text[:57] + "..."


def _check_params(nodes: dict[str, FlatNode]) -> None:
    """Every parameter numeric (a Conv's padding may be 'same' or 'valid') and finite, time constants positive."""
    for fn in nodes.values():
        for key, value in vars(fn.node).items():
            if key in ("input_type", "output_type", "metadata") or value is None:
                continue
            if key in getattr(fn.node, "NAME_FIELDS", ()):  # extension nodes name their sources
                continue
            a = value if isinstance(value, (str, bytes)) else np.asarray(value)
            if isinstance(a, (str, bytes)) or a.dtype.kind not in "biuf":
                if key == "padding" and fn.type in ("Conv1d", "Conv2d") and np.size(a) == 1:
                    continue  # 'same' / 'valid', checked with the geometry
                kind = type(value).__name__ if isinstance(a, (str, bytes)) else f"dtype {a.dtype}"
                raise NeurostackError(f"node '{fn.name}': parameter {key} is not numeric ({kind}: {_show(value)})")
            if a.dtype.kind == "f" and not np.all(np.isfinite(a)):
                raise NeurostackError(f"node '{fn.name}': parameter {key} holds NaN or infinite values")
        if fn.type in ("Input", "Output", "Flatten"):  # shapes the file declares (others are nir's own sums)
            for key in ("input_type", "output_type"):
                types = getattr(fn.node, key, None)
                for value in (types.values() if isinstance(types, dict) else ()):
                    if value is not None and _tuple(value) is None:
                        raise NeurostackError(f"node '{fn.name}': declared {key} {_show(value)} is not a shape")
        for key in TIME_CONSTANTS:
            v = getattr(fn.node, key, None)
            if v is not None and fn.type in NEURON_PARAMS and np.any(np.asarray(v, np.float64) <= 0):
                raise NeurostackError(f"node '{fn.name}': {key} must be positive (seconds)")
        if fn.type == "Delay" and np.any(np.asarray(fn.node.delay, np.float64) < 0):
            raise NeurostackError(f"node '{fn.name}': delay must not be negative")


def unsupported_nodes(graph: nir.NIRGraph) -> list[tuple[str, str]]:
    """(node name, reason) for every node the simulator cannot run; [] when the whole graph lowers."""
    try:
        nodes, _ = flatten_graph(graph)
    except NeurostackError as exc:
        return [("<graph>", str(exc))]
    problems = [(n, f"unsupported NIR primitive {fn.type}") for n, fn in nodes.items() if fn.type not in SUPPORTED]
    if problems:
        return problems
    try:
        infer_shapes(graph)
    except NeurostackError as exc:
        msg = str(exc)
        named = [n for n in nodes if f"'{n}'" in msg]
        return [(named[0] if named else "<graph>", msg)]
    return []


# --------------------------------------------------------------------------------------------- 4. lower
def _metadata_dt(graph: nir.NIRGraph) -> float | None:
    from neurostack.sim.load import neurostack_metadata

    dt = neurostack_metadata(graph).get("dt")
    try:
        return float(dt) if dt is not None else None
    except (TypeError, ValueError):
        return None


def lower(graph: nir.NIRGraph, *, dt: float | None = None, convention: str = "spec", reset: str | None = None,
          precision: str = "float32", spikes: str | None = None, initial_v: str | None = None) -> Plan:
    """Lower a NIR graph into a Plan for `run`.

    dt: time step in seconds; None takes the graph's neurostack metadata "dt", else the convention's default
    (conventions.TABLE), else fails when a node needs one. convention: one of CONVENTIONS. reset: "zero" |
    "subtract" | None (the convention's default). precision: "float32" | "float64". spikes: "single" |
    "multi" | None (the convention's default; like the reset mode, no file records it: Sinabs and Rockpool
    models can be either). initial_v: "zero" | "v_leak" | None (the convention's default) for the membranes'
    starting voltage.
    """
    conv = get_convention(convention, reset, spikes)
    if precision not in ("float32", "float64"):
        raise NeurostackError(f"unknown precision '{precision}': choose float32 or float64")
    if initial_v not in (None, "zero", "v_leak"):
        raise NeurostackError(f"unknown initial_v '{initial_v}': choose zero or v_leak")
    res = infer_shapes(graph)
    timed = [n for n in res.order if res.nodes[n].type in TIMED]
    if dt is None:
        dt = _metadata_dt(graph)
    if dt is None and timed:
        dt = conv.dt
        if dt is None:
            raise NeurostackError("graph carries no dt: pass --dt")
        res.warnings.append(f"graph carries no dt: using the {conv.name} convention's {dt:g} s")
    if dt is not None:
        dt = float(dt)
        if not np.isfinite(dt) or dt <= 0:
            raise NeurostackError(f"dt must be a positive number of seconds, got {dt}")
        with np.errstate(over="ignore", under="ignore"):
            as_plan = np.dtype(precision).type(dt)
        if not np.isfinite(as_plan) or as_plan == 0:
            raise NeurostackError(f"dt = {dt:g} s is out of the range of {precision}")
    check_lowering(res, np.dtype(precision).itemsize, dt)  # now with the delay rings dt implies
    return _pack(res, conv, dt, np.dtype(precision), initial_v or conv.v_init)


ALIGN = 16  # values: node outputs and parameter blocks start at multiples of 64 bytes (float32; 128 for float64)


def aligned(a: np.ndarray, boundary: int = 64) -> np.ndarray:
    """A copy of the 1-D array `a` whose data starts at a multiple of `boundary` bytes."""
    raw = np.empty(a.nbytes + boundary, np.uint8)
    start = -raw.ctypes.data % boundary
    out = raw[start:start + a.nbytes].view(a.dtype)
    out[:] = a
    return out


class _Packer:
    """Collects flat parameter / state arrays while nodes are lowered one by one."""

    def __init__(self, dtype: np.dtype):
        self.dtype = dtype
        self.fp: list[np.ndarray] = [np.array([0.0, 1.0], dtype)]  # fparams[0:2] = typed constants 0 and 1
        self.fp_len = 2
        self.ip: list[np.ndarray] = []
        self.ip_len = 0
        self.st_len = 0

    def floats(self, *arrays) -> int:
        self._align()
        off = self.fp_len
        for a in arrays:
            a = np.ascontiguousarray(np.asarray(a).astype(self.dtype).ravel())
            self.fp.append(a)
            self.fp_len += a.size
        return off

    def _align(self) -> None:
        """Start the next block at a multiple of ALIGN values (vector loads of a weight row stay aligned)."""
        pad = -self.fp_len % ALIGN
        if pad:
            self.fp.append(np.zeros(pad, self.dtype))
            self.fp_len += pad

    def packed_floats(self) -> np.ndarray:
        """fparams, its first value at a 64-byte boundary (numpy only promises 16)."""
        return aligned(np.concatenate(self.fp).astype(self.dtype))

    def ints(self, values) -> int:
        off = self.ip_len
        a = np.asarray(values, np.int64).ravel()
        self.ip.append(a)
        self.ip_len += a.size
        return off

    def state(self, n: int) -> int:
        off = self.st_len
        self.st_len += int(n)
        return off


def _pack(res: Resolved, conv: Convention, dt: float | None, dtype: np.dtype, v_init: str) -> Plan:
    names = res.order
    index = {n: i for i, n in enumerate(names)}
    n_nodes = len(names)
    warnings = list(res.warnings)
    pk = _Packer(dtype)
    kinds = np.zeros(n_nodes, np.int64)
    out_len = np.array([int(np.prod(res.nodes[n].shape)) for n in names], np.int64)
    in_len = np.array([int(np.prod(res.nodes[n].in_shape)) for n in names], np.int64)
    out_off = np.concatenate([[0], np.cumsum(-(-out_len // ALIGN) * ALIGN)[:-1]]).astype(np.int64)  # aligned
    fp_off = np.zeros(n_nodes, np.int64)
    ip_off = np.zeros(n_nodes, np.int64)
    st_off = np.zeros(n_nodes, np.int64)
    st_len = np.zeros(n_nodes, np.int64)
    v_off = np.full(n_nodes, -1, np.int64)
    attention_scratch = []

    for k, name in enumerate(names):
        fn = res.nodes[name]
        t = fn.type
        if t == ATTENTION_TYPE:  # reads its Q, K, V sources from the step buffer: no summed input
            full = attention.check_node(name, fn.node, [a for a, b in res.edges if b == name], [])
            if res.input_name in full.values():  # the Input's output is the input row, not a slot of the buffer
                raise NeurostackError(f"node '{name}': {fn.node.NIR_TYPE} reads the graph's Input node "
                                      f"'{res.input_name}' directly; put a node (e.g. a LIF) between them")
            offsets = {f: int(out_off[index[src]]) for f, src in full.items()}
            kind, (fo, io, state_n) = P.K_ATTENTION, attention.lower_node(fn.node, offsets, pk)
            in_len[k] = 0
            attention_scratch.append(attention.scratch_len(fn.node))
        else:
            kind, fo, io, state_n = _lower_node(fn, res, conv, dt, dtype, v_init, pk, warnings)
        kinds[k], fp_off[k], ip_off[k] = kind, fo, io
        st_len[k] = state_n
        st_off[k] = pk.state(state_n)
        if t in NEURON_PARAMS:
            v_off[k] = st_off[k]

    src_ptr = np.zeros(n_nodes + 1, np.int64)
    src_node, src_prev = [], []
    back = set(res.back_edges)
    for k, name in enumerate(names):
        srcs = [(a, b) for a, b in res.edges if b == name]
        src_node += [index[a] for a, _ in srcs]
        src_prev += [1 if (a, b) in back else 0 for a, b in srcs]
        src_ptr[k + 1] = src_ptr[k] + len(srcs)
    prev_nodes = sorted({index[a] for a, _ in res.back_edges})
    multi_src = [k for k in range(n_nodes) if src_ptr[k + 1] - src_ptr[k] != 1 or
                 any(src_prev[e] for e in range(src_ptr[k], src_ptr[k + 1]))]
    # the kernels' scratch: the summed input of a node with several sources, or an attention node's S
    scratch_len = int(max([in_len[k] for k in multi_src] + attention_scratch, default=0))

    return Plan(
        node_names=list(names),
        node_types={n: res.nodes[n].type for n in names},
        shapes={n: tuple(res.nodes[n].shape) for n in names},
        input_name=res.input_name, output_name=res.output_name,
        input_shape=tuple(res.nodes[res.input_name].shape), output_shape=tuple(res.nodes[res.output_name].shape),
        dt=dt, convention=conv.name, reset=conv.reset, spikes=conv.spikes, precision=dtype.name,
        back_edges=list(res.back_edges), warnings=warnings,
        kinds=kinds, out_off=out_off, out_len=out_len, in_len=in_len, src_ptr=src_ptr,
        src_node=np.asarray(src_node, np.int64), src_prev=np.asarray(src_prev, np.int64),
        fp_off=fp_off, ip_off=ip_off, st_off=st_off, st_len=st_len, v_off=v_off,
        fparams=pk.packed_floats(),
        iparams=np.concatenate(pk.ip).astype(np.int64) if pk.ip else np.zeros(1, np.int64),
        prev_nodes=np.asarray(prev_nodes, np.int64), scratch_len=scratch_len,
        extra={"on_cycle": sorted(res.on_cycle), "input_declared": res.input_declared},
    )


def _lower_node(fn: FlatNode, res: Resolved, conv: Convention, dt, dtype, v_init, pk: _Packer, warnings):
    """(kind, fparams offset, iparams offset, state length) of one node."""
    t, node = fn.type, fn.node
    if t == "Input" and not fn.nested_io:
        return P.K_INPUT, 0, 0, 0
    if t in ("Input", "Output", "Identity"):
        return (P.K_OUTPUT if t == "Output" and not fn.nested_io else P.K_IDENTITY), 0, 0, 0
    if t == "Flatten":
        return P.K_FLATTEN, 0, 0, 0
    if t in ("Affine", "Linear"):
        w = np.asarray(node.weight, np.float64)
        bias = np.broadcast_to(np.asarray(node.bias, np.float64).ravel(), (w.shape[0],)) if t == "Affine" \
            else np.zeros(w.shape[0])
        return P.K_AFFINE, pk.floats(bias, w.T), 0, 0
    if t == "Scale":
        return P.K_SCALE, pk.floats(fn.params["scale"]), 0, 0
    if t in ("Conv1d", "Conv2d"):
        g = _conv_geometry(fn, fn.in_shape)
        w = np.asarray(node.weight, np.float64)
        bias = np.broadcast_to(np.asarray(node.bias if node.bias is not None else 0.0, np.float64).ravel(),
                               (g["c_out"],))
        io = pk.ints([g[k] for k in ("c_in", "h", "w", "c_out", "oh", "ow", "kh", "kw", "sh", "sw", "ph", "pw",
                                     "dh", "dw", "groups")])
        return P.K_CONV, pk.floats(bias, w), io, 0
    if t in ("SumPool2d", "AvgPool2d"):
        g = _pool_geometry(fn, fn.in_shape)
        io = pk.ints([g[k] for k in ("c", "h", "w", "oh", "ow", "kh", "kw", "sh", "sw", "ph", "pw")]
                     + [int(t == "AvgPool2d")])
        return P.K_SUMPOOL, pk.floats([g["kh"] * g["kw"]]), io, 0
    if t == "Threshold":
        io = pk.ints([int(conv.threshold == "inclusive")])
        return P.K_THRESHOLD, pk.floats(fn.params["threshold"]), io, 0
    if t == "Delay":
        ratio = np.asarray(fn.params["delay"], np.float64).ravel() / dt
        steps = np.rint(ratio).astype(np.int64)
        if np.any(np.abs(ratio - steps) > 1e-3):
            warnings.append(f"delays of node '{fn.name}' are not whole multiples of dt = {dt:g} s: rounded to "
                            f"{steps.min()}..{steps.max()} steps")
        ring = int(steps.max(initial=0)) + 1
        io = pk.ints(np.concatenate([[ring], steps]))
        return P.K_DELAY, 0, io, ring * steps.size
    if t in NEURON_PARAMS:
        return _lower_neuron(fn, res, conv, dt, dtype, v_init, pk, warnings)
    raise NeurostackError(f"node '{fn.name}': unsupported NIR primitive {t}")


def _inverse_tau(tau: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """1/tau in the plan precision, as the tau_mem_inv the producer multiplied with.

    Norse (and neurostack) keep tau_mem_inv (1/s) as a float32 tensor and compute a = dt * tau_mem_inv; the
    file holds tau = 1/tau_mem_inv. In float32, float32(1/tau) recovers tau_mem_inv exactly. In float64, 1/tau
    comes back within an ulp or two of that float32 value, and we snap to it (which also makes a float64 run
    bit-identical to the model run in float64), keeping any value that is not that close to a float32.
    """
    inv = 1.0 / np.asarray(tau, np.float64)
    if dtype == np.float32:
        return inv.astype(np.float32)
    as32 = inv.astype(np.float32).astype(np.float64)
    return np.where(np.abs(as32 - inv) <= 2 * np.spacing(inv), as32, inv)


def _product_decay(conv: Convention, dt: float, tau: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """Per-step decay d in [0, 1] (float64, or the exact float32 values for a float32 plan).

    Producers with Euler decays (snnTorch, Spyx) hold beta in float32 and export tau = dt/(1-beta) computed in
    float32; for beta below ~0.6 the round trip 1 - dt/tau can land one float32 ulp off beta. For a float32
    plan we take, of the three float32 values nearest 1 - dt/tau, one whose float32 dt/(1-beta) gives tau back.
    """
    d = np.clip(decay_factor(conv, dt, tau), 0.0, 1.0)
    if dtype != np.float32 or conv.decay != "euler":
        return d
    tau32 = np.asarray(tau).astype(np.float32)
    if not np.array_equal(tau32.astype(np.float64), np.asarray(tau, np.float64)):
        return d  # tau is not a float32 value: nothing to reproduce
    best = d.astype(np.float32)
    dt32, one = np.float32(dt), np.float32(1.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        fits = dt32 / (one - best) == tau32
        for cand in (np.nextafter(best, np.float32(0)), np.nextafter(best, one)):
            better = ~fits & (dt32 / (one - cand) == tau32)
            best = np.where(better, cand, best)
            fits |= better
    return best.astype(np.float64)


def _lower_neuron(fn: FlatNode, res: Resolved, conv: Convention, dt, dtype, v_init, pk: _Packer, warnings):
    """Discretise one LIF / CubaLIF / LI / CubaLI / IF / I node with the convention (see conventions.py)."""
    t, p = fn.type, fn.params
    n = int(np.prod(fn.shape))
    f64 = lambda key, default=0.0: np.asarray(p[key], np.float64).ravel() if key in p else np.full(n, default)
    r = f64("r", 1.0)
    v_leak = f64("v_leak")
    zeros, ones = np.zeros(n), np.ones(n)
    taus = {key: f64(key) for key in TIME_CONSTANTS if key in p}
    if conv.tau_fix == "norse_1_1" and taus and all(np.all(v < dt) for v in taus.values()):
        warnings.append(f"node '{fn.name}': time constants below dt = {dt:g} s read as Norse 1.1.0's export bug "
                        f"(tau = dt/tau_mem_inv): divided by dt")
        taus = {k: v / dt for k, v in taus.items()}
    spiking = t in ("LIF", "CubaLIF", "IF")
    has_syn = t in ("CubaLIF", "CubaLI")
    f = np.zeros(P.N_NEURON_FLAGS, np.int64)
    f[P.F_SPIKING] = int(spiking)
    f[P.F_SUBTRACT] = int(conv.reset == "subtract")
    f[P.F_NEXT_STEP] = int(conv.reset_timing == "next_step")
    f[P.F_INCLUSIVE] = int(conv.threshold == "inclusive")
    f[P.F_MULTI] = int(conv.spikes == "multi")
    f[P.F_LATENCY] = int(conv.latency)
    f[P.F_CLEAR_NEW] = int(conv.zero_clears == "new_for_cuba_and_recurrent"
                           and (t == "CubaLIF" or (t == "LIF" and fn.name in res.on_cycle)))
    dt_ = dtype.type(dt)
    syn_decay, syn_gain = zeros, zeros

    if t in ("IF", "I"):  # forward Euler of dv/dt = r*x in every convention: v' = 1*v + (dt*r)*x + 0
        f[P.F_UPDATE] = P.U_PRODUCT
        decay, gain, leak = ones, snap_unit(dt * r), zeros
        start = zeros
    else:
        tau = taus["tau"] if "tau" in taus else taus["tau_mem"]
        if conv.update == "increment":
            f[P.F_UPDATE] = P.U_INC_LIF if t == "LIF" else P.U_INC_LI
            decay = dt_ * _inverse_tau(tau, dtype)  # a = dt * tau_mem_inv, computed in the plan precision
            gain, leak = r, v_leak
        else:
            f[P.F_UPDATE] = P.U_PRODUCT
            d = _product_decay(conv, dt, tau, dtype)
            decay, gain, leak = d, input_gain(conv, dt, tau, r, d), (1.0 - d) * v_leak
        start = v_leak if v_init == "v_leak" else zeros
        if has_syn:
            tau_syn = taus["tau_syn"]
            syn_gain = syn_input_gain(conv, dt, tau_syn, f64("w_in", 1.0))
            if conv.syn_order == "jump_then_decay":
                f[P.F_SYN] = P.S_JUMP_THEN_DECAY
                syn_decay = dt_ * _inverse_tau(tau_syn, dtype)
            else:
                f[P.F_SYN] = P.S_DECAY_THEN_ADD if conv.syn_order == "decay_then_add" else P.S_ADD_THEN_DECAY
                syn_decay = _product_decay(conv, dt, tau_syn, dtype)
    v_th = f64("v_threshold", np.inf)
    v_reset = f64("v_reset")
    if spiking and conv.spikes == "multi" and np.any(v_th <= 0):
        raise NeurostackError(f"node '{fn.name}': multi-spike neurons need v_threshold > 0")
    def cast(a):
        with np.errstate(over="ignore", invalid="ignore"):  # overflow is reported below
            return np.broadcast_to(np.asarray(a).astype(dtype), (n,))
    arrays = [None] * P.N_NEURON_PARAMS
    arrays[P.P_DECAY], arrays[P.P_GAIN], arrays[P.P_LEAK] = cast(decay), cast(gain), cast(leak)
    arrays[P.P_THRESHOLD], arrays[P.P_RESET] = cast(v_th), cast(v_reset)
    arrays[P.P_SYN_DECAY], arrays[P.P_SYN_GAIN], arrays[P.P_V_INIT] = cast(syn_decay), cast(syn_gain), cast(start)
    if not all(np.all(np.isfinite(arrays[a]))
               for a in (P.P_DECAY, P.P_GAIN, P.P_LEAK, P.P_SYN_DECAY, P.P_SYN_GAIN, P.P_V_INIT)):
        raise NeurostackError(f"node '{fn.name}': with dt = {dt:g} s its discretised parameters are not finite in "
                              f"{dtype.name}: check dt and the time constants")
    fo = pk.floats(*arrays)
    io = pk.ints(f)
    return P.K_NEURON, fo, io, n * (2 if has_syn else 1)

