"""Operation counting: the static tables the kernels count with, and the Workload built from a run.

Definitions are written down once, in `neurostack.energy.workload` (SOPs, MACs, dense, neuron updates, spikes);
they match NeuroBench 2.x `SynapticOperations` (Effective_ACs, Effective_MACs, Dense) on Linear/Conv layers.

How the kernels count (kernels.simulate_sample): when a synaptic node (Affine, Linear, Conv, pooling, Scale)
runs at a step, its input's non-zero values are counted (in the Affine's own pass over an event list, else in a
walk over the input); every non-zero value j adds `fanout[j]` operations, the number of
non-zero weights that value reaches (conv taps in the padding excluded). The step's operations are SOPs when
every input value is in {-1, 0, 1}, else MACs (NeuroBench decides per layer call the same way). A neuron node
counts the neurons whose input was non-zero at that step (driven updates). Everything structural (dense
connections, bias adds, fan-in) is computed here from the plan's arrays, never inside the time loop.
The spiking self-attention extension node counts its own spike-matrix products (attention.py); its dense count
(every product of Q K^T and (Q K^T) V) is filled in here.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from neurostack.energy.workload import NodeWork, Workload
from neurostack.sim import attention
from neurostack.sim import plan as P
from neurostack.sim.plan import Plan


@dataclass
class SynapseTable:
    """Static counts of one synaptic node. Arrays are over the node's flattened input (n_in,)."""

    fanout: np.ndarray  # non-zero weights each input value reaches
    structural: np.ndarray  # connections each input value has, zero weights included (padding taps excluded)
    n_weights: int
    n_nonzero_weights: int
    fan_in: int  # most non-zero weights into one output
    bias_adds_per_step: int  # non-zero bias entries added to outputs per step
    counted_by_neurobench: bool
    weight_shape: tuple[int, ...] = ()  # (out, in) for Affine/Linear, (C_out, C_in/groups, KH, KW) for convs


def _affine(plan: Plan, k: int) -> SynapseTable:
    n_in, n_out = int(plan.in_len[k]), int(plan.out_len[k])
    po = int(plan.fp_off[k])
    bias = plan.fparams[po:po + n_out]
    w_t = plan.fparams[po + n_out:po + n_out + n_in * n_out].reshape(n_in, n_out)
    nz = w_t != 0
    return SynapseTable(fanout=nz.sum(axis=1).astype(np.int64), structural=np.full(n_in, n_out, np.int64),
                        n_weights=n_in * n_out, n_nonzero_weights=int(nz.sum()), fan_in=int(nz.sum(axis=0).max()),
                        bias_adds_per_step=int(np.count_nonzero(bias)), counted_by_neurobench=True,
                        weight_shape=(n_out, n_in))


def _valid_taps(size_in: int, size_out: int, k: int, stride: int, pad: int, dil: int) -> np.ndarray:
    """(k, size_in) bool: does input position y reach an output through tap ky (oy = (y + pad - ky*dil) / stride)?"""
    y = np.arange(size_in)[None, :]
    ny = y + pad - np.arange(k)[:, None] * dil
    return (ny >= 0) & (ny % stride == 0) & (ny // stride < size_out)


def _reads_inside(size_in: int, size_out: int, k: int, stride: int, pad: int, dil: int) -> np.ndarray:
    """(k, size_out) bool: does output position oy read a real input (not padding) through tap ky?"""
    iy = np.arange(size_out)[None, :] * stride - pad + np.arange(k)[:, None] * dil
    return (iy >= 0) & (iy < size_in)


def _conv(plan: Plan, k: int) -> SynapseTable:
    io, po = int(plan.ip_off[k]), int(plan.fp_off[k])
    c_in, h, w, c_out, oh, ow, kh, kw, sh, sw, ph, pw, dh, dw, groups = (int(v) for v in plan.iparams[io:io + 15])
    cin_g, cout_g = c_in // groups, c_out // groups
    bias = plan.fparams[po:po + c_out]
    weight = plan.fparams[po + c_out:po + c_out + c_out * cin_g * kh * kw].reshape(c_out, cin_g, kh, kw)
    nz = weight != 0
    vy, vx = _valid_taps(h, oh, kh, sh, ph, dh), _valid_taps(w, ow, kw, sw, pw, dw)
    # non-zero weights per (input channel, tap): the output channels of that input channel's group
    per_tap = np.concatenate([nz[g * cout_g:(g + 1) * cout_g].sum(axis=0) for g in range(groups)])  # (c_in, kh, kw)
    fanout = np.einsum("cab,ay,bx->cyx", per_tap.astype(np.int64), vy.astype(np.int64), vx.astype(np.int64))
    structural = np.einsum("ay,bx->yx", vy.astype(np.int64), vx.astype(np.int64))[None] * cout_g
    ry, rx = _reads_inside(h, oh, kh, sh, ph, dh), _reads_inside(w, ow, kw, sw, pw, dw)
    fan_in = np.einsum("oab,ay,bx->oyx", nz.sum(axis=1).astype(np.int64), ry.astype(np.int64), rx.astype(np.int64))
    return SynapseTable(fanout=fanout.reshape(-1), structural=np.broadcast_to(structural, (c_in, h, w)).reshape(-1),
                        n_weights=int(weight.size), n_nonzero_weights=int(nz.sum()), fan_in=int(fan_in.max()),
                        bias_adds_per_step=int(np.count_nonzero(bias)) * oh * ow, counted_by_neurobench=True,
                        weight_shape=tuple(int(v) for v in weight.shape))


def _pool(plan: Plan, k: int) -> SynapseTable:
    io = int(plan.ip_off[k])
    c_n, h, w, oh, ow, kh, kw, sh, sw, ph, pw, _ = (int(v) for v in plan.iparams[io:io + 12])
    vy, vx = _valid_taps(h, oh, kh, sh, ph, 1), _valid_taps(w, ow, kw, sw, pw, 1)
    per_pos = vy.sum(axis=0)[:, None] * vx.sum(axis=0)[None, :]
    fanout = np.broadcast_to(per_pos, (c_n, h, w)).reshape(-1).astype(np.int64)
    return SynapseTable(fanout=fanout, structural=fanout.copy(), n_weights=0, n_nonzero_weights=0,
                        fan_in=kh * kw, bias_adds_per_step=0, counted_by_neurobench=False)


def _scale(plan: Plan, k: int) -> SynapseTable:
    n, po = int(plan.out_len[k]), int(plan.fp_off[k])
    nz = (plan.fparams[po:po + n] != 0).astype(np.int64)
    return SynapseTable(fanout=nz, structural=np.ones(n, np.int64), n_weights=n, n_nonzero_weights=int(nz.sum()),
                        fan_in=1, bias_adds_per_step=0, counted_by_neurobench=False)


_TABLES = {P.K_AFFINE: _affine, P.K_CONV: _conv, P.K_SUMPOOL: _pool, P.K_SCALE: _scale}


def synapse_tables(plan: Plan) -> dict[str, SynapseTable]:
    """The static counting table of every synaptic node, by node name."""
    return {name: _TABLES[int(plan.kinds[k])](plan, k)
            for k, name in enumerate(plan.node_names) if int(plan.kinds[k]) in _TABLES}


def pack_fanout(plan: Plan, tables: dict[str, SynapseTable]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Flat fan-out array for the kernels, each node's offset into it (-1: node counts no operations), and each
    node's fan-out when every one of its inputs has the same (a dense weight matrix: no per-event sum), else -1."""
    offsets = np.full(len(plan.node_names), -1, np.int64)
    uniform = np.full(len(plan.node_names), -1, np.int64)
    parts, pos = [], 0
    for k, name in enumerate(plan.node_names):
        if name in tables:
            fan = tables[name].fanout
            offsets[k] = pos
            parts.append(fan)
            pos += fan.size
            if fan.size and np.all(fan == fan.flat[0]):
                uniform[k] = int(fan.flat[0])
    flat = np.concatenate(parts).astype(np.int64) if parts else np.zeros(1, np.int64)
    return offsets, flat, uniform


@dataclass
class RunCounts:
    """Per-node counts from a run: `array` (N, 5, T, n_nodes) int64 as the kernels fill it (T = 1 when not counted
    per step), read as the (N, T, n_nodes) views below."""

    node_names: list[str]
    array: np.ndarray
    steps: int
    tables: dict[str, SynapseTable]

    @property
    def sops(self) -> np.ndarray:
        """Synaptic operations on binary (spike) inputs."""
        return self.array[:, 0]

    @property
    def macs(self) -> np.ndarray:
        """Multiply-accumulates on real-valued (or multi-spike) inputs."""
        return self.array[:, 1]

    @property
    def events(self) -> np.ndarray:
        """Non-zero input values received (synaptic nodes)."""
        return self.array[:, 2]

    @property
    def spikes(self) -> np.ndarray:
        """Spikes emitted (spiking nodes)."""
        return self.array[:, 3]

    @property
    def driven(self) -> np.ndarray:
        """Neurons whose input was non-zero (neuron nodes)."""
        return self.array[:, 4]

    def total(self, what: str, node: str) -> int:
        """One count of one node summed over samples and steps."""
        return int(getattr(self, what)[:, :, self.node_names.index(node)].sum())


def workload(plan: Plan, counts: RunCounts, *, ann_steps: int = 1) -> Workload:
    """Means per inference over the samples run, per node, as an energy `Workload`."""
    n_samples = counts.sops.shape[0]
    steps = counts.steps
    sources: dict[str, list[str]] = {n: [] for n in plan.node_names}
    for k, name in enumerate(plan.node_names):
        for e in range(int(plan.src_ptr[k]), int(plan.src_ptr[k + 1])):
            sources[name].append(plan.node_names[int(plan.src_node[e])])
    neuron_names = set(plan.neuron_nodes)
    nodes = []
    for k, name in enumerate(plan.node_names):
        per_step_sops = counts.sops[:, :, k].mean(axis=0)
        per_step_macs = counts.macs[:, :, k].mean(axis=0)
        node = NodeWork(
            name=name, type=plan.node_types[name], shape=tuple(plan.shapes[name]), sources=sources[name],
            sops=float(counts.sops[:, :, k].sum()) / n_samples, macs=float(counts.macs[:, :, k].sum()) / n_samples,
            spikes=float(counts.spikes[:, :, k].sum()) / n_samples,
            input_events=float(counts.events[:, :, k].sum()) / n_samples,
            per_step_sops=[float(v) for v in per_step_sops] if counts.sops.shape[1] > 1 else [],
            per_step_macs=[float(v) for v in per_step_macs] if counts.macs.shape[1] > 1 else [])
        table = counts.tables.get(name)
        if table is not None:
            node.dense_per_step = float(table.structural.sum())
            node.dense = node.dense_per_step * steps
            node.bias_adds = float(table.bias_adds_per_step * steps)
            node.n_weights, node.n_nonzero_weights = table.n_weights, table.n_nonzero_weights
            node.fan_in, node.fan_out = table.fan_in, int(table.fanout.max()) if table.fanout.size else 0
            node.counted_by_neurobench = table.counted_by_neurobench
            node.weight_shape = table.weight_shape
        if int(plan.kinds[k]) == P.K_ATTENTION:
            io = int(plan.ip_off[k])
            node.dense_per_step = float(attention.dense_per_step(int(plan.iparams[io]), int(plan.iparams[io + 1])))
            node.dense = node.dense_per_step * steps
            node.counted_by_neurobench = False  # NeuroBench hooks no attention matrix products
        if name in neuron_names:
            node.n_neurons = int(plan.out_len[k])
            node.neuron_updates = float(node.n_neurons * steps)
            node.neuron_updates_driven = float(counts.driven[:, :, k].sum()) / n_samples
        nodes.append(node)
    return Workload(nodes=nodes, steps=steps, dt=plan.dt, samples=n_samples, ann_steps=ann_steps)
