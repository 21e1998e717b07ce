"""A NIR graph -> a PyTorch module that runs it the way the NIR spec (and neurostack's simulator) reads it.

    net = import_nir("model.nir")                 # or a nir.NIRGraph; repairs are warned about (net.warnings)
    out = net(x)                                  # x (T, B, *input_shape) -> (T, B, *output_shape)
    out, outputs, voltages = net.run(x, record=True, record_voltages=True)   # every node, by NIR name

Semantics are the simulator's `spec` convention (neurostack.sim.conventions), so the module and
`neurostack.sim` can be compared spike for spike: forward Euler with dt (argument, else the graph's neurostack
metadata, else 1 ms with a warning); integrate, spike when strictly above threshold, reset to v_reset in the
same step; membranes and synaptic currents start at 0. LIF and LI are exactly Norse's LIFBox / LIBox
(`neurostack.frontend.functional`); the other neurons follow the simulator's forms (kernels.py):
  CubaLIF / CubaLI  u = i + (dt w_in / tau_syn) x;  v <- v + a((v_leak - v) + r u);  i <- u - a_syn u
  IF / I            v <- v + (dt r) x
Affine, Linear, Conv1d, Conv2d (PyTorch semantics), SumPool2d / AvgPool2d (zero padding), Flatten, Scale,
Threshold (x > threshold) and Delay (y[t] = x[t - round(delay/dt)], zeros before the start) run as written,
and so does neurostack's extension node neurostack.SpikingSelfAttention (per head (Q K^T) V * scale of the nodes it
names, `neurostack.sim.extensions`).

Reading reuses the simulator's: `neurostack.sim.load.load_graph` for files (tolerant, repairs listed) and
`neurostack.sim.lowering.infer_shapes` for flattening subgraphs, the execution order, cycles and shapes. A
node this module cannot run raises NeurostackError naming it; no node is ever dropped.

Execution: an acyclic graph runs node by node over the whole sequence (synapses on all T*B inputs at once,
neurons looping over time), which repeats the original model's floating-point operations exactly. A graph with
a cycle runs step by step; an edge that closes a cycle reads its source's output of the previous step (zeros
at t = 0), as the simulator and nirtorch do. (nirtorch's own nir_to_torch is not used: it only steps through
time, and its default maps lose an Affine's bias and a SumPool2d's padding.)
"""

from __future__ import annotations

import copy
import os
import warnings

import nir
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from neurostack.errors import NeurostackError
from neurostack.frontend.functional import LIFParameters, LIParameters, li_step, lif_step
from neurostack.frontend.surrogate import spike_function
from neurostack.sim import attention
from neurostack.sim.conventions import get_convention, snap_unit, syn_input_gain
from neurostack.sim.extensions import ATTENTION_TYPE
from neurostack.sim.load import load_graph, neurostack_metadata, repair_graph
from neurostack.sim.lowering import TIMED, FlatNode, flatten_graph, infer_shapes

SPEC = get_convention("spec")
NEURONS = ("LIF", "LI", "CubaLIF", "CubaLI", "IF", "I")
SPIKING = ("LIF", "CubaLIF", "IF")
PASS_THROUGH = ("Input", "Output", "Identity")
SUPPORTED = (*PASS_THROUGH, "Affine", "Linear", "Conv1d", "Conv2d", "SumPool2d", "AvgPool2d", "Flatten", "Scale",
             "Threshold", "Delay", *NEURONS, ATTENTION_TYPE)


def import_nir(source: str | os.PathLike | nir.NIRGraph, *, dt: float | None = None,
               dtype: torch.dtype = torch.float32) -> "NIRNetwork":
    """The NIR graph `source` (a file path or a nir.NIRGraph, which is left untouched) as a `NIRNetwork`.

    dt: time step in seconds (None: the graph's neurostack metadata, else 1e-3 s with a warning).
    dtype: the precision of parameters and states (`.to()` also works afterwards).
    What had to be repaired to read the graph is issued as one UserWarning and kept in `.warnings`.
    """
    if isinstance(source, nir.NIRNode) and not isinstance(source, nir.NIRGraph):
        raise NeurostackError(f"import_nir needs a NIR graph, got a single {type(source).__name__} node")
    if isinstance(source, nir.NIRGraph):
        graph = copy.deepcopy(source)
        repairs, metadata = repair_graph(graph), neurostack_metadata(graph)
        where = "NIR graph"
    else:
        loaded = load_graph(source)
        graph, repairs, metadata = loaded.graph, list(loaded.warnings), loaded.metadata
        where = os.fspath(source)
    nodes, _ = flatten_graph(graph)
    unknown = [f"'{name}' ({fn.type})" for name, fn in nodes.items() if fn.type not in SUPPORTED]
    if unknown:
        raise NeurostackError(f"{where}: cannot run node(s) {', '.join(unknown)}: unsupported NIR primitive")
    resolved = infer_shapes(graph)
    repairs += [w for w in resolved.warnings if w not in repairs]
    dt = _resolve_dt(dt, metadata, any(fn.type in TIMED for fn in resolved.nodes.values()), repairs)
    net = NIRNetwork(resolved, dt, dtype, repairs, metadata)  # adds a note if it has to round delays
    if net.warnings:
        warnings.warn(f"{where}: " + "; ".join(net.warnings), UserWarning, stacklevel=2)
    return net


def _resolve_dt(dt, metadata: dict, timed: bool, repairs: list[str]) -> float | None:
    if dt is None and metadata.get("dt") is not None:
        dt = metadata["dt"]
    if dt is None and timed:
        dt = SPEC.dt
        repairs.append(f"graph carries no dt: using the spec convention's {dt:g} s")
    if dt is not None:
        try:
            dt = float(dt)
        except (TypeError, ValueError):
            raise NeurostackError(f"dt must be a number of seconds, got {dt!r}") from None
        if not np.isfinite(dt) or dt <= 0:
            raise NeurostackError(f"dt must be a positive number of seconds, got {dt}")
    return dt


class NIRNetwork(nn.Module):
    """A NIR graph as a PyTorch module (see the module docstring). Inputs and outputs are time-major.

    node_names / node_types: the flattened graph's nodes (dotted names inside subgraphs) in execution order;
    input_shape / output_shape: per sample; dt in seconds; warnings: the repairs made while reading;
    metadata: the graph's neurostack metadata ({} if none).
    """

    def __init__(self, resolved, dt: float | None, dtype: torch.dtype, repairs: list[str], metadata: dict):
        super().__init__()
        self.dt = dt
        self.warnings = list(repairs)
        self.metadata = dict(metadata)
        self.node_names = list(resolved.order)
        self.node_types = {n: resolved.nodes[n].type for n in self.node_names}
        self.shapes = {n: tuple(resolved.nodes[n].shape) for n in self.node_names}
        self.in_shapes = [tuple(resolved.nodes[n].in_shape) for n in self.node_names]
        self.input_name, self.output_name = resolved.input_name, resolved.output_name
        self.input_shape, self.output_shape = self.shapes[self.input_name], self.shapes[self.output_name]
        self._k_in = self.node_names.index(self.input_name)
        index = {n: k for k, n in enumerate(self.node_names)}
        back = set(resolved.back_edges)
        # per node, its sources in file order: (source index, read the previous step's output)
        self.sources = [[(index[a], (a, b) in back) for a, b in resolved.edges if b == name]
                        for name in self.node_names]
        # attention nodes read their Q, K, V sources by name instead of summing them
        self.qkv = {k: [index[src] for src in attention.check_node(name, resolved.nodes[name].node,
                                                                   [a for a, b in resolved.edges if b == name],
                                                                   []).values()]
                    for k, name in enumerate(self.node_names) if self.node_types[name] == ATTENTION_TYPE}
        self.cyclic = bool(back)
        self.nodes = nn.ModuleList([_build_node(resolved.nodes[n], dt, dtype, self.warnings) for n in self.node_names])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x (T, B, *input_shape) -> the Output node over time, (T, B, *output_shape)."""
        out, _, _ = self.run(x)
        return out

    def run(self, x: torch.Tensor, record: bool = False, record_voltages: bool = False):
        """x (T, B, *input_shape) -> (output (T, B, *output_shape), outputs, voltages).

        outputs: every node's output (spikes of spiking neurons, voltages of LI/CubaLI/I, values otherwise) by
        NIR node name, (T, B, *shape); voltages: each neuron node's membrane after the step (after reset).
        Both are empty dicts unless asked for.
        """
        if x.ndim != len(self.input_shape) + 2 or tuple(x.shape[2:]) != self.input_shape:
            raise NeurostackError(f"input has shape {tuple(x.shape)}, expected (T, B, "
                                  f"{', '.join(map(str, self.input_shape))}) for Input '{self.input_name}'")
        outs, volts = (self._run_steps(x) if self.cyclic else self._run_layers(x))
        output = outs[self.node_names.index(self.output_name)]
        outputs = {n: outs[k] for k, n in enumerate(self.node_names)} if record else {}
        voltages = {self.node_names[k]: v for k, v in volts.items()} if record_voltages else {}
        return output, outputs, voltages

    def _input_of(self, k: int, current: list, previous: list | None, x: torch.Tensor, lead: int) -> torch.Tensor:
        """Node k's input: its sources summed in file order (a back edge reads `previous`); zeros without any
        source. lead: how many leading dims of the graph input `x` (T, B, ...) the values have (2 or 1)."""
        total = None
        for j, back in self.sources[k]:
            value = previous[j] if back else current[j]
            total = value if total is None else total + value
        return x.new_zeros((*x.shape[2 - lead:2], *self.in_shapes[k])) if total is None else total

    def _run_layers(self, x: torch.Tensor):
        """Acyclic graph: each node over the whole sequence, in execution order."""
        t, b = x.shape[:2]
        outs: list = [None] * len(self.nodes)
        volts: dict[int, torch.Tensor] = {}
        for k, node in enumerate(self.nodes):
            if k == self._k_in:
                outs[k] = x
                continue
            if k in self.qkv:
                q, kk, v = (outs[j].reshape(t * b, *outs[j].shape[2:]) for j in self.qkv[k])
                outs[k] = node(q, kk, v).reshape(t, b, *self.shapes[self.node_names[k]])
                continue
            h = self._input_of(k, outs, None, x, 2)
            if node.stateful:
                state = node.initial_state(h[0])
                ys, vs = [], []
                for step in range(t):
                    y, state, v = node.step(h[step], state)
                    ys.append(y)
                    vs.append(v)
                outs[k] = torch.stack(ys)
                if vs[0] is not None:
                    volts[k] = torch.stack(vs)
            else:
                y = node(h.reshape(t * b, *h.shape[2:]))
                outs[k] = y.reshape(t, b, *y.shape[1:])
        return outs, volts

    def _run_steps(self, x: torch.Tensor):
        """Graph with cycles: every node once per step, back edges reading the previous step."""
        t, b = x.shape[:2]
        previous = [x.new_zeros((b, *self.shapes[n])) for n in self.node_names]
        states = [None] * len(self.nodes)
        seq: list[list] = [[] for _ in self.nodes]
        vseq: dict[int, list] = {}
        for step in range(t):
            current: list = [None] * len(self.nodes)
            for k, node in enumerate(self.nodes):
                if k == self._k_in:
                    current[k] = x[step]
                elif k in self.qkv:
                    current[k] = node(*(current[j] for j in self.qkv[k]))
                elif node.stateful:
                    h = self._input_of(k, current, previous, x, 1)
                    if states[k] is None:
                        states[k] = node.initial_state(h)
                    current[k], states[k], v = node.step(h, states[k])
                    if v is not None:
                        vseq.setdefault(k, []).append(v)
                else:
                    current[k] = node(self._input_of(k, current, previous, x, 1))
                seq[k].append(current[k])
            previous = current
        return [torch.stack(s) for s in seq], {k: torch.stack(v) for k, v in vseq.items()}


# ------------------------------------------------------------------------------------------------ node modules
class _Node(nn.Module):
    """One NIR node. Stateless: forward maps (N, *in_shape) -> (N, *shape), N any batch of samples and steps.
    Stateful (`stateful = True`): initial_state(x_t) and step(x_t, state) -> (y_t, state, membrane or None)."""

    stateful = False


class _PassThrough(_Node):
    def forward(self, x):
        return x


class _Affine(_Node):
    """Affine (bias) or Linear (bias None): y = x W^T + b, PyTorch's F.linear as in nn.Linear."""

    def __init__(self, weight: torch.Tensor, bias: torch.Tensor | None):
        super().__init__()
        self.weight = nn.Parameter(weight)
        self.bias = nn.Parameter(bias) if bias is not None else None

    def forward(self, x):
        return F.linear(x, self.weight, self.bias)


class _Conv(_Node):
    """Conv1d / Conv2d with PyTorch semantics (padding: integers or 'same' / 'valid')."""

    def __init__(self, weight, bias, stride, padding, dilation, groups: int):
        super().__init__()
        self.weight = nn.Parameter(weight)
        self.bias = nn.Parameter(bias)
        self.stride, self.padding, self.dilation, self.groups = stride, padding, dilation, groups
        self.conv = F.conv1d if weight.ndim == 3 else F.conv2d

    def forward(self, x):
        return self.conv(x, self.weight, self.bias, self.stride, self.padding, self.dilation, self.groups)


class _Pool(_Node):
    """SumPool2d (sums over the zero-padded window) or AvgPool2d (those sums divided by the window area)."""

    def __init__(self, kernel: tuple[int, int], stride: tuple[int, int], padding: tuple[int, int], average: bool):
        super().__init__()
        self.kernel, self.stride, self.padding, self.average = kernel, stride, padding, average

    def forward(self, x):
        ph, pw = self.padding
        if ph or pw:
            x = F.pad(x, (pw, pw, ph, ph))
        y = F.avg_pool2d(x, self.kernel, self.stride, divisor_override=1)
        return y / (self.kernel[0] * self.kernel[1]) if self.average else y


class _Flatten(_Node):
    def __init__(self, shape: tuple[int, ...]):
        super().__init__()
        self.shape = tuple(shape)

    def forward(self, x):
        return x.reshape(x.shape[0], *self.shape)


class _Scale(_Node):
    def __init__(self, scale: torch.Tensor):
        super().__init__()
        self.register_buffer("scale", scale)

    def forward(self, x):
        return x * self.scale


class _Threshold(_Node):
    """Heaviside: 1 where x > threshold (strict), with a surrogate gradient."""

    def __init__(self, threshold: torch.Tensor):
        super().__init__()
        self.register_buffer("threshold", threshold)
        self.spike_fn = spike_function("atan")

    def forward(self, x):
        return self.spike_fn(x - self.threshold)


class _Attention(_Node):
    """neurostack.SpikingSelfAttention: Q, K, V (B, D, N[, 1]) -> per head (Q K^T) V * scale, same shape (as the
    Spikformer block computes it, on the channels-first layout)."""

    def __init__(self, shape: tuple[int, ...], heads: int, scale: float):
        super().__init__()
        self.shape, self.heads, self.scale = tuple(shape), int(heads), float(scale)

    def forward(self, q, k, v):
        b, d, n = q.shape[0], self.shape[0], int(np.prod(self.shape[1:]))
        split = lambda x: x.reshape(b, self.heads, d // self.heads, n).transpose(-1, -2)  # noqa: E731 (B, H, N, dh)
        a = ((split(q) @ split(k).transpose(-1, -2)) @ split(v)) * self.scale
        return a.transpose(-1, -2).reshape(b, *self.shape)


class _Delay(_Node):
    """y[t] = x[t - steps] per element (zeros before the start); state: the last max(steps) + 1 inputs."""

    stateful = True

    def __init__(self, steps: np.ndarray):
        super().__init__()
        self.register_buffer("steps", torch.as_tensor(steps, dtype=torch.long))
        self.length = int(steps.max(initial=0)) + 1

    def initial_state(self, x):
        return x.new_zeros((self.length, *x.shape))

    def step(self, x, history):
        history = torch.cat([x[None], history[:-1]])
        index = self.steps.expand_as(x)[None]
        return history.gather(0, index)[0], history, None


class _Neuron(_Node):
    """LIF / LI / CubaLIF / CubaLI / IF / I, one forward-Euler step at a time (forms in the module docstring).

    Buffers: tau_mem_inv (1/s), v_leak, r, v_th, v_reset, gain (IF / I: dt r), tau_syn_inv and w_syn
    (CubaLIF / CubaLI: dt w_in / tau_syn). State: (v, i_syn), both starting at 0.
    """

    stateful = True

    def __init__(self, kind: str, dt: float, buffers: dict[str, torch.Tensor]):
        super().__init__()
        self.kind, self.dt = kind, dt
        self.spiking, self.synaptic = kind in SPIKING, kind in ("CubaLIF", "CubaLI")
        for key, value in buffers.items():
            self.register_buffer(key, value)
        self.spike_fn = spike_function("atan")

    def initial_state(self, x):
        return torch.zeros_like(x), torch.zeros_like(x)

    def step(self, x, state):
        """x: this step's input (B, *shape) -> (output, (v, i_syn), v after reset)."""
        v, i_syn = state
        if self.synaptic:  # the simulator's S_JUMP_THEN_DECAY
            u = i_syn + self.w_syn * x
            i_syn = u - (self.dt * self.tau_syn_inv) * u
        else:
            u = x
        if self.kind == "LIF":
            z, v = lif_step(self.r * u, v, LIFParameters(self.tau_mem_inv, self.v_leak, self.v_th, self.v_reset),
                            self.dt, self.spike_fn)
            return z, (v, i_syn), v
        if self.kind in ("IF", "I"):
            v_new = v + self.gain * u
        else:  # LI, CubaLI, CubaLIF: Norse's LIBox form
            v_new = li_step(self.r * u, v, LIParameters(self.tau_mem_inv, self.v_leak), self.dt)
        if not self.spiking:
            return v_new, (v_new, i_syn), v_new
        z = self.spike_fn(v_new - self.v_th)  # the same reset as lif_step
        v_new = (1 - z.detach()) * v_new + z.detach() * self.v_reset
        return z, (v_new, i_syn), v_new


# ------------------------------------------------------------------------------------------------ building
def _ints(value, n: int, what: str, name: str) -> tuple[int, ...]:
    a = np.atleast_1d(np.asarray(value)).astype(np.int64).ravel()
    if a.size == 1:
        a = np.repeat(a, n)
    if a.size != n:
        raise NeurostackError(f"node '{name}': {what} {a.tolist()} does not have {n} entries")
    return tuple(int(v) for v in a)


def _padding(value, n: int, name: str) -> tuple[int, ...] | str:
    if isinstance(value, np.ndarray) and value.dtype.kind in "SUO":
        value = value.ravel()[0]
    if isinstance(value, bytes):
        value = value.decode()
    if isinstance(value, str):
        return value
    return _ints(value, n, "padding", name)


def _rate(tau, dtype: torch.dtype) -> torch.Tensor:
    """1/tau (1/s) as the tau_mem_inv a producer multiplied with (the simulator's rule, lowering._inverse_tau).

    The exporter writes tau = 1/tau_mem_inv from a float32 tau_mem_inv: float32(1/tau) gives it back, and in
    float64 a 1/tau within two ulps of a float32 value is snapped to it, so a float64 import reproduces the
    model run in float64 bit for bit."""
    inv = 1.0 / np.asarray(tau, np.float64)
    as32 = inv.astype(np.float32).astype(np.float64)
    inv = np.where(np.abs(as32 - inv) <= 2 * np.spacing(inv), as32, inv)
    return torch.as_tensor(inv).to(dtype)


def _build_node(fn: FlatNode, dt: float | None, dtype: torch.dtype, notes: list[str]) -> _Node:
    """The module for one flattened NIR node (shapes and broadcast parameters from infer_shapes)."""
    t, node, name = fn.type, fn.node, fn.name
    tensor = lambda a: torch.tensor(np.asarray(a, np.float64), dtype=dtype)  # noqa: E731
    if t in PASS_THROUGH:
        return _PassThrough()
    if t in ("Affine", "Linear"):
        w = np.asarray(node.weight)
        bias = np.broadcast_to(np.asarray(node.bias), (w.shape[0],)) if t == "Affine" else None
        return _Affine(tensor(w), tensor(bias) if bias is not None else None)
    if t in ("Conv1d", "Conv2d"):
        w = np.asarray(node.weight)
        n = w.ndim - 2
        bias = np.broadcast_to(np.asarray(node.bias if node.bias is not None else 0.0), (w.shape[0],))
        groups = int(np.asarray(node.groups).ravel()[0]) if node.groups is not None else 1
        return _Conv(tensor(w), tensor(bias), _ints(node.stride, n, "stride", name), _padding(node.padding, n, name),
                     _ints(node.dilation, n, "dilation", name), groups)
    if t in ("SumPool2d", "AvgPool2d"):
        kernel = _ints(node.kernel_size, 2, "kernel_size", name)
        stride = _ints(node.stride if node.stride is not None else node.kernel_size, 2, "stride", name)
        padding = _ints(node.padding if node.padding is not None else 0, 2, "padding", name)
        return _Pool(kernel, stride, padding, average=t == "AvgPool2d")
    if t == "Flatten":
        return _Flatten(fn.shape)
    if t == ATTENTION_TYPE:
        return _Attention(fn.shape, node.heads, node.scale)
    p = {k: np.asarray(v, np.float64) for k, v in fn.params.items()}  # broadcast to the node's shape
    if t == "Scale":
        return _Scale(tensor(p["scale"]))
    if t == "Threshold":
        return _Threshold(tensor(p["threshold"]))
    if t == "Delay":
        ratio = p["delay"] / dt
        steps = np.rint(ratio).astype(np.int64)
        if np.any(np.abs(ratio - steps) > 1e-3):
            notes.append(f"delays of node '{name}' are not whole multiples of dt = {dt:g} s: rounded to "
                         f"{steps.min()}..{steps.max()} steps")
        return _Delay(steps)
    if t in NEURONS:
        return _Neuron(t, dt, _neuron_buffers(t, p, dt, dtype))
    raise NeurostackError(f"node '{name}': unsupported NIR primitive {t}")


def _neuron_buffers(t: str, p: dict[str, np.ndarray], dt: float, dtype: torch.dtype) -> dict[str, torch.Tensor]:
    tensor = lambda a: torch.tensor(np.asarray(a, np.float64), dtype=dtype)  # noqa: E731
    b = {"r": tensor(p["r"])}
    if t in ("IF", "I"):
        b["gain"] = tensor(snap_unit(dt * p["r"]))
    else:
        b["tau_mem_inv"] = _rate(p["tau"] if "tau" in p else p["tau_mem"], dtype)
        b["v_leak"] = tensor(p["v_leak"])
    if t in SPIKING:
        b["v_th"], b["v_reset"] = tensor(p["v_threshold"]), tensor(p["v_reset"])
    if t in ("CubaLIF", "CubaLI"):
        b["tau_syn_inv"] = _rate(p["tau_syn"], dtype)
        b["w_syn"] = tensor(syn_input_gain(SPEC, dt, p["tau_syn"], p["w_in"]))
    return b
