"""Checkpoints: written atomically, read with `torch.load(weights_only=True)` (never unpickling code).

`last.pt` holds what resuming needs (weights, optimiser, scheduler, epoch, history, best so far);
`best.safetensors` holds the best epoch's weights alone, for export and evaluation.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from neurostack.atomic import write_with
from neurostack.errors import NeurostackError


def save_checkpoint(path: str | Path, state: dict[str, Any]) -> None:
    """Save a resumable training state to `path` atomically."""
    write_with(path, lambda tmp: torch.save(state, tmp))


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Load a training state saved by `save_checkpoint`; refuse anything that would need unpickling code."""
    path = Path(path)
    if not path.is_file():
        raise NeurostackError(f"{path}: no checkpoint there")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # corrupt file, or a pickle that is not plain tensors and containers
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise NeurostackError(f"{path}: not a readable neurostack checkpoint ({reason[:160]})") from None


def save_weights(path: str | Path, model: torch.nn.Module) -> None:
    """Save a model's parameters and buffers as safetensors, atomically."""
    tensors = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    write_with(path, lambda tmp: save_file(tensors, str(tmp)))


def load_weights(path: str | Path, model: torch.nn.Module) -> torch.nn.Module:
    """Load safetensors weights into `model`; a file from another model is refused with the mismatch named."""
    path = Path(path)
    if not path.is_file():
        raise NeurostackError(f"{path}: no weights file there")
    try:
        tensors = load_file(str(path))
    except Exception as exc:
        raise NeurostackError(f"{path}: not a readable safetensors file ({str(exc)[:120]})") from None
    own = model.state_dict()
    missing = sorted(set(own) - set(tensors))
    unexpected = sorted(set(tensors) - set(own))
    wrong = [k for k in own if k in tensors and tuple(tensors[k].shape) != tuple(own[k].shape)]
    if missing or unexpected or wrong:
        parts = []
        if missing:
            parts.append(f"missing {', '.join(missing[:3])}")
        if unexpected:
            parts.append(f"unexpected {', '.join(unexpected[:3])}")
        if wrong:
            parts.append(f"wrong shape for {', '.join(wrong[:3])}")
        raise NeurostackError(f"{path}: weights do not fit this model ({'; '.join(parts)})")
    model.load_state_dict(tensors)
    return model
