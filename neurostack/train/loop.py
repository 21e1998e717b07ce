"""The training loop: BPTT with surrogate gradients, a checkpoint each epoch, resumable, best epoch on validation.

Reproducibility: every random choice of epoch e (shuffling, encoder noise, dropout) is seeded from
(seed, e), so a run resumed from epoch e's checkpoint reaches the same weights as an uninterrupted one.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F

from neurostack.atomic import write_json
from neurostack.errors import NeurostackError
from neurostack.frontend.models import SpikingClassifier, build_model, calibrate_init, count_parameters
from neurostack.inputs import encode_batch
from neurostack.train.checkpoint import load_checkpoint, load_weights, save_checkpoint, save_weights
from neurostack.train.config import TrainConfig
from neurostack.train.evaluate import confusion_matrix, predict
from neurostack.train.inputs import to_time_major
from neurostack.train.plots import plot_confusion, plot_training_curve
from neurostack.train.rundir import RunPaths


def resolve_device(name: str) -> torch.device:
    """'auto' -> CUDA when available, else CPU; 'cuda' without a GPU is a user error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise NeurostackError("--device cuda: no CUDA GPU is available on this machine (use --device cpu or auto)")
    if name not in ("cpu",) and not name.startswith("cuda"):
        raise NeurostackError(f"unknown device '{name}': use auto, cpu or cuda")
    return torch.device(name)


@dataclass
class EpochReport:
    epoch: int
    epochs: int
    train_loss: float
    train_accuracy: float
    val_accuracy: float
    seconds: float
    best: bool


ProgressFn = Callable[[int, int, float, float], None]  # (batch, n_batches, running loss, running accuracy)


def augment(x: np.ndarray, rng: np.random.Generator, max_shift: int) -> np.ndarray:
    """Random time shift of each sample by up to `max_shift` frames (zero-filled): x (B, frames, bins)."""
    if max_shift <= 0:
        return x
    out = np.zeros_like(x)
    for k, s in enumerate(rng.integers(-max_shift, max_shift + 1, size=len(x))):
        if s >= 0:
            out[k, s:] = x[k, :x.shape[1] - s]
        else:
            out[k, :s] = x[k, -s:]
    return out


def _epoch_seed(seed: int, epoch: int) -> int:
    return (seed * 1_000_003 + epoch * 7_919) % (2**31)


def train_epoch(model: SpikingClassifier, optimiser: torch.optim.Optimizer, x: np.ndarray, y: np.ndarray,
                cfg: TrainConfig, epoch: int, device: torch.device, on_batch: ProgressFn | None = None) -> tuple[float, float]:
    """One pass over the training set. Returns (mean loss, accuracy)."""
    model.train()
    seed = _epoch_seed(cfg.seed, epoch)
    torch.manual_seed(seed)
    order = np.random.default_rng(seed).permutation(len(x))
    enc_rng = np.random.default_rng(seed + 1)
    aug_rng = np.random.default_rng(seed + 2)
    n_batches = math.ceil(len(x) / cfg.batch_size)
    total_loss = total_correct = total_seen = 0.0
    for b in range(n_batches):
        idx = order[b * cfg.batch_size:(b + 1) * cfg.batch_size]
        xb = encode_batch(augment(x[idx], aug_rng, cfg.time_shift), cfg.input_spec(), enc_rng, cfg.model.input_shape)
        yb = torch.from_numpy(y[idx]).to(device)
        scores = model(to_time_major(xb, device))
        loss = F.cross_entropy(scores, yb, label_smoothing=cfg.label_smoothing)
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        optimiser.step()
        total_loss += loss.item() * len(idx)
        total_correct += (scores.argmax(1) == yb).sum().item()
        total_seen += len(idx)
        if on_batch:
            on_batch(b + 1, n_batches, total_loss / total_seen, total_correct / total_seen)
    return total_loss / max(total_seen, 1), total_correct / max(total_seen, 1)


def _accuracy(model, x, y, cfg, device) -> float:
    if len(x) == 0:
        return float("nan")
    pred = predict(model, x, spec=cfg.input_spec(), seed=cfg.seed, device=device)
    return float((pred == y).mean())


def train(cfg: TrainConfig, data, run: RunPaths, *, resume: bool = False,
          on_epoch_start: Callable[[int, int, int], None] | None = None,
          on_batch: ProgressFn | None = None,
          on_epoch_end: Callable[[EpochReport], None] | None = None) -> dict:
    """Train (or resume) the run described by `cfg` on `data`, writing everything into `run`. Returns metrics."""
    device = resolve_device(cfg.device)
    if len(data.x["train"]) == 0:
        raise NeurostackError(f"{cfg.data}: split '{cfg.split}' leaves no training data")
    torch.manual_seed(cfg.seed)
    model = build_model(cfg.model).to(device)
    if not resume or not run.last_checkpoint.is_file():
        n = min(len(data.x["train"]), 256)
        sample = encode_batch(data.x["train"][:n], cfg.input_spec(), np.random.default_rng(cfg.seed),
                              cfg.model.input_shape)
        calibrate_init(model, to_time_major(sample, device), cfg.model.init_std)
    optimiser = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimiser, T_max=max(cfg.epochs, 1))
    history: list[dict] = []
    start_epoch, best_val, best_epoch = 1, -1.0, 0
    if resume and run.last_checkpoint.is_file():
        state = load_checkpoint(run.last_checkpoint)
        try:
            model.load_state_dict(state["model"])
            optimiser.load_state_dict(state["optimiser"])
            scheduler.load_state_dict(state["scheduler"])
        except (KeyError, RuntimeError, ValueError) as exc:
            raise NeurostackError(f"{run.last_checkpoint}: does not fit this run's model ({str(exc).splitlines()[0][:120]})") from None
        history = list(state["history"])
        start_epoch, best_val, best_epoch = int(state["epoch"]) + 1, float(state["best_val"]), int(state["best_epoch"])

    params = count_parameters(model)
    train_start = time.perf_counter()
    for epoch in range(start_epoch, cfg.epochs + 1):
        t0 = time.perf_counter()
        if on_epoch_start:
            on_epoch_start(epoch, cfg.epochs, math.ceil(len(data.x["train"]) / cfg.batch_size))
        loss, acc = train_epoch(model, optimiser, data.x["train"], data.y["train"], cfg, epoch, device, on_batch)
        scheduler.step()
        if not math.isfinite(loss):
            raise NeurostackError(f"training diverged at epoch {epoch} (loss {loss}); try a lower --lr")
        val_acc = _accuracy(model, data.x["val"], data.y["val"], cfg, device)
        val_for_choice = val_acc if math.isfinite(val_acc) else acc
        is_best = val_for_choice > best_val
        if is_best:
            best_val, best_epoch = val_for_choice, epoch
            save_weights(run.best_weights, model)
        seconds = time.perf_counter() - t0
        history.append({"epoch": epoch, "train_loss": loss, "train_accuracy": acc,
                        "val_accuracy": val_acc, "seconds": seconds})
        save_checkpoint(run.last_checkpoint, {
            "model": model.state_dict(), "optimiser": optimiser.state_dict(), "scheduler": scheduler.state_dict(),
            "epoch": epoch, "history": history, "best_val": best_val, "best_epoch": best_epoch})
        if on_epoch_end:
            on_epoch_end(EpochReport(epoch, cfg.epochs, loss, acc, val_acc, seconds, is_best))

    # Final evaluation with the best epoch's weights.
    load_weights(run.best_weights, model)
    pred = predict(model, data.x["test"], spec=cfg.input_spec(), seed=cfg.seed, device=device)
    test_acc = float((pred == data.y["test"]).mean()) if len(pred) else float("nan")
    cm = confusion_matrix(data.y["test"], pred, len(data.classes))
    metrics = {
        "test_accuracy": test_acc,
        "val_accuracy": best_val,
        "best_epoch": best_epoch,
        "epochs": cfg.epochs,
        "params": params,
        "train_seconds": round(sum(h["seconds"] for h in history), 2),
        "seconds_this_session": round(time.perf_counter() - train_start, 2),
        "device": str(device),
        "data": {"spec": cfg.data, "split": cfg.split, "classes": list(data.classes),
                 "n": {k: int(len(v)) for k, v in data.y.items()}},
        "history": history,
        "test_confusion": cm.tolist(),
    }
    write_json(run.metrics, metrics)
    if history:
        plot_training_curve(history, run.curve_png)
    plot_confusion(cm, list(data.classes), run.confusion_png)
    return metrics
