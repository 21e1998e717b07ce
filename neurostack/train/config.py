"""The resolved configuration of a training run, saved as `config.json` so the run can be repeated."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields

from neurostack.frontend.models import ModelConfig
from neurostack.train.augment import AugmentConfig


@dataclass
class TrainConfig:
    """Everything that decides a run's numbers. Same config + same seed on the CPU -> same weights."""

    data: str = "synth-digits"
    split: str = "standard"
    data_seed: int = 0  # decides the data set itself (synthesis, validation split), not the training
    features: dict = field(default_factory=dict)  # FeatureConfig fields (kind, n_bins, hop_s, ...)
    view: str = "image"  # image: the whole feature matrix at every step | sequence: one frame per step
    encoder: str = "none"  # none (real-valued current) | rate | latency | delta
    steps: int = 25  # time steps per sample in the image view
    steps_per_frame: int = 1  # sequence view, rate/latency encoders
    model: ModelConfig = field(default_factory=ModelConfig)
    epochs: int = 30
    batch_size: int = 64
    lr: float = 2e-3
    weight_decay: float = 1e-4
    label_smoothing: float = 0.0
    augment: AugmentConfig = field(default_factory=AugmentConfig)  # training-time augmentation (train/augment.py)
    grad_clip: float = 0.0  # clip the gradient's global norm to this (0: off)
    patience: int = 0  # early stopping: stop after this many epochs without a better validation accuracy (0: off)
    ema: float = 0.0  # weight averaging: decay of an exponential moving average of the weights per step (0: off)
    seed: int = 0
    device: str = "auto"
    cache_dir: str | None = None

    def input_spec(self):
        from neurostack.inputs import InputSpec

        return InputSpec(self.view, self.encoder, self.steps, self.steps_per_frame)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["model"] = self.model.to_dict()
        d["augment"] = self.augment.to_dict()
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "TrainConfig":
        known = {f.name for f in fields(cls)}
        kw = {k: v for k, v in d.items() if k in known and k not in ("model", "augment")}
        if "augment" in d:
            augment = AugmentConfig.from_dict(d["augment"])
        else:  # a run from before augment.py: its only augmentation was the time shift
            augment = AugmentConfig.off()
            augment.time_shift = int(d.get("time_shift", 4))
        return cls(model=ModelConfig.from_dict(d.get("model", {})), augment=augment, **kw)
