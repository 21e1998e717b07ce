"""One `neurostack train` invocation: resolve the config, load data, train with a progress bar, report.

Kept apart from the CLI so that scripts (and `torchrun`) can call `run_training` directly.
"""

from __future__ import annotations

import signal
import sys
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from neurostack.atomic import write_json
from neurostack.errors import NeurostackError
from neurostack.frontend.models import MODEL_DEFAULTS, MODELS, TRAINING_KEYS, ModelConfig, model_input_shape
from neurostack.frontend.surrogate import SURROGATES
from neurostack.train.augment import AugmentConfig
from neurostack.train.config import TrainConfig
from neurostack.train.rundir import RunPaths, read_config

DEFAULT_EPOCHS = 30


def _parse_hidden(hidden: str | None, default: tuple[int, ...] = (512,)) -> tuple[int, ...]:
    if hidden is None:
        return tuple(default)
    try:
        sizes = tuple(int(h) for h in hidden.split(",") if h.strip())
    except ValueError:
        raise NeurostackError(f"--hidden '{hidden}': expected sizes like 256 or 256,128") from None
    if not sizes or min(sizes) < 1:
        raise NeurostackError(f"--hidden '{hidden}': expected positive sizes like 256 or 256,128")
    return sizes


def resolve_augment(augment: bool = True, preset: dict | None = None, **kinds) -> AugmentConfig:
    """The augmentation of a run: the model's preset (AugmentConfig fields; None: the AugmentConfig defaults) or
    none with augment=False, then each kind given (not None)."""
    if not augment:
        cfg = AugmentConfig.off()
    elif preset is not None:
        cfg = AugmentConfig.from_dict({**AugmentConfig.off().to_dict(), **preset})
    else:
        cfg = AugmentConfig()
    for name, value in kinds.items():
        if value is not None:
            if value < 0:
                raise NeurostackError(f"--{name.replace('_', '-')} {value}: must be >= 0")
            setattr(cfg, name, type(getattr(cfg, name))(value))
    if cfg.time_stretch >= 1:
        raise NeurostackError("--time-stretch is a relative stretch: use a value below 1 (e.g. 0.1)")
    if cfg.vtlp >= 1:
        raise NeurostackError("--vtlp is a relative frequency warp: use a value below 1 (e.g. 0.1)")
    return cfg


def resolve_config(*, data, split, model_name, epochs, batch_size, lr, hidden, view, encoder, steps, steps_per_frame,
                   feature_kind, n_bins, surrogate, device, seed, cache_dir, dropout=None, weight_decay=1e-4,
                   label_smoothing=0.0, patience=0, augment=True, augment_kinds=None, model_options=None,
                   ema=None) -> TrainConfig:
    """Check the options a user gave and build the run's config (input shape is filled in from the data).

    Options left as None take the model's defaults (`MODEL_DEFAULTS`): view, steps, hidden, lr, dropout, ema, and
    the augmentation `augment` (True, the default) switches on. `augment_kinds` maps AugmentConfig fields to
    values (None: that default); `model_options` sets ModelConfig fields (dim, depth, heads, max_delay, ...)."""
    from neurostack.data import ENCODERS

    if model_name not in MODELS:
        raise NeurostackError(f"unknown model '{model_name}': choose one of {', '.join(MODELS)}")
    if encoder not in ENCODERS:
        raise NeurostackError(f"unknown encoder '{encoder}': choose one of {', '.join(ENCODERS)}")
    if surrogate not in SURROGATES:
        raise NeurostackError(f"unknown surrogate '{surrogate}': choose one of {', '.join(SURROGATES)}")
    defaults = dict(MODEL_DEFAULTS.get(model_name, {}))
    view = view or defaults.pop("view", "image")
    steps = steps or defaults.pop("steps", 25)
    lr = lr or defaults.pop("lr", 2e-3)
    hidden_sizes = _parse_hidden(hidden, defaults.pop("hidden", (512,)))
    grad_clip = defaults.pop("grad_clip", 0.0)
    hop_s = defaults.pop("hop_s", None)
    ema = ema if ema is not None else defaults.pop("ema", 0.0)
    if not 0.0 <= ema < 1.0:
        raise NeurostackError(f"--ema {ema}: the averaging decay must be in [0, 1) (e.g. 0.99; 0: off)")
    augment_preset = defaults.pop("augment", None)
    for k in TRAINING_KEYS:
        defaults.pop(k, None)
    model_fields = {**defaults, **{k: v for k, v in (model_options or {}).items() if v is not None}}
    if dropout is not None:
        model_fields["dropout"] = dropout
    try:
        model = ModelConfig(name=model_name, hidden=hidden_sizes, surrogate=surrogate, **model_fields)
    except TypeError as exc:
        raise NeurostackError(f"bad model option: {exc}") from None
    if model_name == "spikformer" and model.dim % model.heads:
        raise NeurostackError(f"--dim {model.dim} must be a multiple of --heads {model.heads}")
    features = {"kind": feature_kind, "n_bins": n_bins}
    if view == "image":
        features["hop_s"] = 0.02  # 50 frames per second keeps the flattened image small
    elif hop_s:
        features["hop_s"] = hop_s
    cfg = TrainConfig(data=data, split=split, view=view, encoder=encoder, steps=steps, steps_per_frame=steps_per_frame,
                       features=features, model=model,
                       epochs=epochs or DEFAULT_EPOCHS, batch_size=batch_size, lr=lr, seed=seed, device=device,
                       cache_dir=cache_dir, weight_decay=weight_decay, label_smoothing=label_smoothing,
                       patience=patience, grad_clip=grad_clip, ema=ema, augment=resolve_augment(augment, augment_preset, **(augment_kinds or {})))
    cfg.input_spec().check()
    return cfg


def load_data(cfg: TrainConfig, *, limit: int | None = None, progress: bool = True):
    """The run's dataset, with its features as configured."""
    from neurostack.data import FeatureConfig, load_dataset

    features = FeatureConfig.from_dict(cfg.features) if cfg.features else FeatureConfig()
    return load_dataset(cfg.data, split=cfg.split, cache_dir=cfg.cache_dir, seed=cfg.data_seed,
                        features=features, progress=progress, limit=limit)


def _fit_model_to_data(cfg: TrainConfig, data) -> None:
    _, frames, bins = data.x["train"].shape if len(data.x["train"]) else data.x["test"].shape
    _, f_enc = cfg.input_spec().feature_shape(frames, bins)
    cfg.model.input_shape = model_input_shape(cfg.model.name, cfg.view, frames, bins, f_enc)
    cfg.model.n_classes = len(data.classes)


def run_training(*, out: Path, resume: bool, limit: int | None = None, console: Console | None = None,
                 **options) -> dict:
    """Train as `neurostack train` does; returns the metrics dict.

    Under `torchrun` every process calls this (see `neurostack.train.distributed`): rank 0 prints, writes the
    run directory and returns the metrics; the others print nothing, return {}, and on an error or an
    interruption leave with the same exit code as rank 0, which reports it in one line."""
    from neurostack.train import distributed

    main = distributed.is_main()
    try:
        return _run_training(out=out, resume=resume, limit=limit, console=console, options=options)
    except NeurostackError as exc:
        if main:
            raise
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:  # Ctrl-C before training started (after, `_run_training` handles it)
        if main:
            raise
        sys.exit(130)
    except RuntimeError as exc:
        if not distributed.lost_contact(exc):
            raise
        if main:
            raise NeurostackError("lost contact with another training process (it failed or was stopped: see its "
                                  "messages and torchrun's summary); continue with --resume") from None
        sys.exit(1)
    finally:
        distributed.shutdown()


def _remove_stale_temporaries(run: RunPaths) -> None:
    """Delete the temporary files of atomic writes that a killed run left (`.NAME.tmp-*`, never trusted)."""
    for folder in (run.root, run.last_checkpoint.parent):
        for tmp in folder.glob(".*.tmp-*"):
            tmp.unlink(missing_ok=True)


def _run_training(*, out: Path, resume: bool, limit: int | None, console: Console | None, options: dict) -> dict:
    from neurostack.train import distributed

    main = distributed.is_main()
    console = console if console is not None and main else Console(stderr=True, quiet=not main)
    run = RunPaths(Path(out))
    if resume:
        if not run.config.is_file():
            raise NeurostackError(f"--resume: {run.root} holds no run to resume (no config.json)")
        cfg = read_config(run)
        if options.get("epochs"):
            cfg.epochs = options["epochs"]
    else:
        if run.config.is_file():
            raise NeurostackError(f"{run.root} already holds a run: pass --resume to continue it, or choose another --out")
        cfg = resolve_config(**options)
    from neurostack.train.loop import resolve_device

    device = resolve_device(cfg.device)  # fail on --device cuda before any slow work
    device = distributed.init_from_env(device)  # under torchrun: join the others (every check above passed)
    failure = None
    try:
        data = load_data(cfg, limit=limit, progress=main)
    except NeurostackError as exc:
        failure = exc
    # A collective: every process waits here until all have loaded the data (so no one writes before all have
    # checked), and all fail together, rank 0 reporting, if any one failed.
    error = distributed.first_error(None if failure is None else str(failure))
    if failure is not None and error == str(failure):
        raise failure
    if error:
        raise NeurostackError(error)
    if not resume:
        _fit_model_to_data(cfg, data)
        if main:
            write_json(run.config, cfg.to_dict())
    elif main:
        _remove_stale_temporaries(run)
    processes = (f", {distributed.world_size()} processes ({'nccl' if device.type == 'cuda' else 'gloo'}, "
                 f"batch {cfg.batch_size} each)" if distributed.is_distributed() else "")
    console.print(f"[bold]neurostack train[/]: {cfg.model.name} on {cfg.data} ({len(data.classes)} classes; "
                  f"train {len(data.y['train'])}, val {len(data.y['val'])}, test {len(data.y['test'])}) "
                  f"on {device}{processes}, {cfg.epochs} epochs -> {run.root}")
    console.print(f"augmentation: {', '.join(cfg.augment.active()) or 'none'}; dropout {cfg.model.dropout:g}, "
                  f"weight decay {cfg.weight_decay:g}, label smoothing {cfg.label_smoothing:g}"
                  + (f", early stopping after {cfg.patience} epochs" if cfg.patience else "")
                  + (f", weight average (EMA {cfg.ema:g})" if cfg.ema else ""))
    from neurostack.train.loop import train

    progress = Progress(TextColumn("epoch {task.fields[epoch]}"), BarColumn(), MofNCompleteColumn(),
                        TextColumn("loss {task.fields[loss]:.3f}  acc {task.fields[acc]:.1%}"),
                        TimeElapsedColumn(), TimeRemainingColumn(), console=console, transient=True,
                        disable=not (main and console.is_terminal))
    task = {}

    def on_epoch_start(epoch, epochs, n_batches):
        if "id" in task:
            progress.remove_task(task["id"])
        task["id"] = progress.add_task("train", total=n_batches, epoch=f"{epoch}/{epochs}", loss=0.0, acc=0.0)

    def on_batch(b, n, loss, acc):
        progress.update(task["id"], completed=b, loss=loss, acc=acc)

    def on_epoch_end(r):
        console.print(f"epoch {r.epoch:>3}/{r.epochs}  loss {r.train_loss:.4f}  train {r.train_accuracy:6.1%}  "
                      f"val {r.val_accuracy:6.1%}  {r.seconds:5.1f}s{'  *best' if r.best else ''}")

    def on_sigterm(signum, frame):
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, on_sigterm)
    try:
        with progress:
            metrics = train(cfg, data, run, resume=resume, on_epoch_start=on_epoch_start, on_batch=on_batch,
                            on_epoch_end=on_epoch_end)
    except KeyboardInterrupt:
        console.print(f"interrupted: the last complete epoch is saved; continue with "
                      f"`neurostack train --out {run.root} --resume`")
        sys.exit(130)
    finally:
        signal.signal(signal.SIGTERM, previous)
    if not main:
        return metrics
    console.print(f"test accuracy {metrics['test_accuracy']:.2%} (best epoch {metrics['best_epoch']}, "
                  f"val {metrics['val_accuracy']:.2%}, {metrics['params']} parameters) -> {run.metrics}")
    return metrics
