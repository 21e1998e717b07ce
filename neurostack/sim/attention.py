"""The spiking self-attention extension node (extensions.SpikingSelfAttention) in the simulator: checks, lowering,
the Numba kernel, and its operation counts.

Plan layout (kind plan.K_ATTENTION):  ip: D, N, H, q_off, k_off, v_off (offsets of the Q, K, V source outputs in
the step buffer `buf`);  fp: scale.  The node reads its three sources straight from `buf` (its summed input is
empty: in_len 0), so the time loop only needs the two-line call in kernels.simulate_sample.

Counting, as the Spikformer paper's energy accounting (Zhou et al. 2023, appendix: SOPs of the spike-matrix
products) but event-driven, like every synaptic node here (an operation is a non-zero input meeting a non-zero
operand), per step and head:
  Q K^T      every Q spike at (c, n) accumulates K[c, m] into S[n, m] for each m where K[c, m] != 0:
             sum over channels c of (Q spikes in c) x (K spikes in c)
  S V        every V spike at (c, m) accumulates S[n, m] into A[c, n] for each n where S[n, m] != 0:
             sum over channels c, tokens m with V[c, m] != 0 of (non-zero entries of S's column m)
They are SOPs when every Q, K, V value is 0 or 1 (else MACs: multi-spike counts), as for other nodes; the
events are the non-zero Q, K and V values. The dense count (every product, as a clock-driven ANN would do) is
2 N^2 D per step. No extra scaling: the multiplication by `scale` is one per output, like a bias add.

Numba caches the time loop (kernels.py) with this kernel compiled in, and does not notice edits to this file on its
own: after changing the kernel, clear neurostack/sim/__pycache__ (or touch kernels.py).
"""

from __future__ import annotations

import numpy as np
from numba import njit

from neurostack.errors import NeurostackError
from neurostack.sim.extensions import SpikingSelfAttention


def check_node(name: str, node: SpikingSelfAttention, sources: list[str], back_sources: list[str]) -> dict[str, str]:
    """The full names of the Q, K, V sources of attention node `name` (dotted for nested graphs), after checking the
    node's fields and that its incoming edges come from exactly those three nodes."""
    shape = tuple(int(s) for s in node.shape)
    if len(shape) not in (2, 3) or (len(shape) == 3 and shape[2] != 1) or min(shape) < 1:
        raise NeurostackError(f"node '{name}': {node.NIR_TYPE} shape {shape} is not (channels, tokens[, 1])")
    if node.heads < 1 or shape[0] % node.heads:
        raise NeurostackError(f"node '{name}': {shape[0]} channels do not split into {node.heads} heads")
    if not np.isfinite(node.scale):
        raise NeurostackError(f"node '{name}': scale {node.scale} is not finite")
    prefix = name.rpartition(".")[0]
    full = {f: (f"{prefix}.{getattr(node, f)}" if prefix else getattr(node, f)) for f in node.NAME_FIELDS}
    if back_sources:
        raise NeurostackError(f"node '{name}': {node.NIR_TYPE} cannot be fed through a cycle "
                              f"('{back_sources[0]}')")
    if sorted(sources) != sorted(full.values()) or len(set(sources)) != 3:
        named = ", ".join(f"{f}='{v}'" for f, v in full.items())
        raise NeurostackError(f"node '{name}': its inputs {sorted(sources)} are not the three nodes it names "
                              f"({named})")
    return full


def lower_node(node: SpikingSelfAttention, source_offsets: dict[str, int], pk) -> tuple[int, int, int]:
    """(fparams offset, iparams offset, state length) of an attention node; source_offsets: q/k/v -> out_off."""
    shape = [int(s) for s in node.shape]
    d, n = shape[0], int(np.prod(shape[1:]))
    io = pk.ints([d, n, node.heads, source_offsets["q"], source_offsets["k"], source_offsets["v"]])
    return pk.floats([node.scale]), io, 0


def dense_per_step(d: int, n: int) -> int:
    """Products of Q K^T and (Q K^T) V in one step, zeros included: N*N*D each."""
    return 2 * n * n * d


def scratch_len(node: SpikingSelfAttention) -> int:
    """Entries of the scratch array the kernel needs: S (N, N), N tokens."""
    n = int(np.prod([int(s) for s in node.shape][1:]))
    return n * n


@njit(cache=True, _nrt=False)
def attention(buf, ip, io, fp, po, out, scratch, sops, macs, events, k):
    """One step: out = per head (Q K^T) V * scale from the Q, K, V outputs in buf; counts into sops / macs /
    events[k] (see the module docstring). scratch: at least N*N entries, for S. Integer-valued spikes make every
    sum exact in any order. Runs inside the time loop, so without reference counting (kernels.kernel)."""
    d, n, heads = ip[io], ip[io + 1], ip[io + 2]
    q0, k0, v0 = ip[io + 3], ip[io + 4], ip[io + 5]
    scale = fp[po]
    dh = d // heads
    s = scratch[:n * n]  # S[a, m] = s[a * n + m]
    ops = 0
    nonzero = 0
    binary = True
    for src in (q0, k0, v0):
        for i in range(src, src + d * n):
            v = buf[i]
            if v != 0:
                nonzero += 1
                if v != 1 and v != -1:
                    binary = False
    for h in range(heads):
        s[:] = 0
        for c in range(h * dh, (h + 1) * dh):  # S = Q_h K_h^T, driven by Q's spikes
            for a in range(n):
                qv = buf[q0 + c * n + a]
                if qv == 0:
                    continue
                for m in range(n):
                    kv = buf[k0 + c * n + m]
                    if kv != 0:
                        s[a * n + m] += qv * kv
                        ops += 1
        for c in range(h * dh, (h + 1) * dh):  # A = S V_h, driven by V's spikes
            row = out[c * n:(c + 1) * n]
            row[:] = 0
            for m in range(n):
                vv = buf[v0 + c * n + m]
                if vv == 0:
                    continue
                for a in range(n):
                    sv = s[a * n + m]
                    if sv != 0:
                        row[a] += sv * vv
                        ops += 1
            for a in range(n):
                row[a] = row[a] * scale
    if binary:
        sops[k] += ops
    else:
        macs[k] += ops
    events[k] += nonzero
