"""Spiking layers that run a whole time sequence at once (time-major tensors, shape (T, B, *features)).

Synaptic layers (Linear, Conv1d) act on all time steps in one call; neuron layers loop over time with the
pure step functions of `neurostack.frontend.functional`. Each layer knows how to become one NIR node.

Composite stages (a recurrent adaptive layer, a Spikformer block) hold several NIR nodes; they set
`records_internally = True` and take `forward(x, outputs=None, voltages=None)`, filling the two dicts (when
given) with their inner nodes' outputs and voltages under their NIR node names.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

from neurostack.frontend.functional import (AdLIFParameters, LIFParameters, LIParameters, adlif_step, delayed_linear,
                                            li_step, lif_step)
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
        for i_t in i.unbind(0):  # unbind, not i[t]: indexing makes backward zero-fill a (T, B, n) grad per step
            z, v = lif_step(i_t, v, p, self.dt, self.spike_fn)
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
        for i_t in i.unbind(0):
            v = li_step(i_t, v, p, self.dt)
            out.append(v)
        v_all = torch.stack(out)
        return (v_all, v_all) if record_voltage else v_all


def _run_lif(lif: LIF, i: torch.Tensor, name: str, outputs: dict | None, voltages: dict | None) -> torch.Tensor:
    """Run `lif` on i, recording its spikes (and voltages) under `name` in the dicts that are given."""
    if voltages is not None:
        z, v = lif(i, record_voltage=True)
        voltages[name] = v
    else:
        z = lif(i)
    if outputs is not None:
        outputs[name] = z
    return z


def _record(outputs: dict | None, name: str, x: torch.Tensor) -> torch.Tensor:
    if outputs is not None:
        outputs[name] = x
    return x


# ------------------------------------------------------------------------------ adaptive recurrent LIF
class AdLIFRecurrent(nn.Module):
    """A recurrent layer of adaptive LIF neurons (`functional.adlif_step`), `n` neurons per sample.

    Input: the feed-forward current (T, B, n) of the preceding synaptic stage. Each step t the layer adds the
    recurrent current of its own previous spikes, i_t = ff_t + W_rec z_{t-1} (sum in that order), then runs
    `adlif_step(i_t, v, a)`. Trained per neuron: the membrane and adaptation time constants (stored as log(tau),
    so an optimiser step changes tau by a similar fraction whatever its size; clamped to [dt, 4 x the initial
    range's top]) and the adaptation jump per spike, jump = dt * tau_adapt_inv * b in [0, max_jump] (current
    units).

    NIR nodes (names given at construction): `lif_name` the LIF (spikes), `rec_name` the recurrent
    Linear(W_rec) (its output at step t is W_rec z_t, the input of step t+1), `adapt_name` the LI holding the
    adaptation current a (<= 0) fed in through Scale(-b). `recurrent=False` leaves W_rec out.
    """

    records_internally = True

    def __init__(self, n: int, dt: float, tau_mem: tuple[float, float], tau_adapt: tuple[float, float],
                 max_jump: float = 2.0, jump_init: float = 0.5, v_th: float = 1.0, surrogate: str = "atan",
                 recurrent: bool = True, lif_name: str = "lif1", rec_name: str = "rec1", adapt_name: str = "adapt1"):
        super().__init__()
        self.shape = (int(n),)
        self.dt = float(dt)
        self.surrogate = surrogate
        self.spike_fn = spike_function(surrogate)
        self.lif_name, self.rec_name, self.adapt_name = lif_name, rec_name, adapt_name
        self.rec = nn.Linear(n, n, bias=False) if recurrent else None
        if self.rec is not None:
            nn.init.orthogonal_(self.rec.weight, gain=0.5)
        # log(tau), tau initialised uniformly over the given ranges; tau >= dt keeps forward Euler stable
        lo_m, hi_m = sorted(tau_mem)
        lo_a, hi_a = sorted(tau_adapt)
        self.log_tau_mem_range = (math.log(dt), math.log(4 * hi_m))
        self.log_tau_adapt_range = (math.log(dt), math.log(4 * hi_a))
        self.max_jump = float(max_jump)
        self.log_tau_mem = nn.Parameter(torch.empty(n).uniform_(lo_m, hi_m).log())
        self.log_tau_adapt = nn.Parameter(torch.empty(n).uniform_(lo_a, hi_a).log())
        self.jump = nn.Parameter(torch.empty(n).uniform_(0.0, 2 * jump_init))
        self.register_buffer("v_leak", torch.zeros(self.shape))
        self.register_buffer("v_th", torch.full(self.shape, float(v_th)))
        self.register_buffer("v_reset", torch.zeros(self.shape))

    def parameters_tuple(self) -> AdLIFParameters:
        """The parameters as the step function (and a NIR export) uses them: tau_*_inv in 1/s, b."""
        tau_mem_inv = torch.exp(-self.log_tau_mem.clamp(*self.log_tau_mem_range)).clamp(max=1.0 / self.dt)
        tau_adapt_inv = torch.exp(-self.log_tau_adapt.clamp(*self.log_tau_adapt_range)).clamp(max=1.0 / self.dt)
        b = self.jump.clamp(0.0, self.max_jump) / (self.dt * tau_adapt_inv)
        return AdLIFParameters(tau_mem_inv, tau_adapt_inv, b, self.v_leak, self.v_th, self.v_reset)

    def forward(self, i: torch.Tensor, outputs: dict | None = None, voltages: dict | None = None) -> torch.Tensor:
        """i: (T, B, n) feed-forward current -> spikes (T, B, n)."""
        p = self.parameters_tuple()
        v = p.v_leak.expand_as(i[0])
        a = torch.zeros_like(i[0])
        r = torch.zeros_like(i[0])  # W_rec z_{t-1}
        spikes, vs, adapts, recs = [], [], [], []
        for t in range(i.shape[0]):
            z, v, a = adlif_step(i[t] + r, v, a, p, self.dt, self.spike_fn)
            if self.rec is not None:
                r = self.rec(z)
                recs.append(r)
            spikes.append(z)
            if voltages is not None:
                vs.append(v)
            if outputs is not None or voltages is not None:
                adapts.append(a)
        z = torch.stack(spikes)
        if outputs is not None:
            if self.rec is not None:
                outputs[self.rec_name] = torch.stack(recs)
            outputs[self.adapt_name] = torch.stack(adapts)  # the LI's output is its voltage
        if voltages is not None:
            voltages[self.lif_name] = torch.stack(vs)
            voltages[self.adapt_name] = torch.stack(adapts)
        return z


# ----------------------------------------------------------------------------------- learnable delays
def batch_norm_affine(bn: nn.BatchNorm1d) -> tuple[torch.Tensor, torch.Tensor]:
    """(s, shift), float64, with the eval-mode bn(y) = s y + shift per feature (running statistics): what export
    folds into the synapses before it. Computed in NumPy, whose float64 sqrt is correctly rounded (torch's may be
    an ulp off), so that every export folds the same bits."""
    def f64(t: torch.Tensor) -> np.ndarray:
        return t.detach().cpu().numpy().astype(np.float64)

    s = f64(bn.weight) / np.sqrt(f64(bn.running_var) + bn.eps)
    return torch.from_numpy(s), torch.from_numpy(f64(bn.bias) - f64(bn.running_mean) * s)


class DelayedLinear(nn.Module):
    """Linear synapses, each with its own learnable delay in [0, max_delay - 1] time steps (DCLS-delays style).

    In training each synapse spreads its weight over the taps 0..max_delay-1 with a Gaussian of width `sigma`
    around its real-valued delay (`functional.delayed_linear`), so the delay gets a gradient; `set_progress`
    shrinks sigma over training (exponentially from `sigma_init` to `sigma_min` by `hard_from` of the epochs)
    and from then on, and always in eval mode, the kernel is the hard one-hot at round(delay): the network
    evaluated (and selected on validation) is the one with whole-step delays. `round_delays()` writes the
    rounded delays into the parameter, as export wants them. x (T, B, n_in) -> (T, B, n_out).

    `batch_norm` (DCLS-delays' set-up) normalises each output current with BatchNorm over steps and samples; in
    eval mode that is an affine map per output, `bn_scale_shift()`, which export folds into the synapses.
    `delay_scale` k stores the delays as parameter = delay / k, so that the optimiser (Adam: a step of about lr
    per parameter, whatever the gradient's scale) moves the delays k times faster than the weights (DCLS-delays
    trains the positions with a far larger learning rate); k = 1: the parameter is the delay in steps.
    """

    def __init__(self, n_in: int, n_out: int, max_delay: int, sigma_init: float | None = None,
                 sigma_min: float = 0.5, hard_from: float = 0.8, bias: bool = True, batch_norm: bool = False,
                 delay_scale: float = 1.0):
        super().__init__()
        self.in_features, self.out_features, self.max_delay = int(n_in), int(n_out), int(max_delay)
        self.delay_scale = float(delay_scale)
        bound = 1.0 / math.sqrt(n_in)
        self.weight = nn.Parameter(torch.empty(n_out, n_in).uniform_(-bound, bound))
        self.bias = nn.Parameter(torch.empty(n_out).uniform_(-bound, bound)) if bias else None
        self.delay = nn.Parameter(torch.empty(n_out, n_in).uniform_(0.0, (max_delay - 1) / self.delay_scale))
        self.bn = nn.BatchNorm1d(n_out) if batch_norm else None
        self.sigma_init = float(sigma_init if sigma_init is not None else max(max_delay / 4, sigma_min))
        self.sigma_min, self.hard_from = float(sigma_min), float(hard_from)
        self.sigma: float | None = self.sigma_init

    def set_progress(self, fraction: float) -> None:
        """Training progress in [0, 1] (epoch-1)/epochs: sets sigma (None = hard delays)."""
        if fraction >= self.hard_from or self.max_delay <= 1:
            self.sigma = None
        else:
            self.sigma = self.sigma_init * (self.sigma_min / self.sigma_init) ** (fraction / self.hard_from)

    @torch.no_grad()
    def round_delays(self) -> None:
        """Replace each delay by the whole number of steps the hard kernel uses."""
        self.delay.copy_(torch.round(self.delays()).clamp(0, self.max_delay - 1) / self.delay_scale)

    def delays(self) -> torch.Tensor:
        """The real-valued delays in steps (the parameter times `delay_scale`)."""
        return self.delay if self.delay_scale == 1.0 else self.delay * self.delay_scale

    def integer_delays(self) -> torch.Tensor:
        """The delays, in whole steps, of the hard (evaluation / export) kernel: (n_out, n_in) int64."""
        return torch.round(self.delays().detach()).clamp(0, self.max_delay - 1).long()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        sigma = self.sigma if self.training else None
        y = delayed_linear(x, self.weight, self.bias, self.delays().clamp(0, self.max_delay - 1), self.max_delay,
                           sigma)
        if self.bn is not None:
            y = self.bn(y.reshape(-1, y.shape[-1])).reshape(y.shape)
        return y

    @torch.no_grad()
    def bn_scale_shift(self) -> tuple[torch.Tensor, torch.Tensor] | None:
        """(s, shift), float64, with the eval-mode BatchNorm(y) = s y + shift per output; None without BN."""
        return None if self.bn is None else batch_norm_affine(self.bn)


# ------------------------------------------------------------------------------------------ spikformer
class TokenBatchNorm(nn.Module):
    """BatchNorm over the last (feature) dimension of (T, B, ..., D): statistics over steps, samples, tokens.
    In eval mode an affine map per feature, which folds into the preceding Linear for export."""

    def __init__(self, d: int):
        super().__init__()
        self.bn = nn.BatchNorm1d(d)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.bn(x.reshape(-1, x.shape[-1])).reshape(x.shape)


class PositionEmbedding(nn.Module):
    """Adds a learnable current per (token, feature), shape (N, D), at every step: where a frame is in time."""

    def __init__(self, n_tokens: int, d: int, std: float = 0.5):
        super().__init__()
        self.pos_embedding = nn.Parameter(torch.randn(n_tokens, d) * std)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.pos_embedding


class TokenConv(nn.Module):
    """Linear projection of a window of `kernel` consecutive frames to one token, every `stride` frames:
    (T, B, frames, bins) -> (T, B, tokens, dim), a Conv1d over frames (zero padding kernel // 2) at each step.
    Tokens overlap for stride < kernel; the projection is the same at every position (shift-invariant)."""

    def __init__(self, bins: int, dim: int, kernel: int, stride: int, bias: bool = False):
        super().__init__()
        self.conv = nn.Conv1d(bins, dim, kernel, stride=stride, padding=kernel // 2, bias=bias)

    def n_tokens(self, frames: int) -> int:
        c = self.conv
        return (frames + 2 * c.padding[0] - c.kernel_size[0]) // c.stride[0] + 1

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        t, b, n, f = x.shape
        y = self.conv(x.reshape(t * b, n, f).transpose(1, 2))  # (T*B, dim, tokens)
        return y.transpose(1, 2).reshape(t, b, y.shape[-1], y.shape[1])


class TokenMean(nn.Module):
    """(T, B, N, D) -> (T, B, D): the mean over tokens (a Linear with weights 1/N, for export)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.mean(dim=-2)


class SpikformerBlock(nn.Module):
    """One Spikformer encoder block (Zhou et al. 2023) on (T, B, N, D) spike tokens:

        x = x + SSA(x);   x = x + MLP(x)

    SSA (spiking self-attention): Q, K, V = LIF(BN(Linear(x))) are spikes; per head, A = (Q K^T) V * scale
    (no softmax: all three are non-negative), then LIF(threshold `attn_v_th`), then LIF(BN(Linear)).
    MLP: LIF(BN(Linear(D -> ratio D))), dropout, LIF(BN(Linear(ratio D -> D))).
    The residual sums are spike counts (0, 1, 2, ...). Inner node names start with `prefix` (e.g. "b1_").
    """

    records_internally = True

    def __init__(self, d: int, heads: int, n_tokens: int, mlp_ratio: int, tau_mem: float, dt: float,
                 v_th: float = 1.0, attn_v_th: float = 0.5, scale: float = 0.125, surrogate: str = "atan",
                 dropout: float = 0.0, prefix: str = "b1_"):
        super().__init__()
        if d % heads:
            from neurostack.errors import NeurostackError

            raise NeurostackError(f"spikformer: dim {d} is not a multiple of heads {heads}")
        self.heads, self.scale, self.prefix = int(heads), float(scale), prefix
        shape = (n_tokens, d)
        hidden = int(d * mlp_ratio)

        def lif(shape_, th=v_th):
            return LIF(shape_, tau_mem, dt, th, surrogate)

        for name in ("q", "k", "v", "proj"):
            setattr(self, f"{name}_fc", nn.Linear(d, d, bias=False))
            setattr(self, f"{name}_bn", TokenBatchNorm(d))
            setattr(self, f"{name}_lif", lif(shape))
        self.attn_lif = lif(shape, attn_v_th)
        self.mlp1_fc, self.mlp1_bn, self.mlp1_lif = nn.Linear(d, hidden, bias=False), TokenBatchNorm(hidden), lif((n_tokens, hidden))
        self.mlp_drop = nn.Dropout(dropout)
        self.mlp2_fc, self.mlp2_bn, self.mlp2_lif = nn.Linear(hidden, d, bias=False), TokenBatchNorm(d), lif(shape)

    def _lif(self, name: str, x: torch.Tensor, outputs, voltages) -> torch.Tensor:
        i = getattr(self, f"{name}_bn")(getattr(self, f"{name}_fc")(x))
        return _run_lif(getattr(self, f"{name}_lif"), i, self.prefix + f"{name}_lif", outputs, voltages)

    def attention(self, x: torch.Tensor, outputs: dict | None = None, voltages: dict | None = None) -> torch.Tensor:
        t, b, n, d = x.shape
        q, k, v = (self._lif(name, x, outputs, voltages).reshape(t, b, n, self.heads, d // self.heads).transpose(2, 3)
                   for name in ("q", "k", "v"))
        a = ((q @ k.transpose(-2, -1)) @ v) * self.scale  # (T, B, H, N, d/H)
        a = _record(outputs, self.prefix + "attn", a.transpose(2, 3).reshape(t, b, n, d))
        s = _run_lif(self.attn_lif, a, self.prefix + "attn_lif", outputs, voltages)
        return self._lif("proj", s, outputs, voltages)

    def mlp(self, x: torch.Tensor, outputs: dict | None = None, voltages: dict | None = None) -> torch.Tensor:
        h = self.mlp_drop(self._lif("mlp1", x, outputs, voltages))
        return self._lif("mlp2", h, outputs, voltages)

    def forward(self, x: torch.Tensor, outputs: dict | None = None, voltages: dict | None = None) -> torch.Tensor:
        x = _record(outputs, self.prefix + "res1", x + self.attention(x, outputs, voltages))
        return x + self.mlp(x, outputs, voltages)
