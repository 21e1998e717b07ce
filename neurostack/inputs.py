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
                 input_shape: tuple[int, ...]) -> np.ndarray:
    """x: (B, frames, bins) features or counts -> encoded float32 (B, T, *input_shape)."""
    if spec.view == "image":
        flat = x.reshape(x.shape[0], 1, -1)
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
                    batch_size: int = EVAL_BATCH):
    """Yield (start, encoded batch) over x (N, frames, bins) in evaluation order with the evaluation generator."""
    rng = eval_rng(seed)
    for start in range(0, len(x), batch_size):
        yield start, encode_batch(x[start:start + batch_size], spec, rng, input_shape)
