"""Checkpoints: written atomically, read with `torch.load(weights_only=True)` (never unpickling code).

`last.pt` holds what resuming needs (weights, optimiser, scheduler, epoch, history, best so far);
`best.safetensors` holds the best epoch's weights alone, for export and evaluation.
"""

from __future__ import annotations

import re
import warnings
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save

from neurostack.atomic import write_bytes, write_with
from neurostack.errors import NeurostackError
from neurostack.memory import check_memory


def save_checkpoint(path: str | Path, state: dict[str, Any]) -> None:
    """Save a resumable training state to `path` atomically."""
    write_with(path, lambda tmp: torch.save(state, tmp))


RESUME_KEYS = {"model": dict, "optimiser": dict, "scheduler": dict, "epoch": int, "history": list,
               "best_val": (int, float), "best_epoch": int}


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Load a training state saved by `save_checkpoint`; refuse anything that would need unpickling code.

    A file that is not a checkpoint (corrupt, truncated, a pickle of arbitrary objects: refused without
    running any of it), or one that lacks what resuming needs, raises NeurostackError naming the file.
    """
    import pickle

    path = Path(path)
    if not path.is_file():
        raise NeurostackError(f"{path}: no checkpoint there")
    check_memory(2 * path.stat().st_size, f"{path}: loading the checkpoint")
    try:
        with warnings.catch_warnings():  # torch warns about pickle protocols before refusing: the error says it
            warnings.simplefilter("ignore")
            state = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:  # weights_only refuses anything but tensors and plain containers
        text = " ".join(str(exc).split())
        code = re.search(r"GLOBAL ([\w.]+)", text)
        if code:
            raise NeurostackError(f"{path}: refused: unpickling it would call {code[1]} (it could run code); a "
                                  f"neurostack checkpoint holds only tensors, numbers and plain containers") from None
        reason = text.split("WeightsUnpickler error:")[-1].split(" Check the documentation")[0].strip()
        raise NeurostackError(f"{path}: not a readable neurostack checkpoint ({reason[:120]})") from None
    except Exception as exc:  # corrupt or truncated file
        reason = " ".join(str(exc).split()) or type(exc).__name__
        raise NeurostackError(f"{path}: not a readable neurostack checkpoint ({reason[:120]})") from None
    if not isinstance(state, dict):
        raise NeurostackError(f"{path}: not a neurostack checkpoint (holds a {type(state).__name__}, not a dict)")
    missing = [k for k in RESUME_KEYS if k not in state]
    if missing:
        raise NeurostackError(f"{path}: not a complete neurostack checkpoint (no {', '.join(missing)})")
    for key, want in RESUME_KEYS.items():
        value = state[key]
        if not isinstance(value, want) or isinstance(value, bool):
            raise NeurostackError(f"{path}: checkpoint entry '{key}' is a {type(value).__name__}, not what "
                                  f"neurostack writes")
    bad = [k for k, v in state["model"].items() if not isinstance(k, str) or not isinstance(v, torch.Tensor)]
    if bad:
        raise NeurostackError(f"{path}: checkpoint weights hold entries that are not named tensors ({bad[0]!r})")
    return state


def check_state_fits(path: str | Path, tensors: dict[str, torch.Tensor], model: torch.nn.Module) -> None:
    """Raise NeurostackError naming `path` and the mismatch when `tensors` (a state dict) are not `model`'s."""
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
            shown = ", ".join(f"{k} {tuple(tensors[k].shape)} instead of {tuple(own[k].shape)}" for k in wrong[:3])
            parts.append(f"wrong shape for {shown}")
        raise NeurostackError(f"{path}: weights do not fit this model ({'; '.join(parts)})")


def save_weights(path: str | Path, model: torch.nn.Module) -> None:
    """Save a model's parameters and buffers as safetensors, atomically."""
    tensors = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    write_bytes(path, save(tensors))  # (save_file would recreate the file with mode 0600)


def load_weights(path: str | Path, model: torch.nn.Module) -> torch.nn.Module:
    """Load safetensors weights into `model`; a file from another model is refused with the mismatch named."""
    path = Path(path)
    if not path.is_file():
        raise NeurostackError(f"{path}: no weights file there")
    check_memory(2 * path.stat().st_size, f"{path}: loading the weights")
    try:
        tensors = load_file(str(path))
    except Exception as exc:
        raise NeurostackError(f"{path}: not a readable safetensors file ({str(exc)[:120]})") from None
    check_state_fits(path, tensors, model)
    model.load_state_dict(tensors)
    return model
