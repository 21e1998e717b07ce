"""The spiking classifiers: ordered stages, each one NIR node, run layer by layer over time.

Tensors are time-major: input (T, B, *input_shape); the readout is a leaky integrator whose voltage,
maximised over time, gives the class scores (B, n_classes). Stage names are the NIR node names that
`neurostack.frontend.nir_export` writes, so recorded spikes compare one to one with the simulator's.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields

import torch
from torch import nn

from neurostack.errors import NeurostackError
from neurostack.frontend.layers import LI, LIF, TimeDistributed

MODELS = ("mlp", "csnn")


@dataclass
class ModelConfig:
    """Architecture and neuron constants. Times in seconds."""

    name: str = "mlp"
    input_shape: tuple[int, ...] = (40,)
    n_classes: int = 10
    hidden: tuple[int, ...] = (256,)
    channels: tuple[int, ...] = (16, 32)  # csnn convolution channels
    kernel_size: int = 5  # csnn, along frequency
    stride: int = 2  # csnn
    dt: float = 1e-3
    tau_mem: float = 0.005
    tau_out: float = 0.005
    v_th: float = 1.0
    surrogate: str = "atan"
    dropout: float = 0.3
    init_std: float = 2.0  # data-dependent init: each synaptic layer's current starts with this std (see calibrate_init)

    def to_dict(self) -> dict:
        d = asdict(self)
        for k in ("input_shape", "hidden", "channels"):
            d[k] = list(d[k])
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "ModelConfig":
        known = {f.name for f in fields(cls)}
        kw = {k: v for k, v in d.items() if k in known}
        for k in ("input_shape", "hidden", "channels"):
            if k in kw:
                kw[k] = tuple(int(v) for v in kw[k])
        return cls(**kw)


class SpikingClassifier(nn.Module):
    """A sequence of named stages; see the module docstring."""

    def __init__(self, config: ModelConfig, stages: list[tuple[str, nn.Module]]):
        super().__init__()
        self.config = config
        self.stage_names = [name for name, _ in stages]
        self.stages = nn.ModuleList([m for _, m in stages])

    def run(self, x: torch.Tensor, record: bool = False, record_voltages: bool = False):
        """x: (T, B, *input_shape). Returns (readout voltages (T, B, C), outputs, voltages).

        outputs/voltages map stage name -> (T, B, *shape) when recording (empty dicts otherwise).
        """
        outputs: dict[str, torch.Tensor] = {}
        voltages: dict[str, torch.Tensor] = {}
        h = x
        for name, stage in zip(self.stage_names, self.stages):
            if isinstance(stage, (LIF, LI)) and record_voltages:
                h, v = stage(h, record_voltage=True)
                voltages[name] = v
            else:
                h = stage(h)
            if record and not isinstance(stage, nn.Dropout):
                outputs[name] = h
        return h, outputs, voltages

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (T, B, *input_shape) -> class scores (B, C): the readout voltage's maximum over time."""
        v, _, _ = self.run(x)
        return v.max(dim=0).values


def _mlp(cfg: ModelConfig) -> list[tuple[str, nn.Module]]:
    stages: list[tuple[str, nn.Module]] = []
    n_in = cfg.input_shape[0] if len(cfg.input_shape) == 1 else int(torch.tensor(cfg.input_shape).prod())
    for k, n in enumerate(cfg.hidden, start=1):
        stages.append((f"fc{k}", TimeDistributed(nn.Linear(n_in, n))))
        stages.append((f"lif{k}", LIF((n,), cfg.tau_mem, cfg.dt, cfg.v_th, cfg.surrogate)))
        if cfg.dropout > 0:
            stages.append((f"drop{k}", nn.Dropout(cfg.dropout)))
        n_in = n
    stages.append(("fc_out", TimeDistributed(nn.Linear(n_in, cfg.n_classes))))
    stages.append(("li_out", LI((cfg.n_classes,), cfg.tau_out, cfg.dt)))
    return stages


def _csnn(cfg: ModelConfig) -> list[tuple[str, nn.Module]]:
    """Strided convolutions over the (frames, bins) image (Conv2d) or along frequency (Conv1d, streaming)."""
    if len(cfg.input_shape) not in (2, 3):
        raise NeurostackError(f"csnn needs input shaped (1, bins) or (1, frames, bins), got {cfg.input_shape}")
    c_in, *size = cfg.input_shape
    conv_cls = nn.Conv2d if len(size) == 2 else nn.Conv1d
    stages: list[tuple[str, nn.Module]] = []
    pad = cfg.kernel_size // 2
    for k, c in enumerate(cfg.channels, start=1):
        conv = conv_cls(c_in, c, cfg.kernel_size, stride=cfg.stride, padding=pad)
        size = [(s + 2 * pad - cfg.kernel_size) // cfg.stride + 1 for s in size]
        stages.append((f"conv{k}", TimeDistributed(conv)))
        stages.append((f"lif_c{k}", LIF((c, *size), cfg.tau_mem, cfg.dt, cfg.v_th, cfg.surrogate)))
        c_in = c
    stages.append(("flatten", TimeDistributed(nn.Flatten())))
    n_in = c_in * int(torch.tensor(size).prod())
    for k, n in enumerate(cfg.hidden, start=1):
        stages.append((f"fc{k}", TimeDistributed(nn.Linear(n_in, n))))
        stages.append((f"lif{k}", LIF((n,), cfg.tau_mem, cfg.dt, cfg.v_th, cfg.surrogate)))
        if cfg.dropout > 0:
            stages.append((f"drop{k}", nn.Dropout(cfg.dropout)))
        n_in = n
    stages.append(("fc_out", TimeDistributed(nn.Linear(n_in, cfg.n_classes))))
    stages.append(("li_out", LI((cfg.n_classes,), cfg.tau_out, cfg.dt)))
    return stages


_BUILDERS = {"mlp": _mlp, "csnn": _csnn}


def model_input_shape(name: str, view: str, frames: int, bins: int, values_per_step: int) -> tuple[int, ...]:
    """The per-step input shape of model `name`: the csnn sees an image (1, frames, bins) or a spectrum (1, bins)."""
    if name == "csnn":
        return (1, frames, bins) if view == "image" else (1, values_per_step)
    return (values_per_step,)


def build_model(config: ModelConfig) -> SpikingClassifier:
    """Build the model named in `config` (one of `MODELS`)."""
    if config.name not in _BUILDERS:
        raise NeurostackError(f"unknown model '{config.name}': choose one of {', '.join(MODELS)}")
    return SpikingClassifier(config, _BUILDERS[config.name](config))


@torch.no_grad()
def calibrate_init(model: SpikingClassifier, x: torch.Tensor, target_std: float = 1.0) -> None:
    """Data-dependent init (in the spirit of LSUV): scale each synaptic stage, first to last, so that the
    current it drives on the batch `x` (T, B, *input_shape) has standard deviation `target_std` (in units of
    the threshold), so every layer starts out spiking whatever the input's scale."""
    was_training = model.training
    model.eval()
    for name, stage in zip(model.stage_names, model.stages):
        if not isinstance(stage, TimeDistributed) or not isinstance(stage.module, (nn.Linear, nn.Conv1d, nn.Conv2d)):
            continue
        _, outs, _ = model.run(x, record=True)
        std = float(outs[name].std())
        if std > 0:
            stage.module.weight.mul_(target_std / std)
            if stage.module.bias is not None:
                stage.module.bias.mul_(target_std / std)
    model.train(was_training)


def count_parameters(model: nn.Module) -> int:
    """Trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
