"""Model input tensors from encoded numpy batches."""

from __future__ import annotations

import numpy as np
import torch


def to_time_major(x: np.ndarray, device: torch.device, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """(B, T, ...) numpy -> (T, B, ...) tensor on `device`."""
    return torch.from_numpy(np.ascontiguousarray(np.swapaxes(x, 0, 1))).to(device=device, dtype=dtype)
