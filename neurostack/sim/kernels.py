"""Numba kernels: one function per node kind, and the per-sample time loop that dispatches on plan.kinds.

Kernels see only flat arrays (never NIR objects). All float arithmetic is in the plan's precision: every
operand comes from a typed array, and the constants 0 and 1 are read from fparams[0:2] so that no Python
literal promotes a float32 expression to float64. No fastmath: operation order is kept as written, because
exact spike parity with the producers depends on it.

Event-driven synapses: Affine / Linear / Conv / pooling walk over their input and do work only for non-zero
entries (spikes, or spike counts), adding that entry's weight column / kernel footprint scaled by its value;
a real-valued input (e.g. audio features) has (almost) no zeros and costs the same as a dense product.
Synaptic nodes are stateless, so when a node's input is exactly the previous step's (a static input presented
for many steps, silence) its output is left as it was: no work, the same bits. Neurons return the number of
spikes they emitted. The time loop counts, per node, input events, operations (SOPs / MACs, with the fan-out
tables of counters.py; counted whether or not work was skipped, as the definitions in
neurostack/energy/workload.py say), spikes and driven neurons.

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
    for i in range(n_out):
        out[i] = fp[po + i]
    w = fp[po + n_out:po + n_out + n_in * n_out].reshape((n_in, n_out))  # a 2-D view: the inner loop vectorises
    for j in range(n_in):
        xj = x[j]
        if xj != 0:
            for i in range(n_out):
                out[i] += xj * w[j, i]


@njit(cache=True)
def scale(x, n, fp, po, out):
    """out = x * s elementwise."""
    for i in range(n):
        out[i] = x[i] * fp[po + i]


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
        for p in range(plane):
            out[co * plane + p] = b
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
    the same step, at most one spike. The same operations in the same order as the general path."""
    a = fp[po + P_DECAY * n:po + (P_DECAY + 1) * n]
    g = fp[po + P_GAIN * n:po + (P_GAIN + 1) * n]
    c = fp[po + P_LEAK * n:po + (P_LEAK + 1) * n]
    th = fp[po + P_THRESHOLD * n:po + (P_THRESHOLD + 1) * n]
    v_reset = fp[po + P_RESET * n:po + (P_RESET + 1) * n]
    v = state[so:so + n]
    spikes = 0
    for k in range(n):
        vk = v[k]
        v_new = vk + a[k] * ((g[k] * x[k] + c[k]) - vk)
        over = v_new >= th[k] if inclusive else v_new > th[k]
        if over:
            out[k] = one
            spikes += 1
            v_new = v_new - th[k] if subtract else v_reset[k]
        else:
            out[k] = zero
        v[k] = v_new
    return spikes


@njit(cache=True)
def neuron(x, n, ip, io, fp, po, state, so, zero, one, out):
    """One step of LIF / CubaLIF / LI / CubaLI / IF / I for n neurons (forms documented in plan.py).

    Per neuron: (1) synaptic current u seen by the membrane (CubaLIF/CubaLI; else u = x);
    (2) with next-step reset timing, the spike decided on the previous membrane (snnTorch's reset signal,
    Spyx's emitted spike); (3) membrane update; (4) threshold and reset. Returns the spikes emitted.
    Writes spikes (spiking neurons) or the new voltage (LI, CubaLI, I) to `out`.
    """
    update, syn, spiking = ip[io + F_UPDATE], ip[io + F_SYN], ip[io + F_SPIKING]
    subtract, next_step, inclusive = ip[io + F_SUBTRACT], ip[io + F_NEXT_STEP], ip[io + F_INCLUSIVE]
    multi, latency, clear_new = ip[io + F_MULTI], ip[io + F_LATENCY], ip[io + F_CLEAR_NEW]
    if update == U_INC_LIF and syn == S_NONE and spiking and not (next_step or latency or multi):
        return lif_euler(x, n, fp, po, state, so, subtract, inclusive, zero, one, out)
    spikes = 0
    for k in range(n):
        v = state[so + k]
        # (1) synaptic current
        if syn == S_NONE:
            u = x[k]
        else:
            i_syn = state[so + n + k]
            gs = fp[po + P_SYN_GAIN * n + k]
            ds = fp[po + P_SYN_DECAY * n + k]
            if syn == S_JUMP_THEN_DECAY:
                u = i_syn + gs * x[k]
                state[so + n + k] = u - ds * u
            elif syn == S_DECAY_THEN_ADD:
                u = ds * i_syn + gs * x[k]
                state[so + n + k] = u
            else:  # S_ADD_THEN_DECAY
                u = (i_syn + gs * x[k]) * ds
                state[so + n + k] = u
        d = fp[po + P_DECAY * n + k]
        g = fp[po + P_GAIN * n + k]
        c = fp[po + P_LEAK * n + k]
        th = fp[po + P_THRESHOLD * n + k]
        v_reset = fp[po + P_RESET * n + k]
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
            state[so + k] = v_new
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
        state[so + k] = v_new
        emitted = n_prev if latency else n_now
        out[k] = emitted
        spikes += np.int64(emitted)
    return spikes


@njit(cache=True)
def neuron_init(n, ip, io, fp, po, state, so, zero):
    """Initial state: v = P_V_INIT, synaptic current 0."""
    for k in range(n):
        state[so + k] = fp[po + P_V_INIT * n + k]
    if ip[io + F_SYN] != S_NONE:
        for k in range(n):
            state[so + n + k] = zero


@njit(cache=True)
def threshold(x, n, ip, io, fp, po, zero, one, out):
    """Heaviside: out = 1 where x > threshold (>= when inclusive)."""
    inclusive = ip[io]
    spikes = 0
    for k in range(n):
        th = fp[po + k]
        over = x[k] >= th if inclusive else x[k] > th
        if over:
            out[k] = one
            spikes += 1
        else:
            out[k] = zero
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
def scan_input(x, m, fanout, c0, last, zero, one, sops, macs, k):
    """One pass over a synaptic node's input x (m,) this step, for counting and for skipping work.

    Each non-zero value reaches fanout[c0 + j] non-zero weights: those operations are SOPs when every value is
    in {-1, 0, 1}, else MACs (as NeuroBench decides), added to sops[k] / macs[k]. `last[c0:c0 + m]` holds the
    input of the previous step and is updated. Returns (non-zero values, whether the input is unchanged)."""
    ops = 0
    nonzero = 0
    binary = True
    same = True
    for j in range(m):
        v = x[j]
        if v != last[c0 + j]:
            same = False
            last[c0 + j] = v
        if v != zero:
            nonzero += 1
            ops += fanout[c0 + j]
            if v != one and v != -one:
                binary = False
    if binary:
        sops[k] += ops
    else:
        macs[k] += ops
    return nonzero, same


# ---------------------------------------------------------------------------------------------- time loop
@njit(cache=True)
def simulate_sample(x, kinds, out_off, out_len, in_len, src_ptr, src_node, src_prev, fp_off, ip_off,
                    st_off, st_len, fparams, iparams, prev_nodes, total_out, total_state, max_in,
                    rec_node, rec_off, rec, vrec_node, vrec_src, vrec_off, vrec,
                    cnt_off, fanout, sops, macs, events, spikes, driven):
    """Run one sample x (T, n_input) through the plan; record node outputs into rec (T, R) and voltages into
    vrec (T, V). Counters (T', n_nodes), T' = T or 1 (not per step): operations of synaptic nodes as SOPs or
    MACs (see counters.py), their non-zero inputs (events), spikes emitted, and neurons driven by input."""
    zero = fparams[0]
    one = fparams[1]
    n_nodes = kinds.shape[0]
    buf = np.zeros(total_out, fparams.dtype)
    prev = np.zeros(total_out, fparams.dtype)
    state = np.zeros(total_state, fparams.dtype)
    scratch = np.zeros(max(max_in, 1), fparams.dtype)
    last_in = np.zeros(fanout.shape[0], fparams.dtype)  # each synaptic node's previous input (fan-out layout)
    for k in range(n_nodes):
        if kinds[k] == K_NEURON:
            neuron_init(out_len[k], iparams, ip_off[k], fparams, fp_off[k], state, st_off[k], zero)

    per_step = sops.shape[0] > 1
    for t in range(x.shape[0]):
        tc = t if per_step else 0
        for k in range(n_nodes):
            kind = kinds[k]
            o0 = out_off[k]
            n = out_len[k]
            out = buf[o0:o0 + n]
            if kind == K_INPUT:
                for i in range(n):
                    out[i] = x[t, i]
                continue
            # the node's input: one source read in place, else the sum of all its sources in file order
            e0 = src_ptr[k]
            e1 = src_ptr[k + 1]
            m = in_len[k]
            if e1 - e0 == 1 and src_prev[e0] == 0:
                j = src_node[e0]
                xin = buf[out_off[j]:out_off[j] + m]
            else:
                xin = scratch[:m]
                for i in range(m):
                    xin[i] = zero
                for e in range(e0, e1):
                    j = src_node[e]
                    src = prev if src_prev[e] == 1 else buf
                    s0 = out_off[j]
                    for i in range(m):
                        xin[i] += src[s0 + i]
            po = fp_off[k]
            io = ip_off[k]
            if cnt_off[k] >= 0:  # a synaptic node (stateless): count, then skip the work if nothing changed
                nonzero, same = scan_input(xin, m, fanout, cnt_off[k], last_in, zero, one, sops[tc], macs[tc], k)
                events[tc, k] += nonzero
                if same and t > 0:
                    continue  # its output slice of buf still holds the same result as the previous step
            if kind == K_NEURON:
                spikes[tc, k] += neuron(xin, n, iparams, io, fparams, po, state, st_off[k], zero, one, out)
                for i in range(n):
                    if xin[i] != zero:
                        driven[tc, k] += 1
            elif kind == K_AFFINE:
                affine(xin, m, n, fparams, po, out)
            elif kind == K_CONV:
                conv(xin, iparams, io, fparams, po, out)
            elif kind == K_SUMPOOL:
                sumpool(xin, iparams, io, fparams, po, zero, out)
            elif kind == K_SCALE:
                scale(xin, n, fparams, po, out)
            elif kind == K_THRESHOLD:
                spikes[tc, k] += threshold(xin, n, iparams, io, fparams, po, zero, one, out)
            elif kind == K_DELAY:
                delay(xin, n, t, iparams, io, state, st_off[k], zero, out)
            else:  # K_OUTPUT, K_IDENTITY, K_FLATTEN: pass the input through
                for i in range(n):
                    out[i] = xin[i]
        # outputs read by back edges at the next step
        for q in range(prev_nodes.shape[0]):
            j = prev_nodes[q]
            for i in range(out_off[j], out_off[j] + out_len[j]):
                prev[i] = buf[i]
        for q in range(rec_node.shape[0]):
            j = rec_node[q]
            r0 = rec_off[q]
            o0 = out_off[j]
            for i in range(out_len[j]):
                rec[t, r0 + i] = buf[o0 + i]
        for q in range(vrec_node.shape[0]):
            j = vrec_node[q]
            r0 = vrec_off[q]
            s0 = vrec_src[q]
            for i in range(out_len[j]):
                vrec[t, r0 + i] = state[s0 + i]


@njit(cache=True, parallel=True)
def run_parallel(inputs, kinds, out_off, out_len, in_len, src_ptr, src_node, src_prev, fp_off, ip_off,
                 st_off, st_len, fparams, iparams, prev_nodes, total_out, total_state, max_in,
                 rec_node, rec_off, rec, vrec_node, vrec_src, vrec_off, vrec,
                 cnt_off, fanout, sops, macs, events, spikes, driven):
    """simulate_sample for every sample of inputs (N, T, n_input), samples spread over numba's threads."""
    for s in prange(inputs.shape[0]):
        simulate_sample(inputs[s], kinds, out_off, out_len, in_len, src_ptr, src_node, src_prev, fp_off, ip_off,
                        st_off, st_len, fparams, iparams, prev_nodes, total_out, total_state, max_in,
                        rec_node, rec_off, rec[s], vrec_node, vrec_src, vrec_off, vrec[s],
                        cnt_off, fanout, sops[s], macs[s], events[s], spikes[s], driven[s])


@njit(cache=True)
def run_serial(inputs, kinds, out_off, out_len, in_len, src_ptr, src_node, src_prev, fp_off, ip_off,
               st_off, st_len, fparams, iparams, prev_nodes, total_out, total_state, max_in,
               rec_node, rec_off, rec, vrec_node, vrec_src, vrec_off, vrec,
               cnt_off, fanout, sops, macs, events, spikes, driven):
    """run_parallel on the calling thread: streaming one sample, or when asked not to run in parallel (starting
    the thread pool costs more than a short sample)."""
    for s in range(inputs.shape[0]):
        simulate_sample(inputs[s], kinds, out_off, out_len, in_len, src_ptr, src_node, src_prev, fp_off, ip_off,
                        st_off, st_len, fparams, iparams, prev_nodes, total_out, total_state, max_in,
                        rec_node, rec_off, rec[s], vrec_node, vrec_src, vrec_off, vrec[s],
                        cnt_off, fanout, sops[s], macs[s], events[s], spikes[s], driven[s])
