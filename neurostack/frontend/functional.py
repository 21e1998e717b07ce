"""Neuron equations as pure functions of (input, state, parameters): one forward-Euler step each.

These are Norse's `LIFBox` and `LIBox` updates (norse.torch.functional.lif_box / leaky_integrator_box),
written out with the same floating-point operation order so that a simulator that follows the NIR spec
reproduces them bit for bit, and with a pluggable surrogate spike function. Units: `dt` in seconds,
`tau_mem_inv` in 1/seconds, voltages dimensionless (threshold 1 by default). Shapes broadcast.

NIR equivalents: LIF(tau = 1/tau_mem_inv, r = 1, v_leak, v_threshold, v_reset); LI(tau, r = 1, v_leak).
"""

from __future__ import annotations

from typing import NamedTuple

import torch

from neurostack.frontend.surrogate import SpikeFn


class LIFParameters(NamedTuple):
    """LIF neuron without a synaptic current (Norse's LIFBoxParameters)."""

    tau_mem_inv: torch.Tensor  # 1/s
    v_leak: torch.Tensor
    v_th: torch.Tensor
    v_reset: torch.Tensor


class LIParameters(NamedTuple):
    """Leaky integrator without a synaptic current (Norse's LIBoxParameters)."""

    tau_mem_inv: torch.Tensor  # 1/s
    v_leak: torch.Tensor


def lif_step(
    i: torch.Tensor, v: torch.Tensor, p: LIFParameters, dt: float, spike_fn: SpikeFn
) -> tuple[torch.Tensor, torch.Tensor]:
    """One step: integrate, spike if strictly above threshold, reset to `v_reset`. Returns (z, v_next)."""
    dv = dt * p.tau_mem_inv * (i + p.v_leak - v)
    v_decayed = v + dv
    z = spike_fn(v_decayed - p.v_th)
    v_next = (1 - z.detach()) * v_decayed + z.detach() * p.v_reset
    return z, v_next


def li_step(i: torch.Tensor, v: torch.Tensor, p: LIParameters, dt: float) -> torch.Tensor:
    """One step of the leaky integrator. Returns v_next (which is also the output)."""
    dv = dt * p.tau_mem_inv * ((p.v_leak - v) + i)
    return v + dv


# --------------------------------------------------------------------------------- adaptive LIF (adlif)
class AdLIFParameters(NamedTuple):
    """Adaptive LIF with a spike-triggered adaptation current (the adaptive SRNN / AdLIF family).

    tau_mem_inv, tau_adapt_inv in 1/s; `b` is the adaptation strength: the adaptation current's input is -b
    per spike (dimensionless, same units as the membrane input; b >= 0 makes the neuron tire).
    """

    tau_mem_inv: torch.Tensor  # 1/s
    tau_adapt_inv: torch.Tensor  # 1/s
    b: torch.Tensor
    v_leak: torch.Tensor
    v_th: torch.Tensor
    v_reset: torch.Tensor


def adlif_step(
    i: torch.Tensor, v: torch.Tensor, a: torch.Tensor, p: AdLIFParameters, dt: float, spike_fn: SpikeFn
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """One step of an adaptive LIF neuron. Returns (z, v_next, a_next).

    `i` is the synaptic input of this step (feed-forward plus recurrent current), `a` the adaptation current
    left by the previous step (a <= 0 when b >= 0). Forward Euler, dt in seconds, in this order:

        v'  = v + dt * tau_mem_inv * ((i + a) + v_leak - v)            # lif_step with input i + a
        z   = H(v' - v_th)          (strictly above threshold)
        v   <- (1 - z) v' + z v_reset
        a'  = a + dt * tau_adapt_inv * ((0 - a) + (-b * z))            # li_step of the input -b z

    i.e. the adaptation current w = -a obeys w' = (1 - dt/tau_adapt) w + (dt/tau_adapt) b z: it decays with
    tau_adapt and jumps by dt * tau_adapt_inv * b at each spike, and it is fed back negatively to the membrane
    input one step later. NIR equivalent (a cycle): LIF(tau_mem) -> Scale(-b) -> LI(tau_adapt, r=1, v_leak=0)
    -> back into the same LIF, summed with its other inputs.
    """
    z, v_next = lif_step(i + a, v, LIFParameters(p.tau_mem_inv, p.v_leak, p.v_th, p.v_reset), dt, spike_fn)
    a_next = li_step(-p.b * z, a, LIParameters(p.tau_adapt_inv, torch.zeros_like(p.tau_adapt_inv)), dt)
    return z, v_next, a_next


# ------------------------------------------------------------------------------- learnable delays (delay)
def delay_kernel(delay: torch.Tensor, max_delay: int, sigma: float | None) -> torch.Tensor:
    """Weights of each synapse over its possible delays 0 .. max_delay-1 steps: shape (*delay.shape, max_delay).

    sigma > 0: a Gaussian centred on the (real-valued, learnable) delay, normalised to sum 1 over the taps --
    the differentiable relaxation of DCLS-delays (Hammouamri et al. 2023); as sigma shrinks it approaches
    a one-hot. sigma None (or 0): the hard one-hot at round(delay), i.e. a delay of a whole number of steps.
    """
    taps = torch.arange(max_delay, dtype=delay.dtype, device=delay.device)
    if not sigma:
        return (taps == torch.round(delay).clamp(0, max_delay - 1).unsqueeze(-1)).to(delay.dtype)
    g = torch.exp(-0.5 * ((taps - delay.unsqueeze(-1)) / sigma) ** 2)
    return g / (g.sum(-1, keepdim=True) + 1e-12)


def delayed_linear(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, delay: torch.Tensor,
                   max_delay: int, sigma: float | None) -> torch.Tensor:
    """Linear synapses with a delay each, over a whole sequence. x (T, B, n_in) -> (T, B, n_out).

        y[t, b, o] = bias[o] + sum_i sum_k weight[o, i] * kernel[o, i, k] * x[t - k, b, i]   (x[t < 0] = 0)

    with kernel = delay_kernel(delay, max_delay, sigma) (weight, delay: (n_out, n_in)). With the hard kernel
    this is exactly `y[t] = bias + sum_i weight[o, i] x[t - delay[o, i], i]`, which NIR writes as one
    Delay(d * dt) -> Linear(weight masked to the synapses of delay d) branch per distinct delay d.
    """
    t, b, n_in = x.shape
    k = weight.unsqueeze(-1) * delay_kernel(delay, max_delay, sigma)  # (n_out, n_in, D), k[..., d] = delay d
    xs = torch.nn.functional.pad(x.permute(1, 2, 0), (max_delay - 1, 0))  # (B, n_in, D-1+T), causal
    y = torch.nn.functional.conv1d(xs, k.flip(-1), bias)  # (B, n_out, T)
    return y.permute(2, 0, 1)
