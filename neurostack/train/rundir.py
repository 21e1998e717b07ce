"""The layout of a run directory, and loading a trained model back from one."""

from __future__ import annotations

import json
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
    """The run's `TrainConfig`; a missing or broken config.json is a user error."""
    from neurostack.train.config import TrainConfig

    if not run.root.is_dir():
        raise NeurostackError(f"{run.root}: no such run directory")
    if not run.config.is_file():
        raise NeurostackError(f"{run.root}: not a neurostack run directory (no config.json)")
    try:
        return TrainConfig.from_dict(json.loads(run.config.read_text()))
    except (ValueError, TypeError) as exc:
        raise NeurostackError(f"{run.config}: unreadable run config ({exc})") from None


def load_trained_model(root: str | Path):
    """(TrainConfig, model with the best epoch's weights, on the CPU, in eval mode) from a run directory."""
    from neurostack.frontend.models import build_model
    from neurostack.train.checkpoint import load_weights

    run = RunPaths(Path(root))
    cfg = read_config(run)
    model = build_model(cfg.model)
    load_weights(run.best_weights, model)
    return cfg, model.eval()
