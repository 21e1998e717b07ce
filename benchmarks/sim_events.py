"""Is the simulator event-driven? Time a 700 -> 1024 -> 20 LIF MLP (T = 500 steps, dt = 1 ms) on spike inputs
whose number of spikes falls step by step; the run time should fall with it (the synaptic work is one weight
column per input spike, not the 717k synapses per step a dense product would touch).

    python benchmarks/sim_events.py [--samples N] [--repeats R] [--precision float32|float64]

Prints: input spikes, hidden spikes, seconds, and microseconds per input spike. Imports no torch.
"""

from __future__ import annotations

import argparse
import time

import nir
import numpy as np

from neurostack.sim import lower, run

N_IN, N_HIDDEN, N_OUT, STEPS = 700, 1024, 20, 500


def build_plan(precision: str):
    rng = np.random.default_rng(0)

    def lif(n, th):
        return nir.LIF(tau=np.full(n, 0.02), r=np.ones(n), v_leak=np.zeros(n), v_threshold=np.full(n, th),
                       v_reset=np.zeros(n))

    graph = nir.NIRGraph.from_list(
        nir.Affine(rng.normal(0.02, 0.3, (N_HIDDEN, N_IN)).astype(np.float32), np.zeros(N_HIDDEN, np.float32)),
        lif(N_HIDDEN, 1.0),
        nir.Affine(rng.normal(0.0, 0.3, (N_OUT, N_HIDDEN)).astype(np.float32), np.zeros(N_OUT, np.float32)),
        lif(N_OUT, 1.0))
    return lower(graph, dt=1e-3, precision=precision)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--samples", type=int, default=1, help="samples per run (parallel over threads when > 1)")
    ap.add_argument("--repeats", type=int, default=3, help="runs per density; the fastest is reported")
    ap.add_argument("--precision", default="float32", choices=["float32", "float64"])
    args = ap.parse_args()
    plan = build_plan(args.precision)
    rng = np.random.default_rng(1)
    run(plan, np.zeros((args.samples, 5, N_IN)))  # compile (or load the numba cache) outside the timing
    print(f"{N_IN} -> {N_HIDDEN} -> {N_OUT} LIF MLP, T = {STEPS}, {args.samples} sample(s), {args.precision}")
    print(f"{'input spikes':>13} {'hidden spikes':>14} {'seconds':>9} {'us/input spike':>15}")
    for p in (0.2, 0.1, 0.05, 0.02, 0.01, 0.005, 0.0):
        x = (rng.random((args.samples, STEPS, N_IN)) < p).astype(np.float32)
        best = np.inf
        for _ in range(args.repeats):
            t0 = time.perf_counter()
            result = run(plan, x, record=["lif_1"])
            best = min(best, time.perf_counter() - t0)
        n_in = int(result.input_events["affine"])
        per = f"{1e6 * best / n_in:15.3f}" if n_in else f"{'-':>15}"
        print(f"{n_in:13d} {result.spike_counts['lif']:14d} {best:9.4f} {per}")


if __name__ == "__main__":
    main()
