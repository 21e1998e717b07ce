"""The layout of a run directory, and loading a trained model back from one."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

from neurostack.errors import NeurostackError


@dataclass(frozen=True)
class RunPaths:
    """Files of one training run."""

    root: Path

    @property
    def config(self) -> Path:
        return self.root / "config.json"

    @property
    def metrics(self) -> Path:
        return self.root / "metrics.json"

    @property
    def last_checkpoint(self) -> Path:
        return self.root / "checkpoints" / "last.pt"

    @property
    def best_weights(self) -> Path:
        return self.root / "best.safetensors"

    @property
    def curve_png(self) -> Path:
        return self.root / "training_curve.png"

    @property
    def confusion_png(self) -> Path:
        return self.root / "confusion_matrix.png"


def read_config(run: RunPaths):
    """The run's `TrainConfig`; a missing or broken config.json is a user error naming the file."""
    from neurostack.train.config import TrainConfig

    if not run.root.is_dir():
        raise NeurostackError(f"{run.root}: no such run directory")
    if not run.config.is_file():
        raise NeurostackError(f"{run.root}: not a neurostack run directory (no config.json)")
    try:
        raw = json.loads(run.config.read_text())
    except (ValueError, UnicodeDecodeError) as exc:
        raise NeurostackError(f"{run.config}: unreadable run config ({exc})") from None
    if not isinstance(raw, dict) or not isinstance(raw.get("model", {}), dict) \
            or not isinstance(raw.get("augment", {}), dict):
        raise NeurostackError(f"{run.config}: not a neurostack run config (expected an object whose 'model' and "
                              f"'augment' are objects)")
    try:
        cfg = TrainConfig.from_dict(raw)
        check_config(cfg)
    except NeurostackError as exc:
        raise NeurostackError(f"{run.config}: {exc}") from None
    except (ValueError, TypeError, KeyError, AttributeError) as exc:
        raise NeurostackError(f"{run.config}: unreadable run config ({type(exc).__name__}: {exc})") from None
    return cfg


_TYPES = {"str": str, "int": int, "float": (int, float), "bool": bool, "dict": dict, "str | None": (str, type(None)),
          "tuple[int, ...]": tuple}
_AT_LEAST_ONE = ("epochs", "batch_size", "steps", "steps_per_frame")


def check_config(cfg) -> None:
    """Raise NeurostackError unless every field of the run config (and its model and augmentation configs) has
    the type its dataclass declares, the counts are >= 1, the learning rate > 0 and the input spec is valid:
    a config.json edited by hand must fail here, not deep inside training."""
    from dataclasses import fields, is_dataclass

    from neurostack.data import ENCODERS, FeatureConfig
    from neurostack.frontend.surrogate import SURROGATES

    def walk(obj, prefix: str) -> None:
        for f in fields(obj):
            value = getattr(obj, f.name)
            if is_dataclass(value):
                walk(value, f"{prefix}{f.name}.")
                continue
            want = _TYPES.get(str(f.type))
            if want is None:
                continue
            wrong = not isinstance(value, want) or (str(f.type) != "bool" and isinstance(value, bool))
            if not wrong and isinstance(value, float) and not math.isfinite(value):
                wrong = True
            if wrong:
                raise NeurostackError(f"{prefix}{f.name} = {value!r:.40}: expected {f.type}")

    walk(cfg, "")
    for key in _AT_LEAST_ONE:
        if getattr(cfg, key) < 1:
            raise NeurostackError(f"{key} = {getattr(cfg, key)}: must be at least 1")
    if not cfg.lr > 0:
        raise NeurostackError(f"lr = {cfg.lr}: must be positive")
    if cfg.encoder not in ENCODERS:
        raise NeurostackError(f"unknown encoder {cfg.encoder!r}; use one of {', '.join(ENCODERS)}")
    cfg.input_spec().check()
    if cfg.features:
        FeatureConfig.from_dict(cfg.features)
    if cfg.model.surrogate not in SURROGATES:
        raise NeurostackError(f"unknown surrogate {cfg.model.surrogate!r}; use one of {', '.join(SURROGATES)}")


def check_model_config(path: Path, model_cfg) -> None:
    """Refuse (NeurostackError naming `path`) a model config with sizes that are not positive or that would not
    fit in memory: the first layer alone needs about 4 bytes x input size x its width."""
    from neurostack.memory import check_memory

    sizes = {"input_shape": tuple(model_cfg.input_shape), "hidden": tuple(getattr(model_cfg, "hidden", ())),
             "channels": tuple(getattr(model_cfg, "channels", ())), "n_classes": (model_cfg.n_classes,)}
    for key, values in sizes.items():
        if not values and key in ("input_shape", "n_classes"):
            raise NeurostackError(f"{path}: the model's {key} is empty")
        if any(not isinstance(v, int) or isinstance(v, bool) or v < 1 for v in values):
            raise NeurostackError(f"{path}: the model's {key} {list(values)} must be positive integers")
    widths = [*sizes["hidden"], *sizes["channels"], int(getattr(model_cfg, "dim", 1) or 1), model_cfg.n_classes]
    check_memory(4 * math.prod(sizes["input_shape"]) * max(widths),
                 f"{path}: building its model (input {sizes['input_shape']}, layers up to {max(widths)} wide)")


def load_trained_model(root: str | Path):
    """(TrainConfig, model with the best epoch's weights, on the CPU, in eval mode) from a run directory."""
    from neurostack.frontend.models import build_model
    from neurostack.train.checkpoint import load_weights

    run = RunPaths(Path(root))
    cfg = read_config(run)
    check_model_config(run.config, cfg.model)
    try:
        model = build_model(cfg.model)
    except NeurostackError as exc:
        raise NeurostackError(f"{run.config}: {exc}") from None
    load_weights(run.best_weights, model)
    return cfg, model.eval()
