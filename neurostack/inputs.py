"""From dataset features to network input: the one encoding path shared by training, evaluation and simulation.

Two views of a (frames, bins) feature matrix:
- "image" (the reports' set-up): the whole matrix, flattened, is the input at every one of `steps` time steps,
  as a constant current (encoder "none"), Bernoulli spikes ("rate") or one spike per value ("latency");
- "sequence" (streaming): one frame per time step (`steps_per_frame` steps per frame for rate/latency; delta
  encodes changes between frames into ON/OFF channels).
Torch-free, so `neurostack simulate` rebuilds exactly the inputs the PyTorch model saw without PyTorch.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from neurostack.data import encode
from neurostack.errors import NeurostackError

EVAL_BATCH = 256
VIEWS = ("image", "sequence")


@dataclass(frozen=True)
class InputSpec:
    """How features become network input. steps: time steps per sample in the image view."""

    view: str = "image"
    encoder: str = "none"
    steps: int = 25
    steps_per_frame: int = 1

    def check(self) -> "InputSpec":
        if self.view not in VIEWS:
            raise NeurostackError(f"unknown view '{self.view}': choose one of {', '.join(VIEWS)}")
        if self.view == "image" and self.encoder == "delta":
            raise NeurostackError("the delta encoder encodes changes over time: use it with --view sequence")
        return self

    @property
    def held(self) -> bool:
        """Every step shows the same values (the image view as a constant current)."""
        return self.view == "image" and self.encoder == "none"

    def feature_shape(self, frames: int, bins: int) -> tuple[int, int]:
        """(time steps, values per step) of the encoded input for (frames, bins) features."""
        if self.view == "image":
            return self.steps, frames * bins
        t, f = frames, bins
        if self.encoder in ("rate", "latency"):
            t *= self.steps_per_frame
        if self.encoder == "delta":
            f *= 2
        return t, f


def encode_batch(x: np.ndarray, spec: InputSpec, rng: np.random.Generator | None,
                 input_shape: tuple[int, ...], held: bool = False) -> np.ndarray:
    """x: (B, frames, bins) features or counts -> encoded float32 (B, T, *input_shape).

    held: when every step shows the same values (spec.held), return a read-only view of one row per sample
    repeated over T without copying it (time stride 0), which the simulator runs without reading T rows."""
    if spec.view == "image":
        flat = x.reshape(x.shape[0], 1, -1)
        if held and spec.held:
            rows = flat.astype(np.float32).reshape(x.shape[0], 1, *input_shape)
            return np.broadcast_to(rows, (x.shape[0], spec.steps, *input_shape))
        if spec.encoder == "none":
            e = np.repeat(flat.astype(np.float32), spec.steps, axis=1)
        else:
            e = encode(spec.encoder, flat, rng=rng, steps_per_frame=spec.steps)
    else:
        params = {"steps_per_frame": spec.steps_per_frame} if spec.encoder in ("rate", "latency") else {}
        e = encode(spec.encoder, x, rng=rng, **params)
    e = np.asarray(e, dtype=np.float32)
    return e.reshape(e.shape[0], e.shape[1], *input_shape)


def eval_rng(seed: int) -> np.random.Generator:
    """The fixed generator that encodes evaluation data, so every consumer rebuilds the same spikes."""
    return np.random.default_rng([seed, 0xE7A1])


def encode_for_eval(x: np.ndarray, spec: InputSpec, seed: int, input_shape: tuple[int, ...],
                    batch_size: int = EVAL_BATCH, held: bool = False):
    """Yield (start, encoded batch) over x (N, frames, bins) in evaluation order with the evaluation generator
    (held: see encode_batch)."""
    rng = eval_rng(seed)
    for start in range(0, len(x), batch_size):
        yield start, encode_batch(x[start:start + batch_size], spec, rng, input_shape, held=held)


def concatenate(batches: list[np.ndarray]) -> np.ndarray:
    """np.concatenate of encoded batches; held batches (time stride 0) stay held: one row per sample."""
    if batches and all(b.shape[1] > 1 and b.strides[1] == 0 for b in batches):
        rows = np.concatenate([b[:, :1] for b in batches])
        return np.broadcast_to(rows, (len(rows), *batches[0].shape[1:]))
    return np.concatenate(batches)
