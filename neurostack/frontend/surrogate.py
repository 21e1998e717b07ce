"""Surrogate-gradient spike functions: Heaviside forward, a smooth derivative backward.

Each function maps `x = v - v_th` (any shape) to spikes in {0, 1}; the forward is exactly `x > 0` (strict),
as in Norse and the NIR spec. Norse's own implementations are used where Norse has them.
"""

from __future__ import annotations

import math
from typing import Callable

import torch
from norse.torch.functional.threshold import heavi_circ_fn, heavi_erfc_fn, heavi_tanh_fn, triangle_fn
from norse.torch.functional.superspike import super_fn

SpikeFn = Callable[[torch.Tensor], torch.Tensor]


class _ATan(torch.autograd.Function):
    """Heaviside forward; derivative of (1/pi) atan(pi alpha x / 2) backward (Fang et al. 2021)."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, alpha: float) -> torch.Tensor:  # type: ignore[override]
        ctx.save_for_backward(x)
        ctx.alpha = alpha
        return (x > 0).to(x.dtype)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):  # type: ignore[override]
        (x,) = ctx.saved_tensors
        a = ctx.alpha
        return grad * (a / 2) / (1 + (math.pi / 2 * a * x) ** 2), None


def _atan(x: torch.Tensor, alpha: float) -> torch.Tensor:
    return _ATan.apply(x, alpha)


# name -> (function(x, alpha), default alpha)
_SURROGATES: dict[str, tuple[Callable[[torch.Tensor, float], torch.Tensor], float]] = {
    "superspike": (lambda x, a: super_fn(x, torch.as_tensor(a)), 100.0),
    "atan": (_atan, 2.0),
    "triangle": (triangle_fn, 0.3),
    "tanh": (heavi_tanh_fn, 1.0),
    "circ": (heavi_circ_fn, 1.0),
    "erfc": (heavi_erfc_fn, 1.0),
}

SURROGATES = tuple(_SURROGATES)


def spike_function(name: str, alpha: float | None = None) -> SpikeFn:
    """The spike function called `name` (one of `SURROGATES`), with its sharpness `alpha`."""
    if name not in _SURROGATES:
        from neurostack.errors import NeurostackError

        raise NeurostackError(f"unknown surrogate '{name}': choose one of {', '.join(SURROGATES)}")
    fn, default = _SURROGATES[name]
    a = default if alpha is None else float(alpha)
    return lambda x: fn(x, a)
