"""The resolved configuration of a training run, saved as `config.json` so the run can be repeated."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields

from neurostack.frontend.models import ModelConfig


@dataclass
class TrainConfig:
    """Everything that decides a run's numbers. Same config + same seed on the CPU -> same weights."""

    data: str = "synth-digits"
    split: str = "standard"
    data_seed: int = 0  # decides the data set itself (synthesis, validation split), not the training
    features: dict = field(default_factory=dict)  # FeatureConfig fields (kind, n_bins, hop_s, ...)
    encoder: str = "none"  # none (real-valued current) | rate | latency | delta
    steps_per_frame: int = 1
    model: ModelConfig = field(default_factory=ModelConfig)
    epochs: int = 20
    batch_size: int = 64
    lr: float = 2e-3
    weight_decay: float = 1e-4
    label_smoothing: float = 0.0
    seed: int = 0
    device: str = "auto"
    cache_dir: str | None = None

    def to_dict(self) -> dict:
        d = asdict(self)
        d["model"] = self.model.to_dict()
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "TrainConfig":
        known = {f.name for f in fields(cls)}
        kw = {k: v for k, v in d.items() if k in known and k != "model"}
        return cls(model=ModelConfig.from_dict(d.get("model", {})), **kw)
