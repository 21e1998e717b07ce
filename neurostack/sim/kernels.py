"""Numba kernels: one function per node kind, and the per-sample time loop that dispatches on plan.kinds.

Kernels see only flat arrays (never NIR objects). All float arithmetic is in the plan's precision: every
operand comes from a typed array, and the constants 0 and 1 are read from fparams[0:2] so that no Python
literal promotes a float32 expression to float64. No fastmath: operation order is kept as written, because
exact spike parity with the producers depends on it.

Event-driven synapses: Affine / Linear / Conv / pooling walk over their input and do work only for non-zero
entries (spikes, or spike counts), adding that entry's weight column / kernel footprint scaled by its value;
a real-valued input (e.g. audio features) has (almost) no zeros and costs the same as a dense product.
Synaptic nodes are stateless, so when a node's input is exactly the previous step's (a static input presented
for many steps, silence) its output is left as it was: no work, the same bits. Spiking nodes (and the Input
node, for each new input, when an Affine reads it) also list the indices of their non-zero outputs
(increasing), and an Affine fed by one of them reads that list instead of scanning its whole input: counting,
the unchanged test and the sums then cost per event, not per input.
The time loop counts, per node, input events, operations (SOPs / MACs, with the fan-out tables of
counters.py; counted whether or not work was skipped, as the definitions in neurostack/energy/workload.py
say), spikes and driven neurons. Loops run over slice views (buf[a:b]), not offset indices (buf[a + i]):
only the former vectorise.

Numba caches the compiled kernels (cache=True) and checks only this file for changes: after editing the
attention kernel (attention.py) or the constants of plan.py, delete neurostack/sim/__pycache__/*.nb[ic].

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

from neurostack.sim.attention import attention
from neurostack.sim.plan import K_ATTENTION
from neurostack.sim.plan import (
    F_CLEAR_NEW, F_INCLUSIVE, F_LATENCY, F_MULTI, F_NEXT_STEP, F_SPIKING, F_SUBTRACT, F_SYN, F_UPDATE,
    K_AFFINE, K_CONV, K_DELAY, K_INPUT, K_NEURON, K_SCALE, K_SUMPOOL, K_THRESHOLD, P_DECAY, P_GAIN, P_LEAK,
    P_RESET, P_SYN_DECAY, P_SYN_GAIN, P_THRESHOLD, P_V_INIT, S_DECAY_THEN_ADD, S_JUMP_THEN_DECAY, S_NONE,
    U_INC_LI, U_INC_LIF,
)


# ---------------------------------------------------------------------------------------------- synapses
@njit(cache=True)
def affine(x, n_in, n_out, fp, po, out):
    """out = b + sum over non-zero x_j of x_j * W[:, j] (bias first, then columns in input order)."""
    bias = fp[po:po + n_out]  # loops over slice views, not over offset indices, vectorise
    for i in range(n_out):
        out[i] = bias[i]
    w = fp[po + n_out:po + n_out + n_in * n_out].reshape((n_in, n_out))  # a 2-D view: the inner loop vectorises
    for j in range(n_in):
        xj = x[j]
        if xj != 0:
            for i in range(n_out):
                out[i] += xj * w[j, i]


@njit(cache=True)
def affine_events(x, ev, n_ev, n_in, n_out, fp, po, out):
    """affine() when the non-zero inputs are known: their indices ev[:n_ev], increasing (the same sums, in the
    same order, without reading the zeros)."""
    bias = fp[po:po + n_out]
    for i in range(n_out):
        out[i] = bias[i]
    w = fp[po + n_out:po + n_out + n_in * n_out].reshape((n_in, n_out))
    for e in range(n_ev):
        j = ev[e]
        xj = x[j]
        for i in range(n_out):
            out[i] += xj * w[j, i]


@njit(cache=True)
def scale(x, n, fp, po, out):
    """out = x * s elementwise."""
    s = fp[po:po + n]
    for i in range(n):
        out[i] = x[i] * s[i]


@njit(cache=True)
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


@njit(cache=True)
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
@njit(cache=True)
def n_spikes(v, th, inclusive, multi, zero, one):
    """Spikes a membrane at `v` emits: 0, 1, or floor(v/th) (multi-spike) once over threshold."""
    over = v >= th if inclusive else v > th
    if not over:
        return zero
    if multi:
        return np.floor(v / th)
    return one


@njit(cache=True)
def lif_euler(x, n, fp, po, state, so, subtract, inclusive, zero, one, out):
    """The common case of `neuron`, on its own loop: LIF with the increment form, no synaptic current, reset in
    the same step, at most one spike. The same operations in the same order as the general path.
    Returns (spikes, neurons with a non-zero input)."""
    a = fp[po + P_DECAY * n:po + (P_DECAY + 1) * n]
    g = fp[po + P_GAIN * n:po + (P_GAIN + 1) * n]
    c = fp[po + P_LEAK * n:po + (P_LEAK + 1) * n]
    th = fp[po + P_THRESHOLD * n:po + (P_THRESHOLD + 1) * n]
    v_reset = fp[po + P_RESET * n:po + (P_RESET + 1) * n]
    v = state[so:so + n]
    spikes = 0
    driven = 0
    for k in range(n):  # written with selects, not branches, so that the loop vectorises
        vk = v[k]
        xk = x[k]
        driven += xk != zero
        v_new = vk + a[k] * ((g[k] * xk + c[k]) - vk)
        over = v_new >= th[k] if inclusive else v_new > th[k]
        v_after = v_new - th[k] if subtract else v_reset[k]
        out[k] = one if over else zero
        v[k] = v_after if over else v_new
        spikes += over
    return spikes, driven


@njit(cache=True)
def list_nonzero(x, n, zero, ev, most):
    """Write the indices of the non-zero entries of x[:n] to ev, in increasing order, stopping after `most`
    (when their number is known, e.g. a neuron's spikes); returns how many. (A pass of its own: a store at a
    moving index inside the neuron loop would stop that loop vectorising.)

    Sparse input is the common case, and a branch per entry mispredicts at every spike: blocks of 64 entries,
    then of 8, are tested at once (loops that vectorise), and only an 8-block holding a non-zero entry is
    listed, without a branch (each index is stored; the count advances on a non-zero, so a store never goes
    past the entry's own index). About twice as fast as a plain loop at 1-30 % non-zero."""
    count = 0
    full = n - n % 64
    for b0 in range(0, full, 64):
        if count >= most:
            break
        block = x[b0:b0 + 64]
        hit = 0
        for j in range(64):
            hit |= block[j] != zero
        if not hit:
            continue
        for s0 in range(0, 64, 8):
            part = block[s0:s0 + 8]
            hit = 0
            for j in range(8):
                hit |= part[j] != zero
            if hit:
                for j in range(8):
                    ev[count] = b0 + s0 + j
                    count += part[j] != zero
    for k in range(full, n):
        if x[k] != zero:
            ev[count] = k
            count += 1
    return min(count, most)


@njit(cache=True)
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
        count, driven = lif_euler(x, n, fp, po, state, so, subtract, inclusive, zero, one, out)
        return count, list_nonzero(out, n, zero, ev, count), driven
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


@njit(cache=True)
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


@njit(cache=True)
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


@njit(cache=True)
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
@njit(cache=True)
def unchanged(x, m, last, c0):
    """Whether a synaptic node's input x (m,) equals its previous step's, last[c0:c0 + m].

    Compared in blocks without a branch inside (the loop vectorises), stopping at the first block that differs."""
    prev = last[c0:c0 + m]
    for b0 in range(0, m, 256):
        differ = 0
        for j in range(b0, min(b0 + 256, m)):
            differ |= x[j] != prev[j]
        if differ:
            return False
    return True


@njit(cache=True)
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


@njit(cache=True)
def unchanged_events(x, ev, n_ev, last, c0, last_n):
    """unchanged() for an input whose non-zero entries are x[ev[:n_ev]], against last (dense, the previous
    input) holding last_n non-zero entries: the same count, and every non-zero entry the same as before."""
    if n_ev != last_n:
        return False
    prev = last[c0:]
    for e in range(n_ev):
        if x[ev[e]] != prev[ev[e]]:
            return False
    return True


@njit(cache=True)
def scan_events(x, ev, n_ev, fanout, c0, last, last_ev, last_n, zero, one):
    """scan_input() for an input whose non-zero entries are x[ev[:n_ev]]: counted from the events alone.

    last[c0:] (the dense previous input) is kept up to date by clearing the previous step's last_n events,
    last_ev[c0:c0 + last_n], and writing this step's, whose indices then replace them in last_ev.
    Returns (non-zero values, operations, all binary)."""
    prev = last[c0:]
    prev_ev = last_ev[c0:]
    fan = fanout[c0:]
    for e in range(last_n):
        prev[prev_ev[e]] = zero
    ops = 0
    other = 0
    for e in range(n_ev):
        j = ev[e]
        v = x[j]
        prev[j] = v
        prev_ev[e] = j
        ops += fan[j]
        other += (v != one) & (v != -one)
    return n_ev, ops, other == 0


@njit(cache=True)
def copy_finite(x, n, out):
    """out[:n] = x[:n]; whether every value is finite (no NaN, no inf), tested in the same pass (vectorises)."""
    bad = 0
    for i in range(n):
        v = x[i]
        out[i] = v
        d = v - v  # 0 for a finite value, NaN for NaN and +-inf
        bad |= d != d
    return bad == 0


# ---------------------------------------------------------------------------------------------- time loop
@njit(cache=True)
def simulate_sample(x, kinds, out_off, out_len, in_len, src_ptr, src_node, src_prev, fp_off, ip_off,
                    st_off, st_len, fparams, iparams, prev_nodes, total_out, total_state, max_in,
                    rec_node, rec_off, rec, vrec_node, vrec_src, vrec_off, vrec,
                    cnt_off, fanout, sops, macs, events, spikes, driven, status):
    """Run one sample x (T, n_input) through the plan; record node outputs into rec (T, R) and voltages into
    vrec (T, V). Counters (T', n_nodes), T' = T or 1 (not per step): operations of synaptic nodes as SOPs or
    MACs (see counters.py), their non-zero inputs (events), spikes emitted, and neurons driven by input.
    status[0]: 0, or 1 + the step at which the input held a NaN or an infinity (the sample stops there)."""
    zero = fparams[0]
    one = fparams[1]
    n_nodes = kinds.shape[0]
    buf = np.zeros(total_out, fparams.dtype)
    prev = np.zeros(total_out, fparams.dtype)
    state = np.zeros(total_state, fparams.dtype)
    scratch = np.zeros(max(max_in, 1), fparams.dtype)
    last_in = np.zeros(fanout.shape[0], fparams.dtype)  # each synaptic node's previous input (fan-out layout)
    # each synaptic node's counts of its previous step, repeated while its input does not change
    last_nonzero = np.zeros(n_nodes, np.int64)
    last_ops = np.zeros(n_nodes, np.int64)
    last_binary = np.zeros(n_nodes, np.bool_)
    # events: the indices of the non-zero outputs of spiking nodes this step (same layout as buf), their number
    # per node (-1: no list: LI voltages, an input no Affine has listed), and each synaptic node's previous events
    ev = np.zeros(total_out, np.int64)
    n_ev = np.full(n_nodes, -1, np.int64)
    last_ev = np.zeros(fanout.shape[0], np.int64)
    for k in range(n_nodes):
        if kinds[k] == K_NEURON:
            neuron_init(out_len[k], iparams, ip_off[k], fparams, fp_off[k], state, st_off[k], zero)

    per_step = sops.shape[0] > 1
    input_same = False
    for t in range(x.shape[0]):
        tc = t if per_step else 0
        for k in range(n_nodes):
            kind = kinds[k]
            o0 = out_off[k]
            n = out_len[k]
            out = buf[o0:o0 + n]
            if kind == K_INPUT:
                # a static input (an image view presented for many steps) is neither copied nor checked again
                input_same = t > 0 and unchanged(x[t], n, x[t - 1], 0)
                if not input_same:
                    if not copy_finite(x[t], n, out):
                        status[0] = t + 1  # run() reports the sample and step; the rest of the sample is moot
                        return
                    n_ev[k] = -1  # listed by the first Affine that reads it (none may: a Conv scans it itself)
                continue
            # the node's input: one source read in place, else the sum of all its sources in file order
            e0 = src_ptr[k]
            e1 = src_ptr[k + 1]
            m = in_len[k]
            single = e1 - e0 == 1 and src_prev[e0] == 0  # one source, read at this step
            src = src_node[e0] if single else -1
            if single:
                xin = buf[out_off[src]:out_off[src] + m]
            else:
                xin = scratch[:m]
                for i in range(m):
                    xin[i] = zero
                for e in range(e0, e1):
                    j = src_node[e]
                    s0 = out_off[j]
                    part = prev[s0:s0 + m] if src_prev[e] == 1 else buf[s0:s0 + m]
                    for i in range(m):
                        xin[i] += part[i]
            po = fp_off[k]
            io = ip_off[k]
            # fed by the Input node alone: the Input node has just compared it with the previous step
            from_input = single and kinds[src] == K_INPUT
            # an Affine fed by one spiking node (or the Input) reads its event list instead of scanning its input
            src_ev = -1
            ev_in = ev[:0]
            if kind == K_AFFINE and single:
                ev_in = ev[out_off[src]:out_off[src] + m]
                if from_input and n_ev[src] < 0:
                    n_ev[src] = list_nonzero(xin, m, zero, ev_in, m)
                src_ev = n_ev[src]
            if cnt_off[k] >= 0:  # a synaptic node (stateless): count, then skip the work if nothing changed
                c0 = cnt_off[k]
                if src_ev >= 0:
                    if from_input:
                        same = input_same
                    else:
                        same = t > 0 and unchanged_events(xin, ev_in, src_ev, last_in, c0, last_nonzero[k])
                    if not same:
                        last_nonzero[k], last_ops[k], last_binary[k] = scan_events(
                            xin, ev_in, src_ev, fanout, c0, last_in, last_ev, last_nonzero[k], zero, one)
                else:
                    same = input_same if from_input else (t > 0 and unchanged(xin, m, last_in, c0))
                    if not same:
                        last_nonzero[k], last_ops[k], last_binary[k] = scan_input(xin, m, fanout, c0, last_in,
                                                                                  zero, one)
                events[tc, k] += last_nonzero[k]
                if last_binary[k]:
                    sops[tc, k] += last_ops[k]
                else:
                    macs[tc, k] += last_ops[k]
                if same:
                    continue  # its output slice of buf still holds the same result as the previous step
            if kind == K_NEURON:
                emitted, n_ev[k], n_driven = neuron(xin, n, iparams, io, fparams, po, state, st_off[k], zero, one,
                                                    out, ev[o0:o0 + n])
                spikes[tc, k] += emitted
                driven[tc, k] += n_driven
            elif kind == K_AFFINE:
                if src_ev >= 0:
                    affine_events(xin, ev_in, src_ev, m, n, fparams, po, out)
                else:
                    affine(xin, m, n, fparams, po, out)
            elif kind == K_CONV:
                conv(xin, iparams, io, fparams, po, out)
            elif kind == K_SUMPOOL:
                sumpool(xin, iparams, io, fparams, po, zero, out)
            elif kind == K_SCALE:
                scale(xin, n, fparams, po, out)
            elif kind == K_THRESHOLD:
                n_ev[k] = threshold(xin, n, iparams, io, fparams, po, zero, one, out, ev[o0:o0 + n])
                spikes[tc, k] += n_ev[k]
            elif kind == K_DELAY:
                delay(xin, n, t, iparams, io, state, st_off[k], zero, out)
            elif kind == K_ATTENTION:  # extension node: reads its Q, K, V sources from buf, counts itself
                attention(buf, iparams, io, fparams, po, out, sops[tc], macs[tc], events[tc], k)
            else:  # K_OUTPUT, K_IDENTITY, K_FLATTEN: pass the input through
                for i in range(n):
                    out[i] = xin[i]
        # outputs read by back edges at the next step (copies between slice views: these loops vectorise)
        for q in range(prev_nodes.shape[0]):
            j = prev_nodes[q]
            o0, n = out_off[j], out_len[j]
            dst, src = prev[o0:o0 + n], buf[o0:o0 + n]
            for i in range(n):
                dst[i] = src[i]
        for q in range(rec_node.shape[0]):
            j = rec_node[q]
            o0, n, r0 = out_off[j], out_len[j], rec_off[q]
            dst, src = rec[t, r0:r0 + n], buf[o0:o0 + n]
            for i in range(n):
                dst[i] = src[i]
        for q in range(vrec_node.shape[0]):
            j = vrec_node[q]
            s0, n, r0 = vrec_src[q], out_len[j], vrec_off[q]
            dst, src = vrec[t, r0:r0 + n], state[s0:s0 + n]
            for i in range(n):
                dst[i] = src[i]


@njit(cache=True, parallel=True)
def run_parallel(inputs, kinds, out_off, out_len, in_len, src_ptr, src_node, src_prev, fp_off, ip_off,
                 st_off, st_len, fparams, iparams, prev_nodes, total_out, total_state, max_in,
                 rec_node, rec_off, rec, vrec_node, vrec_src, vrec_off, vrec,
                 cnt_off, fanout, sops, macs, events, spikes, driven, status):
    """simulate_sample for every sample of inputs (N, T, n_input), samples spread over numba's threads.
    Returns the first sample whose input held a NaN or an infinity (its status[s, 0] says the step), or -1."""
    for s in prange(inputs.shape[0]):
        simulate_sample(inputs[s], kinds, out_off, out_len, in_len, src_ptr, src_node, src_prev, fp_off, ip_off,
                        st_off, st_len, fparams, iparams, prev_nodes, total_out, total_state, max_in,
                        rec_node, rec_off, rec[s], vrec_node, vrec_src, vrec_off, vrec[s],
                        cnt_off, fanout, sops[s], macs[s], events[s], spikes[s], driven[s], status[s])
    return first_failed(status)


@njit(cache=True)
def run_serial(inputs, kinds, out_off, out_len, in_len, src_ptr, src_node, src_prev, fp_off, ip_off,
               st_off, st_len, fparams, iparams, prev_nodes, total_out, total_state, max_in,
               rec_node, rec_off, rec, vrec_node, vrec_src, vrec_off, vrec,
               cnt_off, fanout, sops, macs, events, spikes, driven, status):
    """run_parallel on the calling thread: streaming one sample, or when asked not to run in parallel (starting
    the thread pool costs more than a short sample)."""
    for s in range(inputs.shape[0]):
        simulate_sample(inputs[s], kinds, out_off, out_len, in_len, src_ptr, src_node, src_prev, fp_off, ip_off,
                        st_off, st_len, fparams, iparams, prev_nodes, total_out, total_state, max_in,
                        rec_node, rec_off, rec[s], vrec_node, vrec_src, vrec_off, vrec[s],
                        cnt_off, fanout, sops[s], macs[s], events[s], spikes[s], driven[s], status[s])
    return first_failed(status)


@njit(cache=True)
def first_failed(status):
    """The first sample with a non-zero status[s, 0], or -1."""
    for s in range(status.shape[0]):
        if status[s, 0] != 0:
            return s
    return -1
