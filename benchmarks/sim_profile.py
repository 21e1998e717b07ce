"""Where the simulator's time goes: the share of each node of a graph in the kernel's run time, measured inside the
time loop with the CPU's cycle counter, next to the reference kernel (sim_speed.py) on the same events.

    python benchmarks/sim_profile.py --graph G.nir --input X.npy [--samples 32] [--precision float32]
    python benchmarks/sim_profile.py --synthetic 256,0.05,100          # sim_speed.py's 700 -> H -> 20 series

A copy of neurostack/sim/kernels.py is compiled with a read of the cycle counter (llvm.readcyclecounter) before
each node's turn in simulate_sample; the cycles between two reads are the node's (its steps of the time block,
its counting and its skips). The copy is a few percent slower than the real kernels, so shares are given, scaled
to the real kernels' time measured in the same run (one run_serial call for all samples, no run() overhead).
Not a unit test: the anchors it edits in kernels.py must exist, else it says which is missing.
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from neurostack.sim import kernels, load_graph, lower
from neurostack.sim.run import _layout

sys.path.insert(0, str(Path(__file__).resolve().parent))
from sim_speed import reference_events, synthetic_workload, time_reference  # noqa: E402

CYCLES = '''
from numba import types
from numba.extending import intrinsic


@intrinsic
def cycles(typingctx):
    def codegen(context, builder, signature, args):
        import llvmlite.ir as ir
        fn = builder.module.declare_intrinsic("llvm.readcyclecounter", fnty=ir.FunctionType(ir.IntType(64), []))
        return builder.call(fn, [])
    return types.int64(), codegen
'''

# (anchor in kernels.py, replacement): one read per node turn, the last one after the node loop
EDITS = [
    ("from numba import njit, prange\n", "from numba import njit, prange\n" + CYCLES),
    ("        for k in range(n_nodes):\n            kind = kinds[k]\n",
     "        for k in range(n_nodes):\n            now = cycles()\n            if k > 0:\n"
     "                status[k] += now - mark\n            mark = now\n            kind = kinds[k]\n"),
    ("        for r in range(nb):\n            t = t0 + r\n            # outputs read by back edges",
     "        status[n_nodes] += cycles() - mark\n        for r in range(nb):\n            t = t0 + r\n"
     "            # outputs read by back edges"),
    ("    per_step = sops.shape[0] > 1\n", "    per_step = sops.shape[0] > 1\n    mark = cycles()\n"),
]


def instrumented_kernels():
    """kernels.py compiled with the cycle reads (and no cache)."""
    src = Path(kernels.__file__).read_text().replace("cache=True", "cache=False")
    for anchor, new in EDITS:
        if anchor not in src:
            raise SystemExit(f"error: kernels.py changed: anchor not found: {anchor.strip()[:60]!r}")
        src = src.replace(anchor, new, 1)
    path = Path(tempfile.mkdtemp()) / "kernels_profiled.py"
    path.write_text(src)
    spec = importlib.util.spec_from_file_location("kernels_profiled", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def kernel_args(plan, xs: np.ndarray, status_width: int, held: bool = False):
    """run_serial's arguments for xs (N, T, n_input); held: pass only its first row per sample (a held input)."""
    lay = _layout(plan, frozenset(), False)
    n, steps = xs.shape[:2]
    if held:
        xs = np.ascontiguousarray(xs[:, :1])
    rec = np.empty((n, steps, lay.rec_total), plan.dtype)
    vrec = np.empty((n, 0, 0), plan.dtype)
    counts = np.zeros((n, 5, 1, len(plan.node_names)), np.int64)
    status = np.zeros((n, status_width), np.int64)
    args = (xs, steps, plan.block_steps(steps), *lay.plan_args, rec, *lay.v_args, vrec, *lay.count_args, counts, status)
    return args, status


def best(fn, repeats: int) -> float:
    fn()
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--graph", type=Path)
    ap.add_argument("--input", type=Path, help="inputs (N, T, *input_shape) .npy for --graph")
    ap.add_argument("--synthetic", help="H,p,T of sim_speed.py's synthetic series instead of a graph")
    ap.add_argument("--samples", type=int, default=32)
    ap.add_argument("--repeats", type=int, default=10)
    ap.add_argument("--precision", default="float32", choices=["float32", "float64"])
    ap.add_argument("--held", action="store_true",
                    help="pass each sample's first input row held for every step (inputs that repeat it)")
    args = ap.parse_args()
    if args.synthetic:
        h, p, t = args.synthetic.split(",")
        w = synthetic_workload(int(h), float(p), int(t), args.samples, 1)
        plan, xs = lower(w.graph, dt=w.dt, precision=args.precision), w.stream_x
    elif args.graph and args.input:
        loaded = load_graph(args.graph)
        dt = float((loaded.metadata or {}).get("dt", 1e-3))
        plan, xs = lower(loaded.graph, dt=dt, precision=args.precision), np.load(args.input, allow_pickle=False)
    else:
        raise SystemExit("error: give --graph G.nir --input X.npy, or --synthetic H,p,T")
    xs = np.ascontiguousarray(xs[:args.samples].reshape(min(len(xs), args.samples), xs.shape[1], -1), plan.dtype)
    n_nodes = len(plan.node_names)

    profiled = instrumented_kernels()
    if args.held and not np.array_equal(xs, np.broadcast_to(xs[:, :1], xs.shape)):
        raise SystemExit("error: --held: the inputs do not repeat their first row at every step")
    real_args, _ = kernel_args(plan, xs, 1, args.held)
    prof_args, status = kernel_args(plan, xs, n_nodes + 1, args.held)
    real = best(lambda: kernels.run_serial(*real_args), args.repeats)
    profiled.run_serial(*prof_args)
    status[:] = 0
    profiled.run_serial(*prof_args)
    cycles = status.sum(axis=0)[1:n_nodes + 1].astype(float)
    share = cycles / cycles.sum()
    ref = time_reference(reference_events(plan, xs, skip_repeats=True), args.repeats, 10.0)

    per = 1e6 / len(xs)
    print(f"{len(xs)} samples of {xs.shape[1]} steps, {args.precision}, block {plan.block_steps(xs.shape[1])} steps")
    print(f"kernels (one run_serial call, no run() overhead): {real * per:.1f} us per sample; "
          f"reference kernel: {ref * per:.1f} us per sample ({real / ref:.2f}x)")
    print(f"{'node':<24}{'type':<12}{'size':>7}{'us/sample':>11}{'share':>8}{'ns/step':>9}")
    for k, name in enumerate(plan.node_names):
        us = share[k] * real * per
        print(f"{name:<24}{plan.node_types[name]:<12}{int(plan.out_len[k]):>7}{us:>11.1f}{100 * share[k]:>7.1f}%"
              f"{1e3 * us / xs.shape[1]:>9.0f}")


if __name__ == "__main__":
    main()
