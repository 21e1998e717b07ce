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
