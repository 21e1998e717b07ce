"""The spiking classifiers: ordered stages, each one NIR node, run layer by layer over time.

Tensors are time-major: input (T, B, *input_shape); the readout is a leaky integrator whose voltage,
maximised over time, gives the class scores (B, n_classes). Stage names are the NIR node names that
`neurostack.frontend.nir_export` writes, so recorded spikes compare one to one with the simulator's.

The models (`MODELS`):
- `mlp`: Linear -> LIF layers, LI readout (image view).
- `csnn`: strided convolutions + LIF, then the mlp head (image view).
- `spikformer`: Spikformer (Zhou et al. 2023) for audio, image view. The spiking patch-splitting head is
  replaced by a linear projection of the input frames to the embedding dimension: the input at every step is
  the whole (frames, bins) matrix, and each token is the projection of a window of `patch` consecutive frames,
  one every `patch_stride` frames (`layers.TokenConv`; patch 1, stride 1: one token per frame), so the
  attention runs across time. Then BN, an optional learned position current (`pos_embedding`; off by
  default: without it the model is shift-invariant in time, which generalises far better to new speakers),
  LIF, `depth` Spikformer blocks (spiking self-attention + spiking MLP, `layers.SpikformerBlock`), the mean
  over tokens and a Linear head; the class scores are the head's output averaged over time (readout "mean").
- `adlif`: Linear -> recurrent layers of adaptive LIF neurons with learnable time constants and a
  spike-triggered adaptation current (`functional.adlif_step`, `layers.AdLIFRecurrent`; inner nodes lif_k,
  rec_k, adapt_k), LI readout averaged over time. Image view by default (it learns in minutes there, like the
  mlp); `--view sequence` streams frames, where it learns far more slowly (about 0.6 validation accuracy on
  FSDD after 30 epochs, against 0.9 for a GRU).
- `delay`: feed-forward LIF layers whose synapses each have a learnable delay (DCLS-delays style,
  `layers.DelayedLinear`), rounded to whole steps for evaluation and export, each layer's current normalised by
  BatchNorm (folded into the synapses at export); LI readout averaged over time; sequence view (delays need an
  input that changes over time), frames every 10 ms, delays of up to 24 steps (0.24 s).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields

import torch
from torch import nn

from neurostack.errors import NeurostackError
from neurostack.frontend.layers import (LI, LIF, AdLIFRecurrent, DelayedLinear, PositionEmbedding, SpikformerBlock,
                                        TimeDistributed, TokenBatchNorm, TokenConv, TokenMean)

MODELS = ("mlp", "csnn", "spikformer", "adlif", "delay")

# Per-model defaults the `train` command uses for options the user leaves out: the training options view, steps,
# hidden, lr, grad_clip, hop_s (feature frame hop, s), ema (weight-average decay, `neurostack.train.loop`) and
# augment (AugmentConfig fields switched on by --augment, the default), and ModelConfig fields; each model where
# it trains well on the CPU in minutes.
TRAINING_KEYS = ("view", "steps", "hidden", "lr", "grad_clip", "hop_s", "augment", "ema")
# Augmentation that helps the zoo models on unseen speakers (FSDD speaker split, see benchmarks/zoo.py); the mlp
# and csnn keep the time shift alone, which is what they were tuned with (the others did not help the mlp there).
ZOO_AUGMENT = {"time_shift": 4, "time_stretch": 0.1, "freq_shift": 1.0, "tilt": 0.3, "time_mask": 1, "freq_mask": 1}
MODEL_DEFAULTS: dict[str, dict] = {
    "mlp": {"view": "image", "steps": 25, "hidden": (512,)},
    # weight averaging chosen on the fsdd-dev speakers (benchmarks/zoo_results.md, third round)
    "csnn": {"view": "image", "steps": 25, "hidden": (512,), "ema": 0.99},
    "spikformer": {"view": "image", "steps": 4, "tau_mem": 0.002, "dropout": 0.1, "augment": ZOO_AUGMENT},
    "adlif": {"view": "image", "steps": 25, "hidden": (512,), "grad_clip": 1.0, "tau_out": 0.02, "dropout": 0.2,
              "readout": "mean", "augment": ZOO_AUGMENT},
    # batch_norm and delay_scale (fourth round), 10 ms frames with max_delay 25 (fifth round): chosen on the fsdd-dev
    # speakers (benchmarks/zoo_results.md)
    "delay": {"view": "sequence", "hop_s": 0.01, "hidden": (256, 128), "lr": 5e-3, "grad_clip": 1.0, "max_delay": 25,
              "tau_out": 0.02, "dropout": 0.2, "readout": "mean", "batch_norm": True, "delay_scale": 10.0,
              "augment": ZOO_AUGMENT},
}


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
    readout: str = "auto"  # class scores from the readout over time: max | mean | auto (mean for spikformer, else max)
    # spikformer
    dim: int = 64
    depth: int = 2
    heads: int = 4
    mlp_ratio: int = 4
    patch: int = 5  # frames per token
    patch_stride: int = 2  # frames between tokens
    pos_embedding: bool = False
    # adlif: time constants are learned per neuron, initialised uniformly in [tau_mem, 5 tau_mem] and
    # [tau_adapt / 5, tau_adapt]; adaptation jump per spike initialised uniformly in [0, 2 adapt_jump]
    tau_adapt: float = 0.2
    adapt_jump: float = 0.5
    recurrent: bool = True
    # delay: synaptic delays of 0 .. max_delay - 1 steps; batch_norm: BatchNorm on each DelayedLinear's output
    # (folded into the synapses at export); delay_scale: the delays learn this many times faster than the weights
    max_delay: int = 25
    batch_norm: bool = False
    delay_scale: float = 1.0

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
        self.readout = config.readout if config.readout != "auto" else ("mean" if config.name == "spikformer" else "max")

    def run(self, x: torch.Tensor, record: bool = False, record_voltages: bool = False):
        """x: (T, B, *input_shape). Returns (readout voltages (T, B, C), outputs, voltages).

        outputs/voltages map stage name -> (T, B, *shape) when recording (empty dicts otherwise).
        """
        outputs: dict[str, torch.Tensor] = {}
        voltages: dict[str, torch.Tensor] = {}
        h = x
        for name, stage in zip(self.stage_names, self.stages):
            if getattr(stage, "records_internally", False):
                h = stage(h, outputs if record else None, voltages if record_voltages else None)
            elif isinstance(stage, (LIF, LI)) and record_voltages:
                h, v = stage(h, record_voltage=True)
                voltages[name] = v
            else:
                h = stage(h)
            if record and not isinstance(stage, nn.Dropout):
                outputs[name] = h
        return h, outputs, voltages

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (T, B, *input_shape) -> class scores (B, C): the readout's maximum (or mean) over time."""
        v, _, _ = self.run(x)
        return v.mean(dim=0) if self.readout == "mean" else v.max(dim=0).values

    def set_progress(self, fraction: float) -> None:
        """Tell stages that anneal during training (delays) how far training is, in [0, 1]."""
        for m in self.modules():
            if m is not self and hasattr(m, "set_progress"):
                m.set_progress(fraction)

    def round_delays(self) -> None:
        """Round every learnable delay to whole time steps (what evaluation already uses; for export)."""
        for m in self.modules():
            if isinstance(m, DelayedLinear):
                m.round_delays()


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


def _head(cfg: ModelConfig, n_in: int) -> list[tuple[str, nn.Module]]:
    return [("fc_out", TimeDistributed(nn.Linear(n_in, cfg.n_classes))),
            ("li_out", LI((cfg.n_classes,), cfg.tau_out, cfg.dt))]


def _flat_inputs(cfg: ModelConfig) -> int:
    return int(torch.tensor(cfg.input_shape).prod())


def _spikformer(cfg: ModelConfig) -> list[tuple[str, nn.Module]]:
    """Tokens = feature frames: input (frames, bins) at every step (see the module docstring)."""
    if len(cfg.input_shape) != 2:
        raise NeurostackError(f"spikformer needs input shaped (frames, bins) (use --view image), got {cfg.input_shape}")
    frames, bins = cfg.input_shape
    d = cfg.dim
    embed = TokenConv(bins, d, cfg.patch, cfg.patch_stride)
    n_tokens = embed.n_tokens(frames)
    stages: list[tuple[str, nn.Module]] = [("embed", embed), ("embed_bn", TokenBatchNorm(d))]
    if cfg.pos_embedding:
        stages.append(("pos", PositionEmbedding(n_tokens, d)))
    stages.append(("lif_embed", LIF((n_tokens, d), cfg.tau_mem, cfg.dt, cfg.v_th, cfg.surrogate)))
    for k in range(1, cfg.depth + 1):
        stages.append((f"block{k}", SpikformerBlock(d, cfg.heads, n_tokens, cfg.mlp_ratio, cfg.tau_mem, cfg.dt,
                                                    cfg.v_th, surrogate=cfg.surrogate, dropout=cfg.dropout,
                                                    prefix=f"b{k}_")))
    stages.append(("pool", TokenMean()))
    if cfg.dropout > 0:
        stages.append(("drop_out", nn.Dropout(cfg.dropout)))
    stages.append(("fc_out", TimeDistributed(nn.Linear(d, cfg.n_classes))))
    return stages


def _adlif(cfg: ModelConfig) -> list[tuple[str, nn.Module]]:
    """fc_k -> adaptive recurrent LIF layer lif_k (with rec_k, adapt_k inside) per hidden size; LI readout."""
    stages: list[tuple[str, nn.Module]] = []
    n_in = _flat_inputs(cfg)
    for k, n in enumerate(cfg.hidden, start=1):
        stages.append((f"fc{k}", TimeDistributed(nn.Linear(n_in, n))))
        stages.append((f"lif{k}", AdLIFRecurrent(
            n, cfg.dt, tau_mem=(cfg.tau_mem, 5 * cfg.tau_mem), tau_adapt=(cfg.tau_adapt / 5, cfg.tau_adapt),
            jump_init=cfg.adapt_jump, v_th=cfg.v_th, surrogate=cfg.surrogate, recurrent=cfg.recurrent,
            lif_name=f"lif{k}", rec_name=f"rec{k}", adapt_name=f"adapt{k}")))
        if cfg.dropout > 0:
            stages.append((f"drop{k}", nn.Dropout(cfg.dropout)))
        n_in = n
    return stages + _head(cfg, n_in)


def _delay(cfg: ModelConfig) -> list[tuple[str, nn.Module]]:
    """DelayedLinear fc_k -> LIF lif_k per hidden size; a plain Linear + LI readout."""
    stages: list[tuple[str, nn.Module]] = []
    n_in = _flat_inputs(cfg)
    for k, n in enumerate(cfg.hidden, start=1):
        stages.append((f"fc{k}", DelayedLinear(n_in, n, cfg.max_delay, batch_norm=cfg.batch_norm,
                                                 delay_scale=cfg.delay_scale)))
        stages.append((f"lif{k}", LIF((n,), cfg.tau_mem, cfg.dt, cfg.v_th, cfg.surrogate)))
        if cfg.dropout > 0:
            stages.append((f"drop{k}", nn.Dropout(cfg.dropout)))
        n_in = n
    return stages + _head(cfg, n_in)


_BUILDERS = {"mlp": _mlp, "csnn": _csnn, "spikformer": _spikformer, "adlif": _adlif, "delay": _delay}


def model_input_shape(name: str, view: str, frames: int, bins: int, values_per_step: int) -> tuple[int, ...]:
    """The per-step input shape of model `name`: the csnn sees an image (1, frames, bins) or a spectrum (1, bins);
    the spikformer sees (frames, bins) tokens (image view only); the others a flat vector."""
    if name == "csnn":
        return (1, frames, bins) if view == "image" else (1, values_per_step)
    if name == "spikformer":
        if view != "image":
            raise NeurostackError("spikformer reads the feature frames as tokens: use --view image")
        return (frames, bins)
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
    the threshold), so every layer starts out spiking whatever the input's scale. With the "mean" readout the
    output synapses are then scaled so that the class scores (the readout averaged over time) have that std."""
    was_training = model.training
    model.eval()
    for name, stage in zip(model.stage_names, model.stages):
        if isinstance(stage, DelayedLinear):
            synapses = stage
        elif isinstance(stage, TimeDistributed) and isinstance(stage.module, (nn.Linear, nn.Conv1d, nn.Conv2d)):
            synapses = stage.module
        else:
            continue
        _, outs, _ = model.run(x, record=True)
        std = float(outs[name].std())
        if std > 0:
            synapses.weight.mul_(target_std / std)
            if synapses.bias is not None:
                synapses.bias.mul_(target_std / std)
    if model.readout == "mean" and model.stage_names[-1] in ("fc_out", "li_out"):
        # averaging over time shrinks the scores far below the readout current's scale (silent steps count):
        # scale the output synapses so that the class scores themselves start with std `target_std`
        out = model.stages[model.stage_names.index("fc_out")].module
        std = float(model(x).std())
        if std > 0:
            out.weight.mul_(target_std / std)
            out.bias.mul_(target_std / std)
    model.train(was_training)


def count_parameters(model: nn.Module) -> int:
    """Trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
