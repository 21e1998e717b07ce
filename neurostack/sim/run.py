"""The run loop: check the inputs, call the Numba kernels over all samples, return named arrays."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import Iterable

import numba
import numpy as np

from neurostack.energy.workload import Workload
from neurostack.errors import NeurostackError
from neurostack.memory import worth_checking
from neurostack.sim import counters, kernels
from neurostack.sim.counters import RunCounts
from neurostack.sim.memory import check_run
from neurostack.sim.plan import Plan


@dataclass
class SimResult:
    """What a run produced. Arrays are (N, T, *node_shape) in the plan's precision.

    outputs: every node's output per step (spikes or spike counts for spiking nodes, voltages for LI/CubaLI/I,
    values for the rest), by node name (dotted for nested subgraphs). voltages: membrane voltage after each
    step (after reset) of every neuron node, when recorded. counts: operations, events, spikes and driven
    neurons per sample and node (see counters.RunCounts). spiking_nodes: the nodes whose output is spikes.
    """

    outputs: dict[str, np.ndarray]
    voltages: dict[str, np.ndarray]
    counts: RunCounts
    spiking_nodes: list[str]
    output_name: str = "output"

    @cached_property
    def spike_counts(self) -> dict[str, int]:
        """Total spikes per spiking node over all samples and steps."""
        totals = self.counts.spikes.sum(axis=(0, 1)).tolist()
        index = {n: i for i, n in enumerate(self.counts.node_names)}
        return {n: totals[index[n]] for n in self.spiking_nodes}

    @cached_property
    def input_events(self) -> dict[str, int]:
        """Per synaptic node (Affine, Linear, Conv, pooling, Scale): the non-zero inputs it processed (the events
        an event-driven synapse does work for), over all samples and steps."""
        totals = self.counts.events.sum(axis=(0, 1)).tolist()
        return {n: totals[i] for i, n in enumerate(self.counts.node_names) if n in self.counts.tables}

    @property
    def output(self) -> np.ndarray:
        """The graph's Output node over time, (N, T, *output_shape)."""
        return self.outputs[self.output_name]

    def workload(self, plan: Plan, *, ann_steps: int = 1) -> Workload:
        """Operation counts per inference (means over the samples run) for energy estimates."""
        return counters.workload(plan, self.counts, ann_steps=ann_steps)


def _check_inputs(plan: Plan, inputs) -> tuple[np.ndarray, int]:
    """The inputs as (N, T, n_input) in the plan's dtype, or as (N, 1, n_input) when they hold one row for every
    step (a time axis of stride 0, as np.broadcast_to makes: a held input); and the number of steps T."""
    x = inputs if isinstance(inputs, np.ndarray) else np.asarray(inputs)
    shape = plan.input_shape
    dtype = plan.fparams.dtype
    k = len(shape)
    if x.dtype == dtype and x.shape[-k:] == shape and x.size and x.ndim == k + 1:
        # the common case, streaming one sample in the plan's dtype: no copy, no conversion
        if x.flags.c_contiguous:
            return x.reshape(1, x.shape[0], -1), x.shape[0]
        if x.strides[0] == 0 and x[:1].flags.c_contiguous:  # held
            return x[:1].reshape(1, 1, -1), x.shape[0]
    if x.dtype == dtype and x.flags.c_contiguous and x.shape[-k:] == shape and x.size and x.ndim == k + 2:
        return x.reshape(x.shape[0], x.shape[1], -1), x.shape[1]
    if x.dtype.kind not in "biuf":  # bool, integers, floats
        raise NeurostackError(f"inputs must be a numeric array, got dtype {x.dtype}")
    if x.ndim == k + 1 and x.shape[1:] == shape:
        x = x[None]
    elif not (x.ndim == k + 2 and x.shape[2:] == shape):
        want = ", ".join(map(str, shape))
        raise NeurostackError(f"inputs have shape {x.shape}, expected (N, T, {want}) or (T, {want}) for Input "
                              f"'{plan.input_name}' of shape {shape}")
    if x.shape[0] == 0 or x.shape[1] == 0:
        raise NeurostackError(f"inputs have shape {x.shape}: no samples or no time steps")
    steps = x.shape[1]
    if x.strides[1] == 0:  # held: the same row at every step, passed once
        x = x[:, :1]
    if x.dtype.kind == "f" and x.dtype.itemsize > dtype.itemsize:
        big = np.abs(x[np.isfinite(x)], dtype=np.float64).max(initial=0.0)
        if big > np.finfo(dtype).max:
            raise NeurostackError(f"inputs hold values up to {big:.3g}, out of the range of {dtype}")
    # NaN and infinities are caught by the kernels, which test each new input step
    return np.ascontiguousarray(x.reshape(x.shape[0], x.shape[1], -1), dtype=dtype), steps


@dataclass
class _Layout:
    """Where each recorded node's output / voltage goes in the recording buffers (static per plan and request)."""

    rec_nodes: np.ndarray
    rec_off: np.ndarray
    rec_len: list[int]
    v_nodes: np.ndarray
    v_src: np.ndarray
    v_off: np.ndarray
    v_len: list[int]
    rec_total: int
    v_total: int
    total_out: int
    total_state: int
    spiking: list[str]  # the spiking nodes
    rec_views: list[tuple[str, int, int, tuple]]  # (node, start, end, shape) of each node's part of rec
    v_views: list[tuple[str, int, int, tuple]]  # the same for vrec
    # the kernels' arguments that do not change from run to run: before rec, between rec and vrec, after vrec
    plan_args: tuple = ()
    v_args: tuple = ()
    count_args: tuple = ()
    count_tables: dict = field(default_factory=dict)
    # (samples, steps, per step, threads) known to need little memory -> steps per time block
    small_runs: dict = field(default_factory=dict)


def _offsets(lengths: list[int]) -> np.ndarray:
    return np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64) if lengths else np.zeros(0, np.int64)


def _views(plan: Plan, nodes: list[int], lengths: list[int]) -> list[tuple[str, int, int, tuple]]:
    starts = _offsets(lengths).tolist()
    return [(plan.node_names[i], o, o + n, plan.shapes[plan.node_names[i]]) for i, o, n in zip(nodes, starts, lengths)]


def _layout(plan: Plan, record: frozenset | None, record_voltages: bool) -> _Layout:
    key = ("layout", record, record_voltages)
    if key not in plan.extra:  # cached: streaming one sample per call repeats the same request
        names = plan.node_names
        wanted = frozenset(names) if record is None else record | {plan.output_name}
        unknown = wanted - set(names)
        if unknown:
            raise NeurostackError(f"cannot record unknown node(s) {', '.join(sorted(unknown))}")
        rec_nodes = [i for i, n in enumerate(names) if n in wanted]
        rec_len = [int(plan.out_len[i]) for i in rec_nodes]
        v_nodes = [i for i in range(len(names)) if plan.v_off[i] >= 0] if record_voltages else []
        v_len = [int(plan.out_len[i]) for i in v_nodes]
        plan.extra[key] = _Layout(
            rec_nodes=np.asarray(rec_nodes, np.int64), rec_off=_offsets(rec_len), rec_len=rec_len,
            v_nodes=np.asarray(v_nodes, np.int64), v_src=plan.v_off[v_nodes].astype(np.int64),
            v_off=_offsets(v_len), v_len=v_len, rec_total=sum(rec_len), v_total=sum(v_len),
            total_out=plan.buffer_len, total_state=int(plan.st_len.sum()), spiking=plan.spiking_nodes,
            rec_views=_views(plan, rec_nodes, rec_len), v_views=_views(plan, v_nodes, v_len))
        lay = plan.extra[key]
        lay.plan_args = (plan.kinds, plan.out_off, plan.out_len, plan.in_len, plan.src_ptr, plan.src_node,
                         plan.src_prev, plan.fp_off, plan.ip_off, plan.st_off, plan.st_len, plan.fparams, plan.iparams,
                         plan.prev_nodes, lay.total_out, lay.total_state, plan.scratch_len, lay.rec_nodes, lay.rec_off)
        lay.v_args = (lay.v_nodes, lay.v_src, lay.v_off)
        lay.count_tables, *lay.count_args = _count_tables(plan)  # tables; cnt_off, fanout, fan_uniform
    return plan.extra[key]


def _count_tables(plan: Plan):
    if "count_tables" not in plan.extra:  # static per plan: built once, reused by every run
        tables = counters.synapse_tables(plan)
        plan.extra["count_tables"] = (tables, *counters.pack_fanout(plan, tables))
    return plan.extra["count_tables"]


def run(plan: Plan, inputs: np.ndarray, *, record_voltages: bool = False, parallel: bool = True,
        record: Iterable[str] | None = None, count_per_step: bool = False) -> SimResult:
    """Simulate `inputs` (N, T, *input_shape), or one sample (T, *input_shape), through the plan.

    An input that shows the same values at every step (the image view) can be passed held, without repeating
    it: `np.broadcast_to(x[:, None], (N, T, *input_shape))` (a time axis of stride 0). The results are the same,
    the input is neither copied nor read at every step to find that it repeats.

    Samples run in parallel threads (numba prange) unless `parallel` is False; one sample streams on one
    thread. `record` limits which nodes' outputs are kept (default: all; the Output node is always kept), to
    save memory on long runs. Operations, spikes and driven neurons are always counted per sample and node
    (`result.counts`), and also per time step with `count_per_step`.
    """
    x, steps = _check_inputs(plan, inputs)
    n_samples = x.shape[0]
    threads = numba.get_num_threads() if parallel and n_samples > 1 else 1
    wanted = None if record is None else frozenset(record)
    lay = _layout(plan, wanted, record_voltages)
    request = (n_samples, steps, count_per_step, threads)
    # a request known to need little memory is not checked again (a stream of one-sample runs asks the same each
    # time); it is only known so when no limit was set in the environment ($NEUROSTACK_MEMORY_LIMIT) then
    block = lay.small_runs.get(request)
    if block is None:
        needed = check_run(plan, n_samples, steps, record_voltages=record_voltages, count_per_step=count_per_step,
                           record=wanted, hint="; run fewer samples at a time", threads=threads)
        block = plan.block_steps(steps)
        if not worth_checking(needed):
            lay.small_runs[request] = block
    dtype = plan.fparams.dtype
    rec = np.empty((n_samples, steps, lay.rec_total), dtype)  # every step of every recorded node is written
    vrec = np.empty((n_samples, steps if lay.v_len else 0, lay.v_total), dtype)
    # per sample: sops, macs, events, spikes, driven, per step (or summed over steps) and node
    counts = np.zeros((n_samples, 5, steps if count_per_step else 1, len(plan.node_names)), np.int64)
    status = np.zeros((n_samples, 1), np.int64)  # 1 + the step of a NaN / inf input, per sample

    driver = kernels.run_parallel if threads > 1 else kernels.run_serial
    failed = driver(x, steps, block, *lay.plan_args, rec, *lay.v_args, vrec, *lay.count_args, counts, status)
    if failed >= 0:
        raise NeurostackError(f"inputs hold NaN or infinite values (sample {failed}, step {status[failed, 0] - 1})")

    outputs = {name: rec[:, :, o0:o1].reshape(n_samples, steps, *shape) for name, o0, o1, shape in lay.rec_views}
    voltages = {name: vrec[:, :, o0:o1].reshape(n_samples, steps, *shape) for name, o0, o1, shape in lay.v_views}
    return SimResult(
        outputs=outputs, voltages=voltages, spiking_nodes=lay.spiking, output_name=plan.output_name,
        counts=counters.RunCounts(node_names=plan.node_names, array=counts, steps=steps, tables=lay.count_tables),
    )
