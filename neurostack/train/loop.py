"""The training loop: BPTT with surrogate gradients, a checkpoint each epoch, resumable, best epoch on validation.

Reproducibility: every random choice of epoch e (shuffling, encoder noise, dropout, augmentation) is seeded
from (seed, e), so a run resumed from epoch e's checkpoint reaches the same weights as an uninterrupted one.

Under `torchrun` (`neurostack.train.distributed`) each process trains on its shard of the epoch's permutation
with its own noise streams (seeded from (seed, e, rank)); DDP averages the gradients; rank 0 alone validates,
writes checkpoints, weights, metrics and plots.

Against overfitting: augmentation of each training batch (`neurostack.train.augment`, as `cfg.augment` says),
dropout (in the model), AdamW weight decay (not applied to time constants, delays and position embeddings),
label smoothing, and early stopping on the validation split (`cfg.patience`); the best epoch on validation
is the one kept in any case.

Weight averaging (`cfg.ema` > 0): an exponential moving average of the weights (`WeightAverage`), updated after
every optimiser step, is what validation measures, what `best.safetensors` holds and so what is tested and
exported; the raw weights keep training (both are in `last.pt`, so resuming continues both).
"""

from __future__ import annotations

import contextlib
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
from neurostack.train import distributed
from neurostack.train.augment import augment_batch
from neurostack.train.augment import time_shift as _time_shift
from neurostack.train.checkpoint import load_checkpoint, load_weights, save_checkpoint, save_weights, check_state_fits
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
    return _time_shift(x, rng, max_shift)


# Parameters that are not weights: AdamW's decay would pull time constants, delays and embeddings to 0.
_NO_DECAY = ("log_tau_mem", "log_tau_adapt", "jump", "delay", "pos_embedding")


def make_optimiser(model: torch.nn.Module, cfg: TrainConfig) -> torch.optim.Optimizer:
    """AdamW; parameters named in `_NO_DECAY` (and only those) go in a second group without weight decay."""
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        (no_decay if name.rsplit(".", 1)[-1] in _NO_DECAY else decay).append(p)
    groups = [{"params": decay}] + ([{"params": no_decay, "weight_decay": 0.0}] if no_decay else [])
    return torch.optim.AdamW(groups, lr=cfg.lr, weight_decay=cfg.weight_decay)


class WeightAverage:
    """Exponential moving average of a model's state (parameters and floating buffers; integer buffers are
    copied): after update n the average moves towards the weights by 1 - d, d = min(decay, (1 + n) / (10 + n))
    (the warm-up keeps the random initial weights from lingering)."""

    def __init__(self, model: torch.nn.Module, decay: float):
        self.decay = float(decay)
        self.updates = 0
        self.state = {k: v.detach().clone() for k, v in model.state_dict().items()}

    @torch.no_grad()
    def update(self, model: torch.nn.Module) -> None:
        self.updates += 1
        d = min(self.decay, (1 + self.updates) / (10 + self.updates))
        for k, v in model.state_dict().items():
            avg = self.state[k]
            if avg.is_floating_point():
                avg.lerp_(v.detach(), 1.0 - d)
            else:
                avg.copy_(v)

    @contextlib.contextmanager
    def applied(self, model: torch.nn.Module):
        """Within the block `model` holds the averaged weights; its own come back afterwards."""
        own = {k: v.detach().clone() for k, v in model.state_dict().items()}
        model.load_state_dict(self.state)
        try:
            yield model
        finally:
            model.load_state_dict(own)

    def state_dict(self) -> dict:
        return {"state": self.state, "updates": self.updates}

    def load_state_dict(self, saved: dict) -> None:
        self.updates = int(saved["updates"])
        for k, v in saved["state"].items():
            self.state[k].copy_(v)


def _epoch_seed(seed: int, epoch: int) -> int:
    return (seed * 1_000_003 + epoch * 7_919) % (2**31)


def train_epoch(model: SpikingClassifier, optimiser: torch.optim.Optimizer, x: np.ndarray, y: np.ndarray,
                cfg: TrainConfig, epoch: int, device: torch.device, on_batch: ProgressFn | None = None, *,
                net: torch.nn.Module | None = None, average: WeightAverage | None = None) -> tuple[float, float]:
    """One pass over the training set (this process's shard of it when distributed). `net` is what runs the
    batches (`model` in DistributedDataParallel; default `model`); `average`, if given, is updated after every
    step. Returns (mean loss, accuracy) over all processes."""
    net = net if net is not None else model
    model.train()
    model.set_progress((epoch - 1) / max(cfg.epochs, 1))
    seed = _epoch_seed(cfg.seed, epoch)
    order = np.random.default_rng(seed).permutation(len(x))  # the same on every process
    order = distributed.shard_indices(order, distributed.rank(), distributed.world_size())
    seed = distributed.rank_seed(seed)
    torch.manual_seed(seed)
    enc_rng = np.random.default_rng(seed + 1)
    aug_rng = np.random.default_rng(seed + 2)
    n_batches = math.ceil(len(order) / cfg.batch_size)
    total_loss = total_correct = total_seen = 0.0
    for b in range(n_batches):
        idx = order[b * cfg.batch_size:(b + 1) * cfg.batch_size]
        xa, ya, yb_, lam = augment_batch(x[idx], y[idx], cfg.augment, aug_rng)
        xb = encode_batch(xa, cfg.input_spec(), enc_rng, cfg.model.input_shape)
        yb = torch.from_numpy(ya).to(device)
        scores = net(to_time_major(xb, device))
        loss = F.cross_entropy(scores, yb, label_smoothing=cfg.label_smoothing)
        if lam < 1.0:
            loss = lam * loss + (1 - lam) * F.cross_entropy(scores, torch.from_numpy(yb_).to(device),
                                                            label_smoothing=cfg.label_smoothing)
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        if cfg.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        optimiser.step()
        if average is not None:
            average.update(model)
        total_loss += loss.item() * len(idx)
        total_correct += (scores.argmax(1) == yb).sum().item()
        total_seen += len(idx)
        if on_batch:
            on_batch(b + 1, n_batches, total_loss / total_seen, total_correct / total_seen)
    total_loss, total_correct, total_seen = distributed.all_reduce_sum([total_loss, total_correct, total_seen])
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
    """Train (or resume) the run described by `cfg` on `data`, writing everything into `run`. Returns metrics
    (an empty dict on processes other than rank 0, which write nothing)."""
    device = distributed.init_from_env(resolve_device(cfg.device))
    main = distributed.is_main()
    if len(data.x["train"]) == 0:
        raise NeurostackError(f"{cfg.data}: split '{cfg.split}' leaves no training data")
    torch.manual_seed(cfg.seed)
    model = build_model(cfg.model).to(device)
    if not resume or not run.last_checkpoint.is_file():
        n = min(len(data.x["train"]), 256)
        sample = encode_batch(data.x["train"][:n], cfg.input_spec(), np.random.default_rng(cfg.seed),
                              cfg.model.input_shape)
        calibrate_init(model, to_time_major(sample, device), cfg.model.init_std)
    optimiser = make_optimiser(model, cfg)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimiser, T_max=max(cfg.epochs, 1))
    average = WeightAverage(model, cfg.ema) if cfg.ema > 0 else None
    history: list[dict] = []
    start_epoch, best_val, best_epoch = 1, -1.0, 0
    stopped_early = None
    if resume and run.last_checkpoint.is_file():
        state = load_checkpoint(run.last_checkpoint)
        check_state_fits(run.last_checkpoint, state["model"], model)  # names the mismatching tensors
        try:
            model.load_state_dict(state["model"])
            optimiser.load_state_dict(state["optimiser"])
            scheduler.load_state_dict(state["scheduler"])
        except (KeyError, RuntimeError, ValueError) as exc:
            raise NeurostackError(f"{run.last_checkpoint}: does not fit this run's model ({str(exc).splitlines()[0][:120]})") from None
        if average is not None:
            if "ema" in state:
                try:
                    average.load_state_dict(state["ema"])
                except (KeyError, RuntimeError, ValueError, TypeError, AttributeError) as exc:
                    raise NeurostackError(f"{run.last_checkpoint}: its weight average does not fit this run's "
                                          f"model ({str(exc).splitlines()[0][:120]})") from None
            else:  # a checkpoint written without averaging: start the average from its weights
                average = WeightAverage(model, cfg.ema)
        history = list(state["history"])
        start_epoch, best_val, best_epoch = int(state["epoch"]) + 1, float(state["best_val"]), int(state["best_epoch"])

    net = distributed.wrap(model, device)  # after loading: DDP starts every process from rank 0's weights
    params = count_parameters(model)
    train_start = time.perf_counter()
    if cfg.patience > 0 and history and (start_epoch - 1) - best_epoch >= cfg.patience:
        start_epoch = cfg.epochs + 1  # resuming a run that had already stopped early: nothing left to train
    for epoch in range(start_epoch, cfg.epochs + 1):
        t0 = time.perf_counter()
        if on_epoch_start:
            shard = math.ceil(len(data.x["train"]) / distributed.world_size())
            on_epoch_start(epoch, cfg.epochs, math.ceil(shard / cfg.batch_size))
        loss, acc = train_epoch(model, optimiser, data.x["train"], data.y["train"], cfg, epoch, device, on_batch,
                                net=net, average=average)
        scheduler.step()
        if not math.isfinite(loss):
            raise NeurostackError(f"training diverged at epoch {epoch} (loss {loss}); try a lower --lr")
        # what is validated, kept as the best and tested: the averaged weights when averaging
        with average.applied(model) if average is not None else contextlib.nullcontext(model) as evaluated:
            val_acc = distributed.broadcast_float(_accuracy(evaluated, data.x["val"], data.y["val"], cfg, device)
                                                  if main else math.nan)
            val_for_choice = val_acc if math.isfinite(val_acc) else acc
            is_best = val_for_choice > best_val
            if is_best:
                best_val, best_epoch = val_for_choice, epoch
                if main:
                    save_weights(run.best_weights, evaluated)
        seconds = time.perf_counter() - t0
        history.append({"epoch": epoch, "train_loss": loss, "train_accuracy": acc,
                        "val_accuracy": val_acc, "seconds": seconds})
        if main:
            save_checkpoint(run.last_checkpoint, {
                "model": model.state_dict(), "optimiser": optimiser.state_dict(), "scheduler": scheduler.state_dict(),
                "epoch": epoch, "history": history, "best_val": best_val, "best_epoch": best_epoch,
                **({"ema": average.state_dict()} if average is not None else {})})
        if on_epoch_end:
            on_epoch_end(EpochReport(epoch, cfg.epochs, loss, acc, val_acc, seconds, is_best))
        if cfg.patience > 0 and epoch - best_epoch >= cfg.patience and epoch < cfg.epochs:
            stopped_early = epoch
            break
    if stopped_early is None and history and history[-1]["epoch"] < cfg.epochs:
        stopped_early = history[-1]["epoch"]  # resumed a run that had stopped early
    if not main:
        return {}

    # Final evaluation with the best epoch's weights (learnable delays rounded to whole steps, as evaluated).
    load_weights(run.best_weights, model)
    if any(n.rsplit(".", 1)[-1] == "delay" for n, _ in model.named_parameters()):
        model.round_delays()
        save_weights(run.best_weights, model)
    pred = predict(model, data.x["test"], spec=cfg.input_spec(), seed=cfg.seed, device=device)
    test_acc = float((pred == data.y["test"]).mean()) if len(pred) else float("nan")
    cm = confusion_matrix(data.y["test"], pred, len(data.classes))
    metrics = {
        "test_accuracy": test_acc,
        "val_accuracy": best_val,
        "best_epoch": best_epoch,
        "epochs": cfg.epochs,
        "epochs_run": len(history),
        "stopped_early": stopped_early,
        "params": params,
        "epoch_seconds": round(sum(h["seconds"] for h in history) / max(len(history), 1), 3),
        "train_seconds": round(sum(h["seconds"] for h in history), 2),
        "seconds_this_session": round(time.perf_counter() - train_start, 2),
        "device": str(device),
        "processes": distributed.world_size(),
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
