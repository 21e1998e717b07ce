"""Memory estimates for the simulator, made from declared shapes before anything is allocated.

Three points where a file or a request could ask for more memory than the machine has:
  - reading a NIR file: `hdf5_bytes` sums the sizes its HDF5 headers declare (a chunked dataset of
    10^6 x 10^6 floats takes a few hundred bytes on disk but 4 TB once read);
  - lowering a graph: `lowering_bytes` counts parameters (with their float64 working copies), neuron state,
    delay rings and one sample's buffers, from the shapes `infer_shapes` found;
  - running: `run_bytes` counts the recording buffers (N x T x every recorded node's outputs, voltages),
    the counters, the input copy and each thread's working buffers.
Each `check_*` raises NeurostackError with the estimate and the available memory (neurostack.memory).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Iterable

import numpy as np

from neurostack.memory import available_memory, check_memory, format_bytes, hdf5_bytes, worth_checking
from neurostack.sim.plan import MAX_BLOCK_STEPS

if TYPE_CHECKING:  # pragma: no cover
    from neurostack.sim.lowering import Resolved
    from neurostack.sim.plan import Plan

N_COUNTERS = 5  # sops, macs, events, spikes, driven: int64 (N, T or 1, n_nodes) each


# ------------------------------------------------------------------------------------------------ reading
def check_file(group, path: str) -> None:
    """Refuse a NIR file whose datasets would not fit in memory once read."""
    check_memory(hdf5_bytes(group), f"{path}: reading its arrays")


# ----------------------------------------------------------------------------------------------- lowering
def _size(shape) -> int:
    return math.prod(int(s) for s in shape) if shape is not None else 0


def node_bytes(fn, itemsize: int, dt: float | None = None) -> int:
    """Bytes lowering and one sample's run need for one FlatNode (its shapes already inferred)."""
    from neurostack.sim import plan as P
    from neurostack.sim.lowering import NEURON_PARAMS

    out = _size(fn.shape)
    size_in = _size(fn.in_shape)
    n = (2 * out + size_in) * itemsize  # output + previous-step buffers, summed-input scratch
    t = fn.type
    if t in ("Affine", "Linear", "Conv1d", "Conv2d"):
        w = int(np.size(getattr(fn.node, "weight", 0)))
        n += w * (8 + itemsize) + size_in * 3 * 8  # float64 working copy + packed; fan-out tables (int64)
    elif t in NEURON_PARAMS:
        state = 2 if t in ("CubaLIF", "CubaLI") else 1
        n += out * (P.N_NEURON_PARAMS * itemsize + state * itemsize + 12 * 8)  # packed, state, float64 temporaries
    elif t in ("Scale", "Threshold"):
        n += out * (itemsize + 8)
    elif t == "Delay" and dt:
        delay = np.asarray(fn.params.get("delay", getattr(fn.node, "delay", 0.0)), np.float64)
        longest = float(np.max(delay)) if delay.size else 0.0
        ring = int(min(longest / dt, 1e18)) + 1
        n += (ring * out) * itemsize + out * 16
    return n


def lowering_bytes(res: "Resolved", itemsize: int = 8, dt: float | None = None) -> tuple[int, str]:
    """(bytes to lower the resolved graph and run one sample, name of the node needing the most)."""
    costs = {name: node_bytes(fn, itemsize, dt) for name, fn in res.nodes.items()}
    biggest = max(costs, key=costs.get) if costs else ""
    return sum(costs.values()), biggest


def check_lowering(res: "Resolved", itemsize: int = 8, dt: float | None = None) -> None:
    """Refuse a graph whose parameters, state and buffers would not fit in memory."""
    total, biggest = lowering_bytes(res, itemsize, dt)
    fn = res.nodes.get(biggest)
    where = f" (largest: node '{biggest}', {fn.type} of shape {fn.shape})" if fn is not None else ""
    check_memory(total, f"the graph{where}")


# ---------------------------------------------------------------------------------------------------- run
def run_bytes(plan: "Plan", n_samples: int, steps: int, *, record_voltages: bool = False,
              count_per_step: bool = False, record: Iterable[str] | None = None, threads: int | None = None) -> int:
    """Bytes `sim.run(plan, inputs (n_samples, steps, ...), ...)` allocates, as run.py does it."""
    itemsize = plan.dtype.itemsize
    names = plan.node_names
    asked = record if record is None or isinstance(record, frozenset) else frozenset(record)
    key = ("run_bytes", asked, record_voltages)
    if key not in plan.extra:  # static per plan and request: a stream of one-sample runs asks the same each time
        wanted = frozenset(names) if asked is None else asked | {plan.output_name}
        rec_len = sum(int(plan.out_len[i]) for i, n in enumerate(names) if n in wanted)
        v_len = sum(int(plan.out_len[i]) for i in range(len(names)) if plan.v_off[i] >= 0) if record_voltages else 0
        in_len = int(plan.out_len[names.index(plan.input_name)])
        # each thread: a time block of step buffers (outputs, event lists), the back-edge copy, state, the summed
        # input, and each synaptic node's previous input (values and event indices)
        per_thread = (plan.block_steps(MAX_BLOCK_STEPS) * plan.buffer_len * (itemsize + 8)
                      + (plan.buffer_len + int(plan.st_len.sum()) + int(plan.scratch_len)) * itemsize
                      + int(plan.in_len.sum()) * (itemsize + 8))
        plan.extra[key] = (rec_len + v_len + in_len, per_thread)
    per_step, per_thread = plan.extra[key]
    total = n_samples * steps * per_step * itemsize
    total += N_COUNTERS * n_samples * (steps if count_per_step else 1) * len(names) * 8
    if threads is None:
        try:
            import numba

            threads = numba.get_num_threads()
        except Exception:  # pragma: no cover - numba always present with the simulator
            threads = 1
    total += min(threads, n_samples) * per_thread
    return total


def check_run(plan: "Plan", n_samples: int, steps: int, *, record_voltages: bool = False,
              count_per_step: bool = False, record: Iterable[str] | None = None, what: str = "simulating",
              hint: str = "; simulate fewer samples with --limit", threads: int | None = None) -> int:
    """Refuse a run whose recordings (N x T x every node's outputs) would not fit in memory; returns the bytes
    it needs."""
    needed = run_bytes(plan, n_samples, steps, record_voltages=record_voltages, count_per_step=count_per_step,
                       record=record, threads=threads)
    if not worth_checking(needed):
        return needed
    per_sample = max(1, needed // max(n_samples, 1))
    available = available_memory()
    extra = f" (about {format_bytes(per_sample)} per sample: at most {available // per_sample} fit)" \
        if available is not None else ""
    check_memory(needed, f"{what} {n_samples} samples of {steps} steps{extra}", hint if n_samples > 1 else "")
    return needed
