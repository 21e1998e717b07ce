"""Numba kernels: one function per node kind, and the per-sample time loop that dispatches on plan.kinds.

Kernels see only flat arrays (never NIR objects). All float arithmetic is in the plan's precision: every
operand comes from a typed array, and the constants 0 and 1 are read from fparams[0:2] so that no Python
literal promotes a float32 expression to float64. No fastmath: operation order is kept as written, because
exact spike parity with the producers depends on it.

Event-driven synapses: Affine / Linear / Conv / pooling walk over their input and do work only for non-zero
entries (spikes, or spike counts), adding that entry's weight column / kernel footprint scaled by its value;
a real-valued input (e.g. audio features) has (almost) no zeros and costs the same as a dense product.
Synaptic nodes are stateless, so when a node's input is exactly the previous step's (a static input presented
for many steps, silence) its output is the previous step's: no work, the same bits. An input given held (one row
for every step, run.run) is known to repeat without reading it again. Spiking nodes (and a sparse
Input node, for each new input, when an Affine reads it) also list the indices of their non-zero outputs
(increasing), and an Affine fed by one of them reads that list instead of scanning its whole input: counting,
the unchanged test and the sums then cost per event, not per input, in one pass.
The time loop counts, per node, input events, operations (SOPs / MACs, with the fan-out tables of
counters.py; counted whether or not work was skipped, as the definitions in neurostack/energy/workload.py
say), spikes and driven neurons. Loops run over slice views (buf[a:b]), not offset indices (buf[a + i]):
only the former vectorise. Listing, counting and comparing inputs test 8 entries per instruction (simd.py).
Time runs in blocks of steps, node by node (simulate_sample): the results are those of one step at a time.

Numba caches the compiled kernels (cache=True) and checks only this file for changes: after editing the
attention kernel (attention.py), the packed compares (simd.py) or the constants of plan.py, delete
neurostack/sim/__pycache__/*.nb[ic].

Parameter layouts (fp = fparams[fp_off[k]:], ip = iparams[ip_off[k]:]):
  affine    fp: bias (n_out), weight transposed (n_in, n_out) row-major  [Linear: zero bias]
  scale     fp: scale (n)
  conv      ip: C_in, H, W, C_out, OH, OW, KH, KW, stride_h, stride_w, pad_h, pad_w, dil_h, dil_w, groups
            fp: bias (C_out), weight (C_out, C_in/groups, KH, KW)            [Conv1d: H = KH = 1]
  sumpool   ip: C, H, W, OH, OW, KH, KW, stride_h, stride_w, pad_h, pad_w, average;  fp: window area
  threshold ip: inclusive;  fp: threshold (n)
  delay     ip: L, steps (n);  state: ring buffer (L, n);  y[t] = x[t - steps] (0 before the start)
  neuron    ip: flags F_* (plan.py);  fp: the N_NEURON_PARAMS arrays P_* of length n;  state: v (n)[, i (n)]
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange
from numba.cpython.unsafe.numbers import trailing_zeros

from neurostack.sim.attention import attention
from neurostack.sim.plan import K_ATTENTION
from neurostack.sim.plan import (
    F_CLEAR_NEW, F_INCLUSIVE, F_LATENCY, F_MULTI, F_NEXT_STEP, F_SPIKING, F_SUBTRACT, F_SYN, F_UPDATE,
    K_AFFINE, K_CONV, K_DELAY, K_INPUT, K_NEURON, K_SCALE, K_SUMPOOL, K_THRESHOLD, P_DECAY, P_GAIN, P_LEAK,
    P_RESET, P_SYN_DECAY, P_SYN_GAIN, P_THRESHOLD, P_V_INIT, S_DECAY_THEN_ADD, S_JUMP_THEN_DECAY, S_NONE,
    U_INC_LI, U_INC_LIF,
)
from neurostack.sim.simd import LANES, differ_bits8, nonfinite_bits8, nonzero_bits8, popcount

# The time loop and the node kernels take no part in reference counting (numba's `_nrt=False`): they allocate
# nothing (workspace() does, for them), and every slice view they take would otherwise cost an atomic increment and
# decrement of its array's count, 8-15 % of a sparse graph's time. run_serial / run_parallel hold the references.
kernel = njit(cache=True, _nrt=False)
# The small kernels that run once per node and step are inlined into the time loop (by numba, before typing): a call
# costs 20-30 ns, its array arguments passed as all their fields; 5 % of a sparse graph's time.
inlined_kernel = njit(cache=True, _nrt=False, inline="always")


# ---------------------------------------------------------------------------------------------- synapses
@kernel
def affine(x, n_in, n_out, fp, po, out):
    """out = b + sum over non-zero x_j of x_j * W[:, j] (bias first, then columns in input order), four columns per
    pass over `out` as in affine_events."""
    bias = fp[po:po + n_out]  # loops over slice views, not over offset indices, vectorise
    for i in range(n_out):
        out[i] = bias[i]
    w = fp[po + n_out:po + n_out + n_in * n_out].reshape((n_in, n_out))  # a 2-D view: the inner loop vectorises
    held = 0  # non-zero inputs waiting to be added: j0..j2
    j0 = j1 = j2 = 0
    for j in range(n_in):
        if x[j] == 0:
            continue
        if held == 0:
            j0 = j
        elif held == 1:
            j1 = j
        elif held == 2:
            j2 = j
        else:
            x0, x1, x2, x3 = x[j0], x[j1], x[j2], x[j]
            w0, w1, w2, w3 = w[j0], w[j1], w[j2], w[j]
            for i in range(n_out):
                out[i] = out[i] + x0 * w0[i] + x1 * w1[i] + x2 * w2[i] + x3 * w3[i]
            held = -1
        held += 1
    for q in range(held):
        jq = j0 if q == 0 else (j1 if q == 1 else j2)
        xq = x[jq]
        wq = w[jq]
        for i in range(n_out):
            out[i] += xq * wq[i]


@inlined_kernel
def affine_events(x, ev, n_ev, n_in, n_out, fp, po, fan, fan_all, binary, one, out):
    """affine() when the non-zero inputs are known: their indices ev[:n_ev], increasing (the same sums, in the
    same order, without reading the zeros), counted in the same call: each event j reaches fan[j] non-zero
    weights (fan_all for every j when it is >= 0). Returns (operations, whether every value was -1 or 1: then
    they are SOPs, else MACs); `binary`: the source only emits 0 and 1 (a single-spike neuron), so it is known.

    Four columns are added per pass over `out`, each output still summing them one after the other
    (((out + x0 w0) + x1 w1) + ...), so the bits are those of one column at a time, with a quarter of the loads
    and stores of `out`."""
    bias = fp[po:po + n_out]
    for i in range(n_out):
        out[i] = bias[i]
    w0 = po + n_out  # weight row j (input j's column of W): fp[w0 + j * n_out:w0 + (j + 1) * n_out]
    # passes over the events (gathers) that a dense layer fed by spikes skips
    ops = n_ev * fan_all
    if fan_all < 0:
        ops = 0
        for e in range(n_ev):
            ops += fan[ev[e]]
    other = 0  # values outside {-1, 1}
    if not binary:
        for e in range(n_ev):
            xj = x[ev[e]]
            other += (xj != one) & (xj != -one)
    e = 0
    while e + 4 <= n_ev:
        j0, j1, j2, j3 = ev[e], ev[e + 1], ev[e + 2], ev[e + 3]
        x0, x1, x2, x3 = x[j0], x[j1], x[j2], x[j3]
        r0 = fp[w0 + j0 * n_out:w0 + (j0 + 1) * n_out]
        r1 = fp[w0 + j1 * n_out:w0 + (j1 + 1) * n_out]
        r2 = fp[w0 + j2 * n_out:w0 + (j2 + 1) * n_out]
        r3 = fp[w0 + j3 * n_out:w0 + (j3 + 1) * n_out]
        for i in range(n_out):
            out[i] = out[i] + x0 * r0[i] + x1 * r1[i] + x2 * r2[i] + x3 * r3[i]
        e += 4
    while e < n_ev:
        j = ev[e]
        xj = x[j]
        row = fp[w0 + j * n_out:w0 + (j + 1) * n_out]
        for i in range(n_out):
            out[i] += xj * row[i]
        e += 1
    return ops, other == 0


@kernel
def scale(x, n, fp, po, out):
    """out = x * s elementwise."""
    s = fp[po:po + n]
    for i in range(n):
        out[i] = x[i] * s[i]


@kernel
def conv(x, ip, io, fp, po, out):
    """PyTorch Conv2d (cross-correlation), event-driven: each non-zero input scatters its kernel footprint.

    Output (co, oy, ox) reads input (ci, oy*sh - ph + ky*dh, ox*sw - pw + kx*dw), so input (c, y, x) reaches
    oy = (y + ph - ky*dh) / sh whenever that is a whole number inside the output.
    """
    c_in, h, w, c_out = ip[io], ip[io + 1], ip[io + 2], ip[io + 3]
    oh, ow, kh, kw = ip[io + 4], ip[io + 5], ip[io + 6], ip[io + 7]
    sh, sw, ph, pw = ip[io + 8], ip[io + 9], ip[io + 10], ip[io + 11]
    dh, dw, groups = ip[io + 12], ip[io + 13], ip[io + 14]
    cin_g = c_in // groups
    cout_g = c_out // groups
    plane = oh * ow
    for co in range(c_out):
        b = fp[po + co]
        o = out[co * plane:(co + 1) * plane]
        for p in range(plane):
            o[p] = b
    kernel = fp[po + c_out:po + c_out + c_out * cin_g * kh * kw].reshape((c_out, cin_g, kh, kw))
    o3 = out[:c_out * plane].reshape((c_out, oh, ow))
    for c in range(c_in):
        g = c // cin_g
        ci = c - g * cin_g
        for y in range(h):
            for xx in range(w):
                val = x[(c * h + y) * w + xx]
                if val == 0:
                    continue
                for ky in range(kh):
                    ny = y + ph - ky * dh
                    if ny < 0 or ny % sh != 0:
                        continue
                    oy = ny // sh
                    if oy >= oh:
                        continue
                    for kx in range(kw):
                        nx = xx + pw - kx * dw
                        if nx < 0 or nx % sw != 0:
                            continue
                        ox = nx // sw
                        if ox >= ow:
                            continue
                        for co in range(g * cout_g, (g + 1) * cout_g):
                            o3[co, oy, ox] += val * kernel[co, ci, ky, kx]


@kernel
def sumpool(x, ip, io, fp, po, zero, out):
    """SumPool2d (zero padding), event-driven; AvgPool2d divides the sums by the window area afterwards."""
    c_n, h, w, oh, ow = ip[io], ip[io + 1], ip[io + 2], ip[io + 3], ip[io + 4]
    kh, kw, sh, sw, ph, pw = ip[io + 5], ip[io + 6], ip[io + 7], ip[io + 8], ip[io + 9], ip[io + 10]
    average = ip[io + 11]
    plane = oh * ow
    for i in range(c_n * plane):
        out[i] = zero
    for c in range(c_n):
        for y in range(h):
            for xx in range(w):
                val = x[(c * h + y) * w + xx]
                if val == 0:
                    continue
                for ky in range(kh):
                    ny = y + ph - ky
                    if ny < 0 or ny % sh != 0:
                        continue
                    oy = ny // sh
                    if oy >= oh:
                        continue
                    for kx in range(kw):
                        nx = xx + pw - kx
                        if nx < 0 or nx % sw != 0:
                            continue
                        ox = nx // sw
                        if ox < ow:
                            out[c * plane + oy * ow + ox] += val
    if average:
        area = fp[po]
        for i in range(c_n * plane):
            out[i] = out[i] / area


# ---------------------------------------------------------------------------------------------- neurons
@kernel
def n_spikes(v, th, inclusive, multi, zero, one):
    """Spikes a membrane at `v` emits: 0, 1, or floor(v/th) (multi-spike) once over threshold."""
    over = v >= th if inclusive else v > th
    if not over:
        return zero
    if multi:
        return np.floor(v / th)
    return one


@inlined_kernel
def lif_euler(x, n, fp, po, state, so, subtract, inclusive, zero, one, out):
    """The common case of `neuron`, on its own loop: LIF with the increment form, no synaptic current, reset in
    the same step, at most one spike. The same operations in the same order as the general path. Counts nothing:
    summing the spikes and driven neurons inside this loop (bool -> int64 reductions) cost more than the update
    itself; list_counted and count_nonzero count afterwards, in passes that vectorise."""
    a = fp[po + P_DECAY * n:po + (P_DECAY + 1) * n]
    g = fp[po + P_GAIN * n:po + (P_GAIN + 1) * n]
    c = fp[po + P_LEAK * n:po + (P_LEAK + 1) * n]
    th = fp[po + P_THRESHOLD * n:po + (P_THRESHOLD + 1) * n]
    v_reset = fp[po + P_RESET * n:po + (P_RESET + 1) * n]
    v = state[so:so + n]
    for k in range(n):  # written with selects, not branches, so that the loop vectorises
        vk = v[k]
        xk = x[k]
        v_new = vk + a[k] * ((g[k] * xk + c[k]) - vk)
        over = v_new >= th[k] if inclusive else v_new > th[k]
        v_after = v_new - th[k] if subtract else v_reset[k]
        out[k] = one if over else zero
        v[k] = v_after if over else v_new


@inlined_kernel
def li_euler(x, n, fp, po, state, so, out):
    """The LI readout's case of `neuron` on its own loop (increment form, no synaptic current): the same
    operations in the same order as the general path; writes the new voltage to `out`."""
    d = fp[po + P_DECAY * n:po + (P_DECAY + 1) * n]
    g = fp[po + P_GAIN * n:po + (P_GAIN + 1) * n]
    c = fp[po + P_LEAK * n:po + (P_LEAK + 1) * n]
    v = state[so:so + n]
    for k in range(n):
        vk = v[k]
        v_new = vk + d[k] * ((c[k] - vk) + g[k] * x[k])
        v[k] = v_new
        out[k] = v_new


@inlined_kernel
def count_nonzero(x, n, zero):
    """How many of x[:n] are non-zero: float32 through the packed compare of simd.py (twice as fast as a loop that
    sums the tests, which compiles to 64-bit lanes); float64 in that loop, which is as fast as it gets there."""
    count = 0
    vec = 0
    if x.itemsize == 4:  # a constant for each compiled dtype
        vec = n - n % LANES
        bits = np.uint64(0)
        for b0 in range(0, vec, LANES):
            bits += popcount(nonzero_bits8(x, b0))
        count = np.int64(bits)
    for j in range(vec, n):
        count += x[j] != zero
    return count


@inlined_kernel
def list_counted(x, n, zero, ev):
    """Write the indices of the non-zero entries of x[:n] to ev, in increasing order, and return their number (the
    count of spikes a neuron loop leaves to this pass). Tests 64 entries at a time into a 64-bit mask (8 packed
    compares, simd.py) and visits only its set bits (trailing-zero count, then clear the lowest bit)."""
    listed = 0
    full = n - n % 64
    for b0 in range(0, full, 64):
        mask = np.uint64(0)
        for q in range(0, 64, LANES):
            mask |= nonzero_bits8(x, b0 + q) << np.uint64(q)
        while mask:
            ev[listed] = b0 + trailing_zeros(mask)
            listed += 1
            mask &= mask - np.uint64(1)
    vec = n - n % LANES
    for b0 in range(full, vec, LANES):
        mask = nonzero_bits8(x, b0)
        while mask:
            ev[listed] = b0 + trailing_zeros(mask)
            listed += 1
            mask &= mask - np.uint64(1)
    for k in range(vec, n):  # fewer than 8 left: one pass without a branch (see list_nonzero)
        ev[listed] = k
        listed += x[k] != zero
    return listed


@kernel
def list_nonzero(x, n, zero, ev, count):
    """Write the indices of the `count` non-zero entries of x[:n] (their number, known beforehand: count_nonzero,
    a threshold's spikes) to ev, in increasing order; returns count.

    Sparse (at most one entry in 4 non-zero): list_counted, which tests each block of 64 entries at once into a
    64-bit mask and visits only its set bits. Denser: one pass without a branch per entry (each index is stored,
    and the count advances on a non-zero, so a store never goes past the entry's own index). Both about twice as
    fast as a plain loop with a branch, which mispredicts at every spike, in their range."""
    if count * 4 <= n:
        return list_counted(x, n, zero, ev)
    listed = 0
    for k in range(n):
        ev[listed] = k
        listed += x[k] != zero
    return count


@inlined_kernel
def neuron(x, n, ip, io, fp, po, state, so, zero, one, out, ev):
    """One step of LIF / CubaLIF / LI / CubaLI / IF / I for n neurons (forms documented in plan.py).

    Per neuron: (1) synaptic current u seen by the membrane (CubaLIF/CubaLI; else u = x);
    (2) with next-step reset timing, the spike decided on the previous membrane (snnTorch's reset signal,
    Spyx's emitted spike); (3) membrane update; (4) threshold and reset.
    Writes spikes (spiking neurons) or the new voltage (LI, CubaLI, I) to `out`. Returns (spikes emitted,
    neurons that emitted, neurons with a non-zero input), with the indices of the neurons that emitted in
    ev[:emitters] (increasing); emitters is -1 for LI, CubaLI and I, whose output is a voltage, not events.
    """
    update, syn, spiking = ip[io + F_UPDATE], ip[io + F_SYN], ip[io + F_SPIKING]
    subtract, next_step, inclusive = ip[io + F_SUBTRACT], ip[io + F_NEXT_STEP], ip[io + F_INCLUSIVE]
    multi, latency, clear_new = ip[io + F_MULTI], ip[io + F_LATENCY], ip[io + F_CLEAR_NEW]
    if update == U_INC_LIF and syn == S_NONE and spiking and not (next_step or latency or multi):
        lif_euler(x, n, fp, po, state, so, subtract, inclusive, zero, one, out)
        count = list_counted(out, n, zero, ev)
        return count, count, count_nonzero(x, n, zero)
    if update == U_INC_LI and syn == S_NONE and not spiking:
        li_euler(x, n, fp, po, state, so, out)
        return 0, -1, count_nonzero(x, n, zero)
    spikes = 0
    emitters = 0 if spiking else -1  # LI, CubaLI and I output voltages: no event list
    driven = 0
    vs = state[so:so + n]  # slice views, not offset indices: the loads vectorise
    syn_state = state[so + n:so + 2 * n] if syn != S_NONE else state[so:so]
    gs_all = fp[po + P_SYN_GAIN * n:po + (P_SYN_GAIN + 1) * n]
    ds_all = fp[po + P_SYN_DECAY * n:po + (P_SYN_DECAY + 1) * n]
    d_all = fp[po + P_DECAY * n:po + (P_DECAY + 1) * n]
    g_all = fp[po + P_GAIN * n:po + (P_GAIN + 1) * n]
    c_all = fp[po + P_LEAK * n:po + (P_LEAK + 1) * n]
    th_all = fp[po + P_THRESHOLD * n:po + (P_THRESHOLD + 1) * n]
    reset_all = fp[po + P_RESET * n:po + (P_RESET + 1) * n]
    for k in range(n):
        v = vs[k]
        driven += x[k] != zero
        # (1) synaptic current
        if syn == S_NONE:
            u = x[k]
        else:
            i_syn = syn_state[k]
            gs = gs_all[k]
            ds = ds_all[k]
            if syn == S_JUMP_THEN_DECAY:
                u = i_syn + gs * x[k]
                syn_state[k] = u - ds * u
            elif syn == S_DECAY_THEN_ADD:
                u = ds * i_syn + gs * x[k]
                syn_state[k] = u
            else:  # S_ADD_THEN_DECAY
                u = (i_syn + gs * x[k]) * ds
                syn_state[k] = u
        d = d_all[k]
        g = g_all[k]
        c = c_all[k]
        th = th_all[k]
        v_reset = reset_all[k]
        # (2) reset decided on the previous step's membrane
        n_prev = zero
        if spiking and (next_step or latency):
            n_prev = n_spikes(v, th, inclusive, multi, zero, one)
            if next_step and n_prev > zero and not subtract and not clear_new:
                v = v_reset  # snnTorch Leaky zero reset: clear the old membrane, keep this step's input
        # (3) membrane update
        if update == U_INC_LIF:
            v_new = v + d * ((g * u + c) - v)
        elif update == U_INC_LI:
            v_new = v + d * ((c - v) + g * u)
        else:  # U_PRODUCT
            v_new = d * v + g * u + c
        # (4) threshold and reset
        if not spiking:
            vs[k] = v_new
            out[k] = v_new
            continue
        if next_step:
            if n_prev > zero:
                if subtract:
                    v_new = v_new - n_prev * th
                elif clear_new:
                    v_new = v_reset  # snnTorch Synaptic / RLeaky zero reset: the whole new membrane is cleared
            n_now = n_spikes(v_new, th, inclusive, multi, zero, one)
        else:
            n_now = n_spikes(v_new, th, inclusive, multi, zero, one)
            if n_now > zero:
                if subtract:
                    v_new = v_new - n_now * th
                else:
                    v_new = v_reset
        vs[k] = v_new
        emitted = n_prev if latency else n_now
        out[k] = emitted
        spikes += np.int64(emitted)
        if emitted != zero:
            ev[emitters] = k
            emitters += 1
    return spikes, emitters, driven


@kernel
def neuron_init(n, ip, io, fp, po, state, so, zero):
    """Initial state: v = P_V_INIT, synaptic current 0."""
    v = state[so:so + n]
    v_init = fp[po + P_V_INIT * n:po + (P_V_INIT + 1) * n]
    for k in range(n):
        v[k] = v_init[k]
    if ip[io + F_SYN] != S_NONE:
        i_syn = state[so + n:so + 2 * n]
        for k in range(n):
            i_syn[k] = zero


@kernel
def threshold(x, n, ip, io, fp, po, zero, one, out, ev):
    """Heaviside: out = 1 where x > threshold (>= when inclusive); the indices of the ones go to ev[:spikes]."""
    inclusive = ip[io]
    th = fp[po:po + n]
    spikes = 0
    for k in range(n):
        over = x[k] >= th[k] if inclusive else x[k] > th[k]
        out[k] = one if over else zero
        spikes += over
    list_nonzero(out, n, zero, ev, spikes)
    return spikes


@kernel
def delay(x, n, t, ip, io, state, so, zero, out):
    """y[t] = x[t - steps] per element (zeros before the start), through a ring buffer of L >= steps+1 rows."""
    ring = ip[io]
    row = t % ring
    for k in range(n):
        state[so + row * n + k] = x[k]
    for k in range(n):
        s = ip[io + 1 + k]
        if t >= s:
            out[k] = state[so + ((t - s) % ring) * n + k]
        else:
            out[k] = zero
    return 0


# ---------------------------------------------------------------------------------------------- counting
@kernel
def unchanged(x, m, last, c0):
    """Whether a synaptic node's input x (m,) equals its previous step's, last[c0:c0 + m].

    Compared 8 entries at a time (simd.py) in blocks of 256, stopping at the first block that differs."""
    vec = m - m % LANES
    for b0 in range(0, vec, 256):
        differ = np.uint64(0)
        for j in range(b0, min(b0 + 256, vec), LANES):
            differ |= differ_bits8(x, j, last, c0 + j)
        if differ:
            return False
    for j in range(vec, m):
        if x[j] != last[c0 + j]:
            return False
    return True


@kernel
def scan_input(x, m, fanout, c0, last, zero, one):
    """Count a synaptic node's input x (m,) this step, and keep it in last[c0:c0 + m] for the next step.

    Each non-zero value reaches fanout[c0 + j] non-zero weights: those operations are SOPs when every value is
    in {-1, 0, 1}, else MACs (as NeuroBench decides). Returns (non-zero values, operations, all binary)."""
    ops = 0
    nonzero = 0
    other = 0  # values outside {-1, 0, 1}
    fan = fanout[c0:c0 + m]
    prev = last[c0:c0 + m]
    for j in range(m):  # branch-free, so that the loop vectorises
        v = x[j]
        prev[j] = v
        hit = v != zero
        nonzero += hit
        ops += fan[j] if hit else 0
        other += (v != one) & (v != -one) & hit
    return nonzero, ops, other == 0


@inlined_kernel
def unchanged_events(x, ev, n_ev, last_ev, last_val, c0, last_n):
    """Whether an input whose non-zero entries are x[ev[:n_ev]] equals the previous step's, kept as its list:
    last_n entries, indices last_ev[c0:] and values last_val[c0:] (see keep_events)."""
    if n_ev != last_n:
        return False
    prev_ev = last_ev[c0:c0 + n_ev]
    prev_val = last_val[c0:c0 + n_ev]
    for e in range(n_ev):
        j = ev[e]
        if j != prev_ev[e] or x[j] != prev_val[e]:
            return False
    return True


@inlined_kernel
def keep_events(x, ev, n_ev, last_ev, last_val, c0):
    """Keep this step's input events (indices and values) in last_ev[c0:], last_val[c0:] for unchanged_events."""
    prev_ev = last_ev[c0:c0 + n_ev]
    prev_val = last_val[c0:c0 + n_ev]
    for e in range(n_ev):
        j = ev[e]
        prev_ev[e] = j
        prev_val[e] = x[j]


# ---------------------------------------------------------------------------------------------- time loop
@kernel
def all_finite(x, n):
    """Whether x[:n] holds no NaN and no infinity (8 entries at a time, simd.py)."""
    vec = n - n % LANES
    bad = np.uint64(0)
    for b0 in range(0, vec, LANES):
        bad |= nonfinite_bits8(x, b0)
    for i in range(vec, n):
        d = x[i] - x[i]  # 0 for a finite value, NaN for NaN and +-inf
        if d != d:
            return False
    return bad == 0


@kernel
def simulate_sample(x, steps, block, kinds, out_off, out_len, in_len, src_ptr, src_node, src_prev, fp_off, ip_off,
                    st_off, st_len, fparams, iparams, prev_nodes,
                    rec_node, rec_off, rec, vrec_node, vrec_src, vrec_off, vrec,
                    cnt_off, fanout, fan_uniform, counts, status, work):
    """Run one sample of `steps` steps through the plan: its input x (T, n_input), or x (1, n_input) held for every
    step (a held input: the Input node knows without reading that it repeats); record node outputs into rec (T, R)
    and voltages into vrec (T, V). counts (5, T', n_nodes), T' = T or 1 (not per step): operations of synaptic
    nodes as SOPs and as MACs (fan-outs from counters.pack_fanout), their non-zero inputs (events), spikes emitted,
    and neurons driven by input. `work`: the arrays of workspace(), set up here for this sample.
    status[0]: 0, or 1 + the step at which the input held a NaN or an infinity (the sample stops there).

    Time runs in blocks of `block` steps: each node in turn does its steps of the block (node-major) before the
    next node, so that its parameters, state and weights stay in cache, and every node's output has a row per
    step of the block (buf (block, total_out)). A node only ever reads outputs of nodes before it at the same
    step, so the order of steps within a node, and every result, are those of one step at a time; a graph with
    back edges (reading the previous step of a later node) runs with block = 1. The Input node's output is the
    input row x[t] itself."""
    zero = fparams[0]
    one = fparams[1]
    sops, macs, events, spikes, driven = counts[0], counts[1], counts[2], counts[3], counts[4]
    n_nodes = kinds.shape[0]
    rows = block
    (buf, prev, state, scratch, last_in, last_ev, last_nonzero, last_ops, last_binary, ev, n_ev, input_same,
     vrec_of, binary_source) = work
    # buf: every row is written before it is read; prev: outputs read by back edges: the previous step's (rows == 1)
    prev[:] = zero
    state[:] = zero
    scratch[:] = zero
    # each synaptic node's previous input (fan-out layout): dense, or as the list of its events (values in last_in,
    # indices in last_ev) for an Affine reading an event list; written at step 0 (never skipped), read after
    # each synaptic node's counts of its previous step, repeated while its input does not change
    last_nonzero[:] = 0
    last_ops[:] = 0
    last_binary[:] = False
    # events: per step of the block, the indices of the non-zero outputs of spiking nodes (same layout as buf)
    # and their number per node (-1: no list: LI voltages, an input no Affine has listed; -2: a dense input, not
    # listed)
    n_ev[:, :] = -1
    input_same[:] = False  # per step of the block: the input row equals the previous step's
    vrec_of[:] = -1  # node -> its entry in vrec_node
    for q in range(vrec_node.shape[0]):
        vrec_of[vrec_node[q]] = q
    # per node: its one source emits only 0 and 1 (a single-spike neuron, a threshold), so its events are SOPs
    binary_source[:] = False
    for k in range(n_nodes):
        if src_ptr[k + 1] - src_ptr[k] == 1:
            j = src_node[src_ptr[k]]
            if kinds[j] == K_THRESHOLD:
                binary_source[k] = True
            elif kinds[j] == K_NEURON:  # (only a neuron has these flags)
                binary_source[k] = iparams[ip_off[j] + F_SPIKING] != 0 and iparams[ip_off[j] + F_MULTI] == 0
    for k in range(n_nodes):
        if kinds[k] == K_NEURON:
            neuron_init(out_len[k], iparams, ip_off[k], fparams, fp_off[k], state, st_off[k], zero)

    per_step = sops.shape[0] > 1
    held = x.shape[0] < steps  # one input row for every step
    for t0 in range(0, steps, rows):
        nb = min(rows, steps - t0)
        for k in range(n_nodes):
            kind = kinds[k]
            o0 = out_off[k]
            n = out_len[k]
            if kind == K_INPUT:
                for r in range(nb):
                    t = t0 + r
                    # a static input (an image view presented for many steps) is checked once
                    input_same[r] = t > 0 and (held or unchanged(x[t], n, x[t - 1], 0))
                    if not input_same[r] and not all_finite(x[0 if held else t], n):
                        status[0] = t + 1  # run() reports the sample and step; the rest of the sample is moot
                        return
                    n_ev[r, k] = -1  # listed by the first Affine that reads it (none may: a Conv scans it itself)
                continue
            # the node's input: one source read in place, else the sum of all its sources in file order
            e0 = src_ptr[k]
            e1 = src_ptr[k + 1]
            m = in_len[k]
            single = e1 - e0 == 1 and src_prev[e0] == 0  # one source, read at this step
            src = src_node[e0] if single else -1
            # fed by the Input node alone: the Input node has compared it with the previous step
            from_input = single and kinds[src] == K_INPUT
            po = fp_off[k]
            io = ip_off[k]
            c0 = cnt_off[k]
            for r in range(nb):
                t = t0 + r
                tc = t if per_step else 0
                out = buf[r, o0:o0 + n]
                if from_input:
                    xin = x[0 if held else t]
                elif single:
                    xin = buf[r, out_off[src]:out_off[src] + m]
                else:
                    xin = scratch[:m]
                    for i in range(m):
                        xin[i] = zero
                    for e in range(e0, e1):
                        j = src_node[e]
                        s0 = out_off[j]
                        if src_prev[e] == 1:
                            part = prev[s0:s0 + m]
                        elif kinds[j] == K_INPUT:
                            part = x[0 if held else t]
                        else:
                            part = buf[r, s0:s0 + m]
                        for i in range(m):
                            xin[i] += part[i]
                # an Affine fed by one spiking node (or the Input) reads its event list instead of scanning its input
                src_ev = -1
                ev_in = ev[r, :0]
                if kind == K_AFFINE and single:
                    ev_in = ev[r, out_off[src]:out_off[src] + m]
                    if from_input and not input_same[r] and n_ev[r, src] == -1:
                        nonzero = count_nonzero(xin, m, zero)
                        # a sparse input (spikes) is listed; a dense one (features) is read in place (-2)
                        n_ev[r, src] = list_nonzero(xin, m, zero, ev_in, nonzero) if nonzero * 4 <= m else -2
                    src_ev = n_ev[r, src]
                if c0 >= 0:  # a synaptic node (stateless): count, then skip the work if nothing changed
                    if src_ev >= 0:  # an Affine reading an event list: summed and counted in one pass
                        if from_input:
                            same = input_same[r]
                        else:
                            same = t > 0 and unchanged_events(xin, ev_in, src_ev, last_ev, last_in, c0,
                                                              last_nonzero[k])
                        if not same:
                            last_ops[k], last_binary[k] = affine_events(xin, ev_in, src_ev, m, n, fparams, po,
                                                                        fanout[c0:c0 + m], fan_uniform[k],
                                                                        binary_source[k], one, out)
                            last_nonzero[k] = src_ev
                            if not from_input:  # (the Input node tests its own repeats)
                                keep_events(xin, ev_in, src_ev, last_ev, last_in, c0)
                    else:
                        same = input_same[r] if from_input else (t > 0 and unchanged(xin, m, last_in, c0))
                        if not same:
                            last_nonzero[k], last_ops[k], last_binary[k] = scan_input(xin, m, fanout, c0, last_in,
                                                                                      zero, one)
                    events[tc, k] += last_nonzero[k]
                    if last_binary[k]:
                        sops[tc, k] += last_ops[k]
                    else:
                        macs[tc, k] += last_ops[k]
                    if same:  # the output is the previous step's: in the row before (the last row of the last block)
                        before = buf[r - 1 if r > 0 else rows - 1, o0:o0 + n]
                        if rows > 1:
                            for i in range(n):
                                out[i] = before[i]
                        continue
                    if src_ev >= 0:
                        continue  # summed above
                if kind == K_NEURON:
                    emitted, n_ev[r, k], n_driven = neuron(xin, n, iparams, io, fparams, po, state, st_off[k], zero,
                                                           one, out, ev[r, o0:o0 + n])
                    spikes[tc, k] += emitted
                    driven[tc, k] += n_driven
                    q = vrec_of[k]
                    if q >= 0:  # the membrane after this step
                        dst, vsrc = vrec[t, vrec_off[q]:vrec_off[q] + n], state[vrec_src[q]:vrec_src[q] + n]
                        for i in range(n):
                            dst[i] = vsrc[i]
                elif kind == K_AFFINE:
                    affine(xin, m, n, fparams, po, out)
                elif kind == K_CONV:
                    conv(xin, iparams, io, fparams, po, out)
                elif kind == K_SUMPOOL:
                    sumpool(xin, iparams, io, fparams, po, zero, out)
                elif kind == K_SCALE:
                    scale(xin, n, fparams, po, out)
                elif kind == K_THRESHOLD:
                    n_ev[r, k] = threshold(xin, n, iparams, io, fparams, po, zero, one, out, ev[r, o0:o0 + n])
                    spikes[tc, k] += n_ev[r, k]
                elif kind == K_DELAY:
                    delay(xin, n, t, iparams, io, state, st_off[k], zero, out)
                elif kind == K_ATTENTION:  # extension node: reads its Q, K, V sources from its row of buf
                    attention(buf[r], iparams, io, fparams, po, out, scratch, sops[tc], macs[tc], events[tc], k)
                else:  # K_OUTPUT, K_IDENTITY, K_FLATTEN: pass the input through
                    for i in range(n):
                        out[i] = xin[i]
        for r in range(nb):
            t = t0 + r
            # outputs read by back edges at the next step (rows == 1; copies between slice views vectorise)
            for q in range(prev_nodes.shape[0]):
                j = prev_nodes[q]
                s0, n = out_off[j], out_len[j]
                dst, src_out = prev[s0:s0 + n], buf[r, s0:s0 + n]
                for i in range(n):
                    dst[i] = src_out[i]
            for q in range(rec_node.shape[0]):
                j = rec_node[q]
                s0, n, r0 = out_off[j], out_len[j], rec_off[q]
                dst = rec[t, r0:r0 + n]
                src_out = x[0 if held else t] if kinds[j] == K_INPUT else buf[r, s0:s0 + n]
                for i in range(n):
                    dst[i] = src_out[i]


@njit(cache=True)
def workspace(block, n_nodes, total_out, total_state, scratch_len, n_fanout, fparams):
    """The arrays simulate_sample works in (it sets them up for each sample; allocated here, outside it, because it
    runs without reference counting): buf (block, total_out), prev (total_out,), state (total_state,),
    scratch (scratch_len,), last_in (n_fanout,), last_ev (n_fanout,), last_nonzero, last_ops, last_binary
    (n_nodes,), ev (block, total_out), n_ev (block, n_nodes), input_same (block,), vrec_of, binary_source
    (n_nodes,)."""
    dtype = fparams.dtype
    return (np.empty((block, total_out), dtype), np.empty(total_out, dtype), np.empty(total_state, dtype),
            np.empty(max(scratch_len, 1), dtype), np.empty(n_fanout, dtype), np.empty(n_fanout, np.int64),
            np.empty(n_nodes, np.int64), np.empty(n_nodes, np.int64), np.empty(n_nodes, np.bool_),
            np.empty((block, total_out), np.int64), np.empty((block, n_nodes), np.int64), np.empty(block, np.bool_),
            np.empty(n_nodes, np.int64), np.empty(n_nodes, np.bool_))


@njit(cache=True, parallel=True)
def run_parallel(inputs, steps, block, kinds, out_off, out_len, in_len, src_ptr, src_node, src_prev, fp_off, ip_off,
                 st_off, st_len, fparams, iparams, prev_nodes, total_out, total_state, scratch_len,
                 rec_node, rec_off, rec, vrec_node, vrec_src, vrec_off, vrec,
                 cnt_off, fanout, fan_uniform, counts, status):
    """simulate_sample for every sample of inputs (N, T, n_input), or (N, 1, n_input) held for `steps`, samples
    spread over numba's threads.
    Returns the first sample whose input held a NaN or an infinity (its status[s, 0] says the step), or -1."""
    for s in prange(inputs.shape[0]):
        simulate_sample(inputs[s], steps, block, kinds, out_off, out_len, in_len, src_ptr, src_node, src_prev, fp_off,
                        ip_off, st_off, st_len, fparams, iparams, prev_nodes,
                        rec_node, rec_off, rec[s], vrec_node, vrec_src, vrec_off, vrec[s],
                        cnt_off, fanout, fan_uniform, counts[s], status[s],
                        workspace(block, kinds.shape[0], total_out, total_state, scratch_len, fanout.shape[0], fparams))
    return first_failed(status)


@njit(cache=True)
def run_serial(inputs, steps, block, kinds, out_off, out_len, in_len, src_ptr, src_node, src_prev, fp_off, ip_off,
               st_off, st_len, fparams, iparams, prev_nodes, total_out, total_state, scratch_len,
               rec_node, rec_off, rec, vrec_node, vrec_src, vrec_off, vrec,
               cnt_off, fanout, fan_uniform, counts, status):
    """run_parallel on the calling thread: streaming one sample, or when asked not to run in parallel (starting
    the thread pool costs more than a short sample)."""
    work = workspace(block, kinds.shape[0], total_out, total_state, scratch_len, fanout.shape[0], fparams)
    for s in range(inputs.shape[0]):
        simulate_sample(inputs[s], steps, block, kinds, out_off, out_len, in_len, src_ptr, src_node, src_prev, fp_off,
                        ip_off, st_off, st_len, fparams, iparams, prev_nodes,
                        rec_node, rec_off, rec[s], vrec_node, vrec_src, vrec_off, vrec[s],
                        cnt_off, fanout, fan_uniform, counts[s], status[s], work)
    return first_failed(status)


@njit(cache=True)
def first_failed(status):
    """The first sample with a non-zero status[s, 0], or -1."""
    for s in range(status.shape[0]):
        if status[s, 0] != 0:
            return s
    return -1
