"""From dataset features to network input: the one encoding path shared by training, evaluation and simulation.

Torch-free, so `neurostack simulate` rebuilds exactly the inputs the PyTorch model saw without PyTorch.
"""

from __future__ import annotations

import numpy as np

from neurostack.data import encode

EVAL_BATCH = 256


def encode_batch(x: np.ndarray, encoder: str, steps_per_frame: int, rng: np.random.Generator | None,
                 input_shape: tuple[int, ...]) -> np.ndarray:
    """x: (B, T, F) features or counts -> encoded float32 (B, T', *input_shape)."""
    params = {"steps_per_frame": steps_per_frame} if encoder in ("rate", "latency") else {}
    e = np.asarray(encode(encoder, x, rng=rng, **params), dtype=np.float32)
    return e.reshape(e.shape[0], e.shape[1], *input_shape)


def eval_rng(seed: int) -> np.random.Generator:
    """The fixed generator that encodes evaluation data, so every consumer rebuilds the same spikes."""
    return np.random.default_rng([seed, 0xE7A1])


def encode_for_eval(x: np.ndarray, encoder: str, steps_per_frame: int, seed: int,
                    input_shape: tuple[int, ...], batch_size: int = EVAL_BATCH):
    """Yield (start, encoded batch) over x (N, T, F) in evaluation order with the evaluation generator."""
    rng = eval_rng(seed)
    for start in range(0, len(x), batch_size):
        yield start, encode_batch(x[start:start + batch_size], encoder, steps_per_frame, rng, input_shape)
