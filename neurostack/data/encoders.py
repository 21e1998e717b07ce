"""Spike encoders: pure functions from intensities in [0, 1] to 0/1 spike trains.

Inputs are shaped (T, F) or (N, T, F) (time before features); outputs are float32 with the same
leading axes. Each encoder is deterministic given its inputs (and `rng` for rate coding).
"""

from __future__ import annotations

import numpy as np

from neurostack.errors import NeurostackError

ENCODERS = ("none", "rate", "latency", "delta")


def _check(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    if x.ndim not in (2, 3):
        raise NeurostackError(f"encoder input must be (T, F) or (N, T, F), got shape {x.shape}")
    return x


def _expand_time(x: np.ndarray, steps_per_frame: int) -> np.ndarray:
    """Repeat every frame `steps_per_frame` times along the time axis (-2)."""
    return np.repeat(x, steps_per_frame, axis=-2) if steps_per_frame > 1 else x


def rate_encode(x: np.ndarray, rng: np.random.Generator | int, steps_per_frame: int = 1) -> np.ndarray:
    """Bernoulli rate code: each step spikes with probability x.

    (.., T, F) -> (.., T * steps_per_frame, F). `rng` is a numpy Generator or an int seed.
    """
    x = _check(x)
    if steps_per_frame < 1:
        raise NeurostackError(f"steps_per_frame must be >= 1, got {steps_per_frame}")
    rng = np.random.default_rng(rng) if not isinstance(rng, np.random.Generator) else rng
    p = np.clip(_expand_time(x, steps_per_frame), 0.0, 1.0)
    return (rng.random(p.shape, dtype=np.float32) < p).astype(np.float32)


def latency_encode(x: np.ndarray, steps_per_frame: int = 8, tau: float = 15.0, threshold: float = 0.01) -> np.ndarray:
    """Latency code: one spike per channel per frame window, earlier for stronger input.

    The spike time is that of an RC neuron driven by x towards `threshold`,
    ``t = tau * ln(x / (x - threshold))`` in units of the frame window (as snntorch.spikegen.latency),
    shifted so x = 1 fires on the window's first step and clamped to its last step, so every
    channel with x > threshold fires exactly once per window; x <= threshold never fires.
    (.., T, F) -> (.., T * steps_per_frame, F).
    """
    x = _check(x)
    if steps_per_frame < 1 or tau <= 0 or not 0 < threshold < 1:
        raise NeurostackError(
            f"latency encoder needs steps_per_frame >= 1, tau > 0, 0 < threshold < 1 "
            f"(got {steps_per_frame}, {tau}, {threshold})"
        )
    fires = x > threshold
    xs = np.where(fires, np.minimum(x, 1.0), 1.0).astype(np.float64)
    t = tau * (np.log(xs / (xs - threshold)) - np.log(1.0 / (1.0 - threshold)))
    step = np.clip(np.floor(t * steps_per_frame), 0, steps_per_frame - 1).astype(np.int64)
    onehot = step[..., None, :] == np.arange(steps_per_frame)[:, None]  # (.., T, S, F)
    out = (onehot & fires[..., None, :]).astype(np.float32)
    return out.reshape(*x.shape[:-2], x.shape[-2] * steps_per_frame, x.shape[-1])


def delta_encode(x: np.ndarray, threshold: float = 0.1) -> np.ndarray:
    """Threshold-crossing (delta) code with ON and OFF channels.

    Each channel keeps a reference level, starting at 0. At every frame where x rises at least
    `threshold` above it, an ON spike is emitted and the reference moves up by `threshold`; where
    it falls at least `threshold` below, an OFF spike and the reference moves down. At most one
    spike per channel per frame, so a large jump is spread over the following frames.
    (.., T, F) -> (.., T, 2F): first F are ON, last F are OFF channels.
    """
    x = _check(x)
    if threshold <= 0:
        raise NeurostackError(f"delta threshold must be > 0, got {threshold}")
    ref = np.zeros(x.shape[:-2] + x.shape[-1:], dtype=np.float32)
    out = np.zeros(x.shape[:-1] + (2 * x.shape[-1],), dtype=np.float32)
    f = x.shape[-1]
    thr = np.float32(threshold)
    tol = np.float32(1e-6)  # so a change of exactly `threshold` counts despite float rounding
    for t in range(x.shape[-2]):
        diff = x[..., t, :] - ref
        on = diff >= thr - tol
        off = diff <= -(thr - tol)
        out[..., t, :f] = on
        out[..., t, f:] = off
        ref += thr * on - thr * off
    return out


def encode(name: str, x: np.ndarray, rng: np.random.Generator | int | None = None, **params) -> np.ndarray:
    """Apply encoder `name` (one of ENCODERS) to x (T, F) or (N, T, F).

    "none" returns x as float32 (real-valued input current). For "rate", `rng` defaults to seed 0.
    `params` go to the encoder (steps_per_frame, tau, threshold).
    """
    if name not in ENCODERS:
        raise NeurostackError(f"unknown encoder {name!r}; use one of {', '.join(ENCODERS)}")
    try:
        if name == "none":
            if params:
                raise TypeError(f"unexpected parameters {sorted(params)}")
            return _check(x).copy()
        if name == "rate":
            return rate_encode(x, rng if rng is not None else 0, **params)
        if name == "latency":
            return latency_encode(x, **params)
        return delta_encode(x, **params)
    except TypeError as exc:
        raise NeurostackError(f"encoder {name!r}: bad parameters ({exc})") from None


def encoded_shape(name: str, T: int, F: int, **params) -> tuple[int, int]:
    """(T', F') of `encode(name, x)` for x of shape (T, F)."""
    if name not in ENCODERS:
        raise NeurostackError(f"unknown encoder {name!r}; use one of {', '.join(ENCODERS)}")
    if name == "rate":
        return T * int(params.get("steps_per_frame", 1)), F
    if name == "latency":
        return T * int(params.get("steps_per_frame", 8)), F
    if name == "delta":
        return T, 2 * F
    return T, F
