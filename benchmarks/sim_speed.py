"""Simulator speed: the same NIR graphs on the same inputs in neurostack's simulator, in Norse 1.1.0
(`norse.torch.from_nir`, PyTorch on the CPU) and in snnTorch 1.0.0 (`snntorch.import_nir.import_from_nir`).

    python benchmarks/sim_speed.py --quick                            # small configurations, to check it runs
    python benchmarks/sim_speed.py --out benchmarks/RESULTS.md        # the full series, written to RESULTS.md
    python benchmarks/sim_speed.py --graph fsdd-mlp.nir --fsdd ../shared/data/fsdd/recordings
    python benchmarks/sim_speed.py --graph fsdd-mlp.nir --input x.npy   # x (N, T, *input_shape)

Workloads
  * FSDD mlp: the graph `neurostack export` writes for `--model mlp` (fc1 Affine -> lif1 LIF -> fc_out Affine ->
    li_out LI), with `--graph`; without it the same shape is built here (1600 -> 512 -> 10, untrained, data-dependent
    init as in training) on real-valued inputs in the image view (one feature matrix repeated at each of T = 25
    steps): FSDD features with `--fsdd PATH` (40 mel bins x 40 frames of 25 ms), else uniform [0, 1) values.
    Neither peer runs the LI readout (Norse drops it without a word, snnTorch rejects the graph), so the
    like-for-like comparison uses a variant whose LI readout is replaced by a LIF layer (same tau, threshold 1).
    snnTorch's importer hard-codes dt = 0.1 ms: its copy of the graph has every tau divided by 10 so that it
    integrates the same 1 ms Euler step and emits the same spikes (tests/frontend/test_peer_importers.py).
  * synthetic: 700 -> H -> 20 LIF-LIF (tau 5 ms, dt 1 ms) on Bernoulli input spikes, H in 256..4096, input
    activity 1 %, 5 %, 20 %, T = 100..1000 steps; weights N(0, s^2) scaled so each layer's current has std ~2.

Modes
  * stream (batch 1): samples one after another, each of T steps. Peers: the module is called one step at a time
    on a (1, features) tensor with its state (how the imported modules are used). neurostack:
    `run(plan, x_one_sample, parallel=False)` per sample; also one call with all samples and parallel=True
    (labelled "all-in-one"). The image view's input (the same row at every step) is given to neurostack held,
    as `neurostack simulate` gives it (np.broadcast_to of each sample's row over T: no repeated rows to read);
    the stream is also timed with the T rows in memory ("stream, rows repeated"). Peers get the row at each step.
  * batch B (64): peers step (B, features) tensors; neurostack runs B samples per call, samples over threads.

Measures: wall time, samples/s, SOPs/s and ns per SOP, where SOPs are the simulator's counts (SOPs + MACs, see
neurostack/sim/counters.py) for the same samples; the peers do dense work, so their SOPs/s are effective rates.
Every comparison is a ratio against each peer measured in the same run. neurostack runs record only the Output
node (`record=()`); peers return only their output.

Reference kernel: the practical limit on this machine for the synaptic work: a Numba loop that does nothing but
`out += x_j * W[:, j]` over the recorded input events (non-zero inputs) of every synaptic layer, in the simulator's
weight layout and precision, timed on the same events. By default it is given the work the simulator actually
does (it skips a layer whose input is identical to the previous step's, e.g. the image view's repeated features);
the ratio simulator time / reference time is reported with ns per SOP of both. The simulator adds four weight
columns per pass over the output (the same sums in the same order: the same bits, a quarter of the loads and
stores of the output); "reference kernel x4" does the same, the stricter limit, and its ratio is shown beside the
minimal one. The reference takes all samples in one call: the simulator's "all-in-one" ratio is the like-for-like
one, the stream ratio (one run() call per sample) the one the goal is judged on.

Scaling: log(time) = a + b log(SOPs) fitted across the synthetic series (neurostack stream, per sample); also
against synapse count, jointly against both, and a linear breakdown time = ns/SOP * SOPs + ns/update * neuron
updates (clock-driven: every neuron every step) + per-step cost + per-call cost (from 6 configurations).

Warm-up: Numba compile (or cache load) and one run of each peer outside the timing; each figure is the best of
`--repeats` runs, or of as many as fill 0.5 s when that is more (fewer when one measurement passes `--budget`
seconds). The simulator's stream and all-in-one runs and the reference kernels are timed in turn, one call of
each per round, so that their ratio compares the same moments of a shared machine. Threads: torch and numba use
`--threads` (default os.cpu_count()), the same for all. On a machine busy with other jobs, multi-threaded
figures are unreliable (threads wait at OpenMP / prange barriers for descheduled peers; on 2 shared cores torch's
2-thread Linear(1600, 512) at batch 16 took 12 ms against 0.4 ms on 1 thread): a warning is printed and written;
use `--threads 1` there. `--synthetic-peers none` times the simulator's scaling alone (minutes, not tens of them).
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import datetime
import io
import os
import platform
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import nir
import numba
import numpy as np
from numba import njit

from neurostack.atomic import write_text
from neurostack.sim import lower, run
from neurostack.sim import plan as P

SECTION = "sim_speed"


# ---------------------------------------------------------------------------------------------- machine, output
def machine_info(threads: int) -> list[str]:
    """Lines describing the machine, the software and the date."""
    cpu = platform.processor() or "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    versions = []
    for mod in ("numpy", "numba", "torch", "norse", "snntorch", "nir", "nirtorch", "neurostack"):
        try:
            versions.append(f"{mod} {__import__(mod).__version__}")
        except Exception:  # noqa: BLE001 - absent or without a version: say so
            versions.append(f"{mod} -")
    try:
        affinity = len(os.sched_getaffinity(0))
    except AttributeError:
        affinity = os.cpu_count()
    load = ", ".join(f"{v:.2f}" for v in os.getloadavg()) if hasattr(os, "getloadavg") else "-"
    return [
        f"- date: {datetime.datetime.now().astimezone().isoformat(timespec='seconds')}",
        f"- machine: {platform.platform()}; CPU: {cpu}; os.cpu_count() = {os.cpu_count()}, usable cores = {affinity}",
        f"- load average at start (1, 5, 15 min): {load}",
        f"- Python {platform.python_version()}; " + ", ".join(versions),
        f"- threads: torch {threads}, numba {threads}",
        f"- command: `python {' '.join([Path(sys.argv[0]).as_posix()] + sys.argv[1:])}`",
    ]


def write_section(path: Path, key: str, title: str, body: str) -> None:
    """Replace (or append) the section between <!-- key:begin --> and <!-- key:end --> in the markdown file."""
    begin, end = f"<!-- {key}:begin -->", f"<!-- {key}:end -->"
    block = f"{begin}\n## {title}\n\n{body.rstrip()}\n{end}\n"
    text = path.read_text() if path.is_file() else "# Benchmark results\n\n" \
        "Written by `benchmarks/sim_speed.py` and `benchmarks/train_speed.py` (`--out`); each script replaces its " \
        "own section.\n\n"
    if begin in text and end in text:
        head, rest = text.split(begin, 1)
        tail = rest.split(end, 1)[1].lstrip("\n")
        text = head + block + ("\n" + tail if tail else "")
    else:
        text = text.rstrip() + "\n\n" + block
    write_text(path, text)  # atomically: an interrupted benchmark never leaves half a results file


def table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return "\n".join(lines)


def fmt_s(s: float) -> str:
    return f"{s:.3g}" if s < 100 else f"{s:.0f}"


def fmt_rate(v: float) -> str:
    for unit, k in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if v >= k:
            return f"{v / k:.3g} {unit}"
    return f"{v:.3g}"


MIN_SECONDS = 0.5  # a figure repeats for at least this long: short runs (milliseconds) get many tries


def best_of(fn, repeats: int, budget: float) -> float:
    """Best wall time of at least `repeats` calls of fn(), and of as many more as fit in MIN_SECONDS (a run of a few
    milliseconds on a shared machine needs many tries to find its quiet one); stops once `budget` seconds are
    spent (at least one call)."""
    best, spent, calls = np.inf, 0.0, 0
    while calls < max(repeats, 1) or spent < min(MIN_SECONDS, budget):
        t0 = time.perf_counter()
        fn()
        dt = time.perf_counter() - t0
        best, spent, calls = min(best, dt), spent + dt, calls + 1
        if spent > budget:
            break
    return best


def best_of_each(fns: dict, repeats: int, budget: float) -> dict:
    """best_of for several functions called in turn (one call of each per round), so that the ratios between them
    are not those of different moments of a shared machine; per function, stops once it has spent `budget`."""
    best = {k: np.inf for k in fns}
    spent = {k: 0.0 for k in fns}
    calls = 0
    while calls < max(repeats, 1) or min(spent.values()) < min(MIN_SECONDS, budget):
        for k, fn in fns.items():
            if spent[k] > budget:
                continue
            t0 = time.perf_counter()
            fn()
            dt = time.perf_counter() - t0
            best[k], spent[k] = min(best[k], dt), spent[k] + dt
        calls += 1
        if all(v > budget for v in spent.values()):
            break
    return best


# ---------------------------------------------------------------------------------------------- graphs
def lif_node(n: int, tau: float | np.ndarray, r=None, v_leak=None) -> nir.LIF:
    tau = np.broadcast_to(np.asarray(tau, np.float64), (n,)).copy()
    return nir.LIF(tau=tau, r=np.ones(n, np.float32) if r is None else np.asarray(r, np.float32),
                   v_leak=np.zeros(n, np.float32) if v_leak is None else np.asarray(v_leak, np.float32),
                   v_threshold=np.ones(n, np.float32), v_reset=np.zeros(n, np.float32))


def li_to_lif(graph: nir.NIRGraph) -> nir.NIRGraph:
    """The same graph with every LI node replaced by a LIF of the same tau, r, v_leak (threshold 1, reset 0)."""
    g = copy.deepcopy(graph)
    for name, node in list(g.nodes.items()):
        if isinstance(node, nir.LI):
            n = int(np.asarray(node.tau).size)
            g.nodes[name] = lif_node(n, np.asarray(node.tau).reshape(-1), np.asarray(node.r).reshape(-1),
                                     np.asarray(node.v_leak).reshape(-1))
    return g


def for_snntorch(graph: nir.NIRGraph, dt: float) -> nir.NIRGraph:
    """snnTorch's importer integrates with a hard-coded dt = 1e-4 s: scale every tau by 1e-4/dt so it runs our step."""
    g = copy.deepcopy(graph)
    for node in g.nodes.values():
        if isinstance(node, nir.LIF):
            node.tau = np.asarray(node.tau, np.float64) * (1e-4 / dt)
    return g


@dataclass
class Workload:
    name: str
    graph: nir.NIRGraph  # as given (may hold an LI readout)
    dt: float
    stream_x: np.ndarray  # (N, T, F) float32, streamed one sample at a time
    batch_x: np.ndarray  # (B, T, F) float32
    note: str = ""
    extra: dict = field(default_factory=dict)

    @property
    def held(self) -> bool:
        """Every sample shows its first row at every step (the image view)."""
        return all(np.array_equal(x, np.broadcast_to(x[:, :1], x.shape)) for x in (self.stream_x, self.batch_x))


def fsdd_workload(args) -> Workload:
    """The FSDD mlp graph and its inputs (see the module docstring)."""
    n_stream, n_batch = args.samples, args.batch
    need = max(n_stream, n_batch)
    if args.graph:
        from neurostack.sim import load_graph
        loaded = load_graph(args.graph)
        graph, meta = loaded.graph, loaded.metadata
        dt = float(meta.get("dt", 1e-3)) if meta else 1e-3
        shape = tuple(lower(graph, dt=dt).input_shape)
        if args.input:
            x = np.load(args.input, allow_pickle=False)
            x = x[None] if x.ndim == len(shape) + 1 else x
            src = f"inputs from {args.input}"
        elif args.fsdd:
            from neurostack.simulate_cmd import _inputs_from_data
            x, _, _ = _inputs_from_data(f"fsdd:{args.fsdd}", None, meta, shape, need, None)
            src = f"FSDD test-split inputs rebuilt from the graph's metadata ({args.fsdd})"
        else:
            raise SystemExit("error: --graph needs --fsdd PATH or --input x.npy")
        name = f"FSDD mlp ({Path(args.graph).name})"
    else:
        import torch
        from neurostack.frontend.models import ModelConfig, build_model, calibrate_init
        from neurostack.frontend.nir_export import model_to_nir

        steps = args.fsdd_steps
        if args.fsdd:
            from neurostack.simulate_cmd import _inputs_from_data
            meta = {"input": {"view": "image", "encoder": "none", "steps": steps,
                              "features": {"n_bins": 40, "hop_s": 0.025}}}
            x, _, _ = _inputs_from_data(f"fsdd:{args.fsdd}", None, meta, (1600,), need, None)
            src = f"FSDD test-split log-mel features, 40 x 40, image view ({args.fsdd})"
        else:
            rng = np.random.default_rng(0)
            x = np.repeat(rng.random((need, 1, 1600), dtype=np.float32), steps, axis=1)
            src = "uniform [0, 1) features, image view"
        torch.manual_seed(0)
        cfg = ModelConfig(name="mlp", input_shape=(1600,), hidden=(512,), n_classes=10)
        model = build_model(cfg).eval()
        calibrate_init(model, torch.from_numpy(np.ascontiguousarray(x[:64].transpose(1, 0, 2), np.float32)),
                       cfg.init_std)
        graph = model_to_nir(model, {"dt": cfg.dt})
        dt = cfg.dt
        name = "FSDD-shaped mlp 1600-512-10 (untrained, data-dependent init)"
    x = np.asarray(x, np.float32)
    reps = -(-need // len(x))
    x = np.concatenate([x] * reps)[:need] if reps > 1 else x
    return Workload(name=name, graph=graph, dt=dt, stream_x=np.ascontiguousarray(x[:n_stream]),
                    batch_x=np.ascontiguousarray(x[:n_batch]), note=f"T = {x.shape[1]}, {src}")


N_IN, N_OUT, SYN_TAU = 700, 20, 0.005


def synthetic_workload(hidden: int, activity: float, steps: int, n_stream: int, n_batch: int, seed: int = 0) -> Workload:
    rng = np.random.default_rng(seed)
    k_in = max(activity * N_IN, 1.0)
    w1 = rng.normal(0.0, 2.0 / np.sqrt(k_in), (hidden, N_IN)).astype(np.float32)
    w2 = rng.normal(0.0, 2.0 / np.sqrt(0.1 * hidden), (N_OUT, hidden)).astype(np.float32)
    graph = nir.NIRGraph(
        nodes={"input": nir.Input(input_type={"input": np.array([N_IN])}),
               "fc1": nir.Affine(weight=w1, bias=np.zeros(hidden, np.float32)),
               "lif1": lif_node(hidden, SYN_TAU),
               "fc_out": nir.Affine(weight=w2, bias=np.zeros(N_OUT, np.float32)),
               "lif_out": lif_node(N_OUT, SYN_TAU),
               "output": nir.Output(output_type={"output": np.array([N_OUT])})},
        edges=[("input", "fc1"), ("fc1", "lif1"), ("lif1", "fc_out"), ("fc_out", "lif_out"), ("lif_out", "output")])
    x = (rng.random((max(n_stream, n_batch), steps, N_IN)) < activity).astype(np.float32)
    return Workload(name=f"H={hidden} p={activity:g} T={steps}", graph=graph, dt=1e-3,
                    stream_x=x[:n_stream], batch_x=x[:n_batch],
                    extra={"hidden": hidden, "activity": activity, "steps": steps,
                           "synapses": N_IN * hidden + hidden * N_OUT})


# ---------------------------------------------------------------------------------------------- engines
class Neurostack:
    name = "neurostack"

    def __init__(self, graph: nir.NIRGraph, dt: float, precision: str):
        self.plan = lower(graph, dt=dt, precision=precision)

    @staticmethod
    def held_view(xs: np.ndarray) -> np.ndarray:
        """xs (N, T, F) whose rows repeat, passed as `neurostack simulate` passes the image view: each sample's
        first row held for T steps (a view of stride 0 in time, see sim.run)."""
        return np.broadcast_to(xs[:, :1], xs.shape)

    def stream(self, xs, count: bool = False) -> int:
        ops = 0
        for x in xs:
            r = run(self.plan, x, parallel=False, record=())
            if count:
                ops += int(r.counts.sops.sum() + r.counts.macs.sum())
        return ops

    def batch(self, xs: np.ndarray, count: bool = False) -> int:
        r = run(self.plan, xs, parallel=True, record=())
        return int(r.counts.sops.sum() + r.counts.macs.sum()) if count else 0


class TorchPeer:
    """A peer's imported module, stepped one time step at a time; inputs are time-major torch tensors."""

    name = "?"
    lif_names: list[str] = []

    def __init__(self, graph: nir.NIRGraph):
        import torch
        self.torch = torch
        self.module = self._load(graph).eval()
        self.lif_names = [n for n, node in graph.nodes.items() if isinstance(node, nir.LIF) and hasattr(self.module, n)]

    def _load(self, graph):
        raise NotImplementedError

    def reset(self):
        pass

    def _run(self, x):
        raise NotImplementedError

    def prepare(self, xs: np.ndarray, per_sample: bool):
        """Torch tensors outside the timing: per sample (T, 1, F), or the batch (T, B, F), contiguous."""
        t = self.torch.from_numpy(np.ascontiguousarray(xs.transpose(1, 0, 2)))
        return [t[:, i:i + 1].contiguous() for i in range(t.shape[1])] if per_sample else t

    def stream(self, samples: list) -> None:
        with self.torch.inference_mode():
            for x in samples:
                self._run(x)

    def batch(self, x) -> None:
        with self.torch.inference_mode():
            self._run(x)

    def spikes(self, x) -> dict[str, int]:
        """Spikes per LIF node on x (T, B, F), through forward hooks (untimed check)."""
        counts = {n: 0 for n in self.lif_names}

        def keep(n):
            def hook(m, i, o):
                counts[n] += int((o[0] if isinstance(o, tuple) else o).sum())
            return hook

        hooks = [getattr(self.module, n).register_forward_hook(keep(n)) for n in self.lif_names]
        try:
            with self.torch.inference_mode():
                self._run(x)
        finally:
            for h in hooks:
                h.remove()
        return counts


class NorsePeer(TorchPeer):
    name = "Norse"

    def _load(self, graph):
        import norse.torch
        return norse.torch.from_nir(graph)

    def _run(self, x):
        state = None
        out = None
        for t in range(x.shape[0]):
            out, state = self.module(x[t], state)
        return out


class SnnTorchPeer(TorchPeer):
    name = "snnTorch"

    def _load(self, graph):
        import snntorch
        from snntorch.import_nir import import_from_nir
        with contextlib.redirect_stdout(io.StringIO()):  # it prints its weight-scaling warning
            module = import_from_nir(graph)
        self._neurons = [m for m in module.modules() if isinstance(m, snntorch.SpikingNeuron)]
        return module

    def _run(self, x):
        for m in self._neurons:  # a new sample: zero the membranes (init_hidden state lives in the modules)
            if hasattr(m, "reset_mem"):
                m.reset_mem()
            else:
                m.reset_hidden()
        out = None
        for t in range(x.shape[0]):
            out = self.module(x[t])
        return out


# ---------------------------------------------------------------------------------------------- reference kernel
@njit(cache=False)
def reference_columns(ev_j, ev_v, w_t, out):
    """out += ev_v[e] * w_t[ev_j[e], :] for every event e: the synaptic work and nothing else."""
    n_out = out.shape[0]
    for e in range(ev_j.shape[0]):
        j = ev_j[e]
        v = ev_v[e]
        for i in range(n_out):
            out[i] += v * w_t[j, i]
    return out[0]


@njit(cache=False)
def reference_columns4(ev_j, ev_v, w_t, out):
    """reference_columns with four columns per pass over `out` (the simulator's own loop; the same sums in the
    same order): the stricter limit."""
    n_out = out.shape[0]
    n = ev_j.shape[0]
    e = 0
    while e + 4 <= n:
        v0, v1, v2, v3 = ev_v[e], ev_v[e + 1], ev_v[e + 2], ev_v[e + 3]
        w0, w1, w2, w3 = w_t[ev_j[e]], w_t[ev_j[e + 1]], w_t[ev_j[e + 2]], w_t[ev_j[e + 3]]
        for i in range(n_out):
            out[i] = out[i] + v0 * w0[i] + v1 * w1[i] + v2 * w2[i] + v3 * w3[i]
        e += 4
    for q in range(e, n):
        v = ev_v[q]
        w = w_t[ev_j[q]]
        for i in range(n_out):
            out[i] += v * w[i]
    return out[0]


def reference_events(plan, xs: np.ndarray, skip_repeats: bool) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Per Affine/Linear node with one source: (input index, value, W^T) of every non-zero input of every step of
    every sample, from a recorded simulator run on xs. skip_repeats: leave out steps whose input equals the
    previous step's, as the simulator does (no work, same output)."""
    names = plan.node_names
    r = run(plan, xs, parallel=True)
    layers = []
    for k, name in enumerate(names):
        if int(plan.kinds[k]) != P.K_AFFINE:
            continue
        e0, e1 = int(plan.src_ptr[k]), int(plan.src_ptr[k + 1])
        if e1 - e0 != 1 or int(plan.src_prev[e0]):
            continue
        src = names[int(plan.src_node[e0])]
        x = (xs if src == plan.input_name else r.outputs[src]).reshape(xs.shape[0], xs.shape[1], -1)
        if skip_repeats:
            keep = np.ones(x.shape[:2], bool)
            keep[:, 1:] = np.any(x[:, 1:] != x[:, :-1], axis=2)
            x = x[keep]
        else:
            x = x.reshape(-1, x.shape[-1])
        steps_idx, j = np.nonzero(x)
        n_in, n_out = int(plan.in_len[k]), int(plan.out_len[k])
        po = int(plan.fp_off[k])
        w_t = plan.fparams[po + n_out:po + n_out + n_in * n_out].reshape(n_in, n_out)
        layers.append((j.astype(np.int64), x[steps_idx, j].astype(plan.dtype), w_t))
    return layers


def reference_run(layers, kernel=reference_columns):
    """A function running the reference kernel over every layer's events (compiled before it is returned)."""
    def go():
        for j, v, w_t in layers:
            kernel(j, v, w_t, np.zeros(w_t.shape[1], w_t.dtype))

    go()  # compile
    return go


def time_reference(layers, repeats: int, budget: float, kernel=reference_columns) -> float:
    return best_of(reference_run(layers, kernel), repeats, budget)


# ---------------------------------------------------------------------------------------------- measuring
@dataclass
class Row:
    workload: str
    graph: str  # "as exported" | "LIF readout"
    engine: str
    mode: str  # "stream" | "all-in-one" | "batch B"
    seconds: float
    samples: int
    ops: int  # SOPs + MACs counted by the simulator for these samples
    note: str = ""

    @property
    def per_sample(self) -> float:
        return self.seconds / self.samples

    @property
    def ns_per_op(self) -> float:
        return 1e9 * self.seconds / self.ops if self.ops else float("nan")


def measure(w: Workload, args, peers: tuple[str, ...], graph_label: str, graph: nir.NIRGraph) -> list[Row]:
    """Every engine on w's inputs with `graph`; rows for the stream and batch modes."""
    rows: list[Row] = []
    ns = Neurostack(graph, w.dt, args.precision)
    run(ns.plan, w.stream_x[:1, :2], parallel=True, record=())  # compile / load the numba cache
    # the image view repeats one row: given held, as `neurostack simulate` gives it (also timed with the rows
    # repeated in memory, which the simulator reads to find that they repeat)
    held = w.held
    stream_x, batch_x = (ns.held_view(w.stream_x), ns.held_view(w.batch_x)) if held else (w.stream_x, w.batch_x)
    ops_stream = ns.stream(stream_x, count=True)
    ops_batch = ns.batch(batch_x, count=True)
    if held and (ops_stream, ops_batch) != (ns.stream(w.stream_x, count=True), ns.batch(w.batch_x, count=True)):
        raise SystemExit("error: held and repeated inputs gave different operation counts")
    n_s, n_b = len(w.stream_x), len(w.batch_x)
    # the reference kernels on the events of the stream samples, timed in turn with the simulator's stream
    layers = reference_events(ns.plan, w.stream_x, skip_repeats=not args.ref_all_events)
    what = "all counted events" if args.ref_all_events else "the events the simulator works on"
    timed = {"stream": lambda: ns.stream(stream_x), "all-in-one": lambda: ns.batch(stream_x),
             "ref": reference_run(layers), "ref4": reference_run(layers, reference_columns4)}
    if held:
        timed["repeated"] = lambda: ns.stream(w.stream_x)
    best = best_of_each(timed, args.repeats, args.budget)
    how = "input held (one row per sample, as `neurostack simulate` passes the image view)" if held else ""
    rows.append(Row(w.name, graph_label, "neurostack", "stream", best["stream"], n_s, ops_stream, how))
    if held:
        rows.append(Row(w.name, graph_label, "neurostack", "stream, rows repeated", best["repeated"], n_s, ops_stream,
                        "the same input with its T rows in memory: read to find that they repeat"))
    rows.append(Row(w.name, graph_label, "neurostack", "all-in-one", best["all-in-one"], n_s, ops_stream,
                    "; ".join(x for x in ("one run() call, all stream samples, parallel=True", how) if x)))
    rows.append(Row(w.name, graph_label, "neurostack", f"batch {n_b}",
                    best_of(lambda: ns.batch(batch_x), args.repeats, args.budget), n_b, ops_batch, how))
    sim_ref = run(ns.plan, w.stream_x[:min(n_s, 4)], parallel=True)
    n_chk = min(n_s, 4) * w.stream_x.shape[1]
    w.extra["rates"] = {n: c / (n_chk * int(np.prod(ns.plan.shapes[n]))) for n, c in sim_ref.spike_counts.items()}
    for peer_name in peers:
        cls = {"norse": NorsePeer, "snntorch": SnnTorchPeer}[peer_name]
        g = for_snntorch(graph, w.dt) if peer_name == "snntorch" else graph
        try:
            peer = cls(g)
        except Exception as exc:  # noqa: BLE001 - a peer that cannot load the graph is a result, not a crash
            rows.append(Row(w.name, graph_label, cls.name, "-", float("nan"), 1, 0,
                            f"cannot load: {type(exc).__name__}: {str(exc).splitlines()[0][:90]}"))
            continue
        note = ""
        if peer_name == "norse" and any(isinstance(n, nir.LI) for n in graph.nodes.values()):
            note = "LI readout dropped by Norse: less work"
        if peer_name == "snntorch":
            note = "taus / 10 for its fixed dt = 0.1 ms"
        # untimed check: the peer's spikes per LIF node against ours on the first samples
        got = peer.spikes(peer.prepare(w.stream_x[:min(n_s, 4)], per_sample=False))
        diffs = [f"{n} {got[n]} vs {sim_ref.spike_counts[n]}" for n in got
                 if n in sim_ref.spike_counts and got[n] != sim_ref.spike_counts[n]]
        check = "spikes differ: " + ", ".join(diffs) if diffs else "same spike counts"
        note = "; ".join(x for x in (note, check) if x)
        samples = peer.prepare(w.stream_x, per_sample=True)
        peer.stream(samples[:1])  # warm-up
        rows.append(Row(w.name, graph_label, cls.name, "stream",
                        best_of(lambda: peer.stream(samples), args.repeats, args.budget), n_s, ops_stream, note))
        xb = peer.prepare(w.batch_x, per_sample=False)
        peer.batch(xb)  # warm-up
        rows.append(Row(w.name, graph_label, cls.name, f"batch {n_b}",
                        best_of(lambda: peer.batch(xb), args.repeats, args.budget), n_b, ops_batch, note))
    rows.append(Row(w.name, graph_label, "reference kernel", "stream", best["ref"], n_s, ops_stream, what))
    rows.append(Row(w.name, graph_label, "reference kernel x4", "stream", best["ref4"], n_s, ops_stream,
                    what + "; four columns per pass, as the simulator adds them"))
    return rows


def result_table(rows: list[Row]) -> str:
    """One row per engine and mode, with neurostack's speed-up over it (same mode; stream also vs all-in-one)."""
    header = ["graph", "engine", "mode", "samples", "wall s", "samples/s", "SOPs/s", "ns/SOP",
              "neurostack speed-up", "note"]
    ns = {(r.graph, r.mode): r for r in rows if r.engine == "neurostack"}
    out = []
    for r in rows:
        if np.isnan(r.seconds):
            out.append([r.graph, r.engine, r.mode, "-", "-", "-", "-", "-", "-", r.note])
            continue
        mine = ns.get((r.graph, r.mode))
        if r.engine == "neurostack" or mine is None:
            up = "-"
        else:
            up = f"{r.seconds / mine.seconds:.2f}x"
            if r.mode == "stream":
                up += f" (all-in-one {r.seconds / ns[(r.graph, 'all-in-one')].seconds:.2f}x)"
        if r.engine.startswith("reference kernel"):
            up = (f"simulator / reference = {ns[(r.graph, 'stream')].seconds / r.seconds:.2f} "
                  f"(all-in-one {ns[(r.graph, 'all-in-one')].seconds / r.seconds:.2f})")
        out.append([r.graph, r.engine, r.mode, r.samples, fmt_s(r.seconds), f"{r.samples / r.seconds:.3g}",
                    fmt_rate(r.ops / r.seconds), f"{r.ns_per_op:.3g}", up, r.note])
    return table(header, out)


def ratio(rows: list[Row], graph: str, engine: str, mode: str) -> float:
    """Peer time / neurostack time for (graph, mode); nan when absent."""
    mine = [r for r in rows if r.graph == graph and r.engine == "neurostack" and r.mode == mode]
    theirs = [r for r in rows if r.graph == graph and r.engine == engine and r.mode == mode]
    if not mine or not theirs or np.isnan(theirs[0].seconds):
        return float("nan")
    return theirs[0].seconds / mine[0].seconds


def fit_scaling(series: list[tuple[Workload, list[Row]]]) -> tuple[str, dict]:
    """Fits over the synthetic series, neurostack stream time per sample."""
    t, ops, syn, upd, steps = [], [], [], [], []
    for w, rows in series:
        r = next(r for r in rows if r.engine == "neurostack" and r.mode == "stream")
        t.append(r.per_sample)
        ops.append(r.ops / r.samples)
        syn.append(w.extra["synapses"])
        upd.append(w.extra["steps"] * (w.extra["hidden"] + N_OUT))
        steps.append(w.extra["steps"])
    t, ops, syn, upd, steps = (np.asarray(a, float) for a in (t, ops, syn, upd, steps))
    lt, lo, ls = np.log(t), np.log(ops), np.log(syn)
    b_ops = np.polyfit(lo, lt, 1)[0]
    b_syn = np.polyfit(ls, lt, 1)[0]
    joint = np.linalg.lstsq(np.column_stack([np.ones_like(lt), lo, ls]), lt, rcond=None)[0]
    lines = [
        f"- fitted exponent b in log(time) = a + b log(SOPs): **b = {b_ops:.3f}** ({len(t)} configurations)",
        f"- against synapse count alone: b = {b_syn:.3f}",
        f"- jointly, log(time) = a + b log(SOPs) + c log(synapses): b = {joint[1]:.3f}, c = {joint[2]:.3f}",
    ]
    coef = None
    if len(t) >= 6:  # four terms need a few more configurations than that
        from scipy.optimize import nnls
        a = np.column_stack([ops, upd, steps, np.ones_like(t)])
        coef, _ = nnls(a / t[:, None], np.ones_like(t))  # relative least squares: every config weighs the same
        pred = a @ coef
        lines.append(
            f"- linear breakdown (non-negative, relative errors): {1e9 * coef[0]:.3g} ns per SOP + "
            f"{1e9 * coef[1]:.3g} ns per neuron update (clock-driven, every neuron every step) + "
            f"{1e9 * coef[2]:.3g} ns per time step + {1e6 * coef[3]:.3g} us per sample (run() call); the SOP term "
            f"is a median {100 * float(np.median(ops * coef[0] / pred)):.0f} % of the time; largest misfit "
            f"{100 * float(np.max(np.abs(pred / t - 1))):.0f} %")
    return "\n".join(lines), {"b": b_ops, "b_syn": b_syn, "joint": joint, "coef": coef}


def series_table(series: list[tuple[Workload, list[Row]]]) -> str:
    header = ["H", "p", "T", "synapses", "hidden rate", "SOPs/sample", "neurostack ms/sample", "ns/SOP", "sim / reference",
              "sim / reference x4", "Norse x", "snnTorch x", "Norse x (batch)", "snnTorch x (batch)"]
    out = []
    for w, rows in series:
        r = next(r for r in rows if r.engine == "neurostack" and r.mode == "stream")
        ref = next((x for x in rows if x.engine == "reference kernel"), None)
        ref4 = next((x for x in rows if x.engine == "reference kernel x4"), None)
        b = next(x.mode for x in rows if x.engine == "neurostack" and x.mode.startswith("batch"))
        cells = [w.extra["hidden"], f"{w.extra['activity']:g}", w.extra["steps"], w.extra["synapses"],
                 f"{w.extra['rates'].get('lif1', float('nan')):.3f}",
                 f"{r.ops / r.samples:.3g}", f"{1e3 * r.per_sample:.3g}", f"{r.ns_per_op:.3g}",
                 f"{r.seconds / ref.seconds:.2f}" if ref else "-", f"{r.seconds / ref4.seconds:.2f}" if ref4 else "-"]
        for mode in ("stream", b):
            for peer in ("Norse", "snnTorch"):
                v = ratio(rows, "LIF-LIF", peer, mode)
                cells.append("-" if np.isnan(v) else f"{v:.1f}")
        out.append(cells)
    return table(header, out)


# ---------------------------------------------------------------------------------------------- main
def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="small configurations (checks that everything runs)")
    ap.add_argument("--graph", type=Path, help="an exported FSDD mlp graph (else one of the same shape is built)")
    ap.add_argument("--fsdd", type=Path, help="FSDD recordings folder for real inputs")
    ap.add_argument("--input", type=Path, help="inputs (N, T, *input_shape) .npy for --graph")
    ap.add_argument("--fsdd-steps", type=int, default=25, help="time steps of the built FSDD model's image view")
    ap.add_argument("--samples", type=int, help="samples streamed one by one (default 32; quick 4)")
    ap.add_argument("--batch", type=int, help="batch size of the batch mode (default 64; quick 16)")
    ap.add_argument("--repeats", type=int, help="runs per figure, the best is kept (default 5; quick 2)")
    ap.add_argument("--budget", type=float, help="seconds after which one figure stops repeating (default 10)")
    ap.add_argument("--hidden", type=int, nargs="+", help="synthetic hidden sizes (default 256 1024 4096)")
    ap.add_argument("--activity", type=float, nargs="+", help="synthetic input activity (default 0.01 0.05 0.2)")
    ap.add_argument("--steps", type=int, nargs="+", help="synthetic time steps (default 100 1000)")
    ap.add_argument("--synthetic-samples", type=int, help="synthetic samples streamed (default 4; quick 2)")
    ap.add_argument("--synthetic-batch", type=int, help="synthetic batch size (default 64; quick 8)")
    ap.add_argument("--peers", default="norse,snntorch", help="comma-separated: norse, snntorch, or none")
    ap.add_argument("--synthetic-peers", help="peers on the synthetic series (default: --peers)")
    ap.add_argument("--skip-fsdd", action="store_true")
    ap.add_argument("--skip-synthetic", action="store_true")
    ap.add_argument("--ref-all-events", action="store_true",
                    help="give the reference kernel every counted event (also the image view's repeated steps)")
    ap.add_argument("--precision", default="float32", choices=["float32", "float64"])
    ap.add_argument("--threads", type=int, default=os.cpu_count(), help="torch and numba threads")
    ap.add_argument("--out", type=Path, help="write the results into this markdown file (its sim_speed section)")
    args = ap.parse_args()
    q = args.quick
    args.samples = args.samples or (4 if q else 32)
    args.batch = args.batch or (16 if q else 64)
    args.repeats = args.repeats or (2 if q else 5)
    args.budget = args.budget or (5.0 if q else 10.0)
    hidden = args.hidden or ([256, 1024] if q else [256, 1024, 4096])
    activity = args.activity or ([0.05, 0.2] if q else [0.01, 0.05, 0.2])
    steps = args.steps or ([100] if q else [100, 1000])
    syn_samples = args.synthetic_samples or (2 if q else 4)
    syn_batch = args.synthetic_batch or (8 if q else 64)
    peers = tuple(p for p in args.peers.split(",") if p and p != "none")
    syn_peers = peers if args.synthetic_peers is None else \
        tuple(p for p in args.synthetic_peers.split(",") if p and p != "none")

    import torch
    torch.set_num_threads(args.threads)
    numba.set_num_threads(min(args.threads, numba.config.NUMBA_NUM_THREADS))

    busy = hasattr(os, "getloadavg") and os.getloadavg()[0] > 0.5 * (os.cpu_count() or 1)
    if busy and args.threads > 1:
        print(f"warning: load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores: multi-threaded timings "
              "(torch's OpenMP, numba's prange) wait on descheduled threads and are unreliable here; "
              "compare with --threads 1", file=sys.stderr)
    out = ["Simulator speed (`benchmarks/sim_speed.py`): neurostack's Numba simulator against Norse "
           "`from_nir` and snnTorch `import_from_nir` (PyTorch, CPU) on the same NIR graphs and inputs. "
           "Speed-up = peer time / neurostack time in the same mode, measured in the same run. "
           "SOPs = the simulator's counted SOPs + MACs for the same samples (peers compute densely: "
           "their SOPs/s are effective rates). Best of repeats; the machine may be shared, so the load average is "
           "given.", ""]
    if q:
        out += ["**--quick: small configurations, a smoke test, not the final figures.**", ""]
    out += machine_info(args.threads)
    if busy and args.threads > 1:
        out.append("- **warning**: the machine was busy (load above half the cores): multi-threaded figures are "
                   "unreliable (threads wait at OpenMP / prange barriers for descheduled peers)")
    out.append("")
    goals = []
    t_start = time.perf_counter()

    if not args.skip_fsdd:
        w = fsdd_workload(args)
        print(f"# {w.name}: {w.note}", file=sys.stderr)
        has_li = any(isinstance(n, nir.LI) for n in w.graph.nodes.values())
        rows = []
        if has_li:
            rows += measure(w, args, tuple(p for p in peers if p == "norse"), "as exported", w.graph)
        rows += measure(w, args, peers, "LIF readout" if has_li else "as exported", li_to_lif(w.graph))
        like = "LIF readout" if has_li else "as exported"
        out += [f"### {w.name}", "", f"{w.note}; {len(w.stream_x)} samples streamed, batch {len(w.batch_x)}, "
                f"{args.precision}. \"LIF readout\": the LI readout replaced by a LIF layer (neither peer runs LI: "
                "Norse drops it, snnTorch rejects the graph), the like-for-like comparison.", "",
                result_table(rows), ""]
        b = f"batch {len(w.batch_x)}"
        n1, s1, nb = (ratio(rows, like, "Norse", "stream"), ratio(rows, like, "snnTorch", "stream"),
                      ratio(rows, like, "Norse", b))
        ref = next(r for r in rows if r.graph == like and r.engine == "reference kernel")
        ref4 = next(r for r in rows if r.graph == like and r.engine == "reference kernel x4")
        mine = next(r for r in rows if r.graph == like and r.engine == "neurostack" and r.mode == "stream")
        one = next(r for r in rows if r.graph == like and r.engine == "neurostack" and r.mode == "all-in-one")
        rep_rows = [r for r in rows
                    if r.graph == like and r.engine == "neurostack" and r.mode == "stream, rows repeated"]
        repeated = (f"; with the input's rows repeated in memory (not held): {rep_rows[0].seconds / ref.seconds:.2f}x"
                    if rep_rows else "")
        goals += [
            f"- FSDD mlp, batch 1 (stream), vs Norse: {n1:.1f}x (goal >= 10x: {'met' if n1 >= 10 else 'NOT met'})",
            f"- FSDD mlp, batch 1 (stream), vs snnTorch: {s1:.1f}x (goal > 1x: {'met' if s1 > 1 else 'NOT met'})",
            f"- FSDD mlp, {b}, vs Norse: {nb:.1f}x (goal >= 2x: {'met' if nb >= 2 else 'NOT met'})",
            f"- FSDD mlp, ns per SOP: simulator {mine.ns_per_op:.3g}, reference kernel {ref.ns_per_op:.3g}: "
            f"{mine.seconds / ref.seconds:.2f}x "
            f"(goal <= 2x: {'met' if mine.seconds <= 2 * ref.seconds else 'NOT met'}); "
            f"against the reference adding four columns per pass: {mine.seconds / ref4.seconds:.2f}x; all samples in "
            f"one run() call, as the reference takes them: {one.seconds / ref.seconds:.2f}x{repeated}",
        ]

    if not args.skip_synthetic:
        series = []
        for h in hidden:
            for p in activity:
                for s in steps:
                    w = synthetic_workload(h, p, s, syn_samples, syn_batch)
                    print(f"# synthetic {w.name}", file=sys.stderr)
                    series.append((w, measure(w, args, syn_peers, "LIF-LIF", w.graph)))
        text, fit = fit_scaling(series) if len(series) >= 3 else ("(fewer than 3 configurations: no fit)", None)
        out += [f"### Synthetic series: {N_IN} -> H -> {N_OUT} LIF-LIF on Bernoulli input spikes",
                "", f"{syn_samples} samples streamed, batch {syn_batch}, {args.precision}. Columns \"x\": peer time / "
                "neurostack time (stream; batch). sim / reference: neurostack stream time over the reference "
                "kernel's on the same events.", "", series_table(series), "", text, ""]
        sim_ref = [next(r for r in rows if r.engine == "neurostack" and r.mode == "stream").seconds /
                   next(r for r in rows if r.engine == "reference kernel").seconds for _, rows in series]
        sim_ref4 = [next(r for r in rows if r.engine == "neurostack" and r.mode == "stream").seconds /
                    next(r for r in rows if r.engine == "reference kernel x4").seconds for _, rows in series]
        goals.append(f"- synthetic series, simulator / reference kernel: median {np.median(sim_ref):.2f}x, "
                     f"worst {np.max(sim_ref):.2f}x "
                     f"(goal <= 2x: median {'met' if np.median(sim_ref) <= 2 else 'NOT met'}"
                     f", {sum(v <= 2 for v in sim_ref)} of {len(sim_ref)} configurations within 2x); against the "
                     f"reference adding four columns per pass: median {np.median(sim_ref4):.2f}x, worst "
                     f"{np.max(sim_ref4):.2f}x")
        if fit is not None:
            goals.append(f"- time vs SOPs exponent b = {fit['b']:.3f} (linear: b = 1); joint fit with synapse "
                         f"count: b = {fit['joint'][1]:.3f}, c = {fit['joint'][2]:.3f} (goal: c ~ 0)")
        for peer in ("Norse", "snnTorch"):
            for mode in ("stream", f"batch {syn_batch}"):
                v = [ratio(rows, "LIF-LIF", peer, mode) for _, rows in series]
                v = [x for x in v if not np.isnan(x)]
                if v:
                    goals.append(f"- synthetic, {mode} vs {peer}: min {min(v):.1f}x, median "
                                 f"{np.median(v):.1f}x, max {max(v):.1f}x")

    out += ["### Goals (issue 6)", "", *goals, "",
            f"Total benchmark time {time.perf_counter() - t_start:.0f} s."]
    text = "\n".join(out)
    print(text)
    if args.out:
        write_section(args.out, SECTION, "Simulator speed", text)
        print(f"\nwritten to {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
