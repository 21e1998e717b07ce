"""Event-driven simulator for NIR graphs (numpy + numba + nir only; never imports torch).

    loaded = load_graph("model.nir")                      # tolerant reading, repairs listed in loaded.warnings
    plan = lower(loaded.graph, dt=1e-3, convention="spec")  # NIR graph -> flat arrays (plan.py)
    result = run(plan, inputs)                            # inputs (N, T, *input_shape) -> SimResult

Modules: load (reading), conventions (how each producer discretises), lowering (graph -> Plan), plan (the
array layout), kernels (Numba), run (the loop and SimResult), extensions (neurostack's own node types) and
attention (the spiking self-attention node's kernel and counts).
"""

from neurostack.sim.conventions import CONVENTIONS
from neurostack.sim.load import LoadedGraph, load_graph
from neurostack.sim.lowering import lower, unsupported_nodes
from neurostack.sim.plan import Plan
from neurostack.sim.run import SimResult, run

__all__ = ["CONVENTIONS", "LoadedGraph", "Plan", "SimResult", "load_graph", "lower", "run", "unsupported_nodes"]
