"""Spiking layers that run a whole time sequence at once (time-major tensors, shape (T, B, *features)).

Synaptic layers (Linear, Conv1d) act on all time steps in one call; neuron layers loop over time with the
pure step functions of `neurostack.frontend.functional`. Each layer knows how to become one NIR node.
"""

from __future__ import annotations

import torch
from torch import nn

from neurostack.frontend.functional import LIFParameters, LIParameters, li_step, lif_step
from neurostack.frontend.surrogate import spike_function


class TimeDistributed(nn.Module):
    """Apply a per-step module (Linear, Conv1d, Flatten) to every step of a (T, B, ...) sequence."""

    def __init__(self, module: nn.Module):
        super().__init__()
        self.module = module

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        t, b = x.shape[:2]
        y = self.module(x.reshape(t * b, *x.shape[2:]))
        return y.reshape(t, b, *y.shape[1:])


class LIF(nn.Module):
    """Leaky integrate-and-fire neurons (Norse LIFBox), `shape` per sample.

    tau_mem: membrane time constant in seconds; dt: time step in seconds. Parameters are stored per neuron
    (buffers, not trained) so that export writes per-neuron arrays.
    """

    def __init__(self, shape: tuple[int, ...], tau_mem: float, dt: float, v_th: float = 1.0,
                 surrogate: str = "atan", alpha: float | None = None):
        super().__init__()
        self.shape = tuple(shape)
        self.dt = float(dt)
        self.surrogate = surrogate
        self.spike_fn = spike_function(surrogate, alpha)
        self.register_buffer("tau_mem_inv", torch.full(self.shape, 1.0 / tau_mem))
        self.register_buffer("v_leak", torch.zeros(self.shape))
        self.register_buffer("v_th", torch.full(self.shape, float(v_th)))
        self.register_buffer("v_reset", torch.zeros(self.shape))

    def parameters_tuple(self) -> LIFParameters:
        return LIFParameters(self.tau_mem_inv, self.v_leak, self.v_th, self.v_reset)

    def forward(self, i: torch.Tensor, record_voltage: bool = False):
        """i: (T, B, *shape) input current -> spikes (T, B, *shape) [, voltages after reset (T, B, *shape)]."""
        p = self.parameters_tuple()
        v = p.v_leak.expand_as(i[0])
        spikes, voltages = [], []
        for t in range(i.shape[0]):
            z, v = lif_step(i[t], v, p, self.dt, self.spike_fn)
            spikes.append(z)
            if record_voltage:
                voltages.append(v)
        z = torch.stack(spikes)
        return (z, torch.stack(voltages)) if record_voltage else z


class LI(nn.Module):
    """Leaky integrator readout (Norse LIBox): its voltage is the output. tau_mem in seconds."""

    def __init__(self, shape: tuple[int, ...], tau_mem: float, dt: float):
        super().__init__()
        self.shape = tuple(shape)
        self.dt = float(dt)
        self.register_buffer("tau_mem_inv", torch.full(self.shape, 1.0 / tau_mem))
        self.register_buffer("v_leak", torch.zeros(self.shape))

    def forward(self, i: torch.Tensor, record_voltage: bool = False):
        """i: (T, B, *shape) -> voltages (T, B, *shape)."""
        p = LIParameters(self.tau_mem_inv, self.v_leak)
        v = p.v_leak.expand_as(i[0])
        out = []
        for t in range(i.shape[0]):
            v = li_step(i[t], v, p, self.dt)
            out.append(v)
        v_all = torch.stack(out)
        return (v_all, v_all) if record_voltage else v_all
