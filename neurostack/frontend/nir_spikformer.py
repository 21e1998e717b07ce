"""Spikformer -> NIR: standard primitives in a channels-first token layout, one extension node per attention.

Layout: the model's token tensors (N tokens, D features) are NIR arrays (D, N, 1), channels first, so that every
per-token Linear is a 1x1 Conv2d and the token mean an AvgPool2d; the input (frames F, bins B) is read as the
one-channel image (1, F, B). Node names are the model's (block k's inner nodes start with "bk_"):

  input (1, F, B) -> embed      Conv2d (D, 1, patch, B), stride (patch_stride, B), padding (patch // 2, 0): the
                                model's TokenConv (a Conv1d over frames with bins as channels), embed_bn folded in
                  -> lif_embed  LIF (D, N, 1)
  block k, input x (lif_embed or block{k-1}):
      x -> bk_q_fc, bk_k_fc, bk_v_fc   Conv2d 1x1 (BN folded) -> bk_q_lif, bk_k_lif, bk_v_lif  LIF
      bk_attn       neurostack.SpikingSelfAttention(q, k, v, heads, scale): per head (Q K^T) V * scale
      -> bk_attn_lif (threshold attn_v_th) -> bk_proj_fc -> bk_proj_lif
      bk_res1  = Scale(1) of x + bk_proj_lif          (the residual sums are spike counts)
      bk_res1 -> bk_mlp1_fc -> bk_mlp1_lif (4D, N, 1) -> bk_mlp2_fc -> bk_mlp2_lif
      block{k} = Scale(1) of bk_res1 + bk_mlp2_lif
  -> pool AvgPool2d (N, 1) -> flatten (D,) -> fc_out Affine;  class scores: fc_out averaged over time.

BatchNorm (eval) folds into the synapses before it: W' = W s, b' = beta - mean s with s = gamma / sqrt(var + eps)
per output channel, computed and written in float64 (so a float64 simulation matches the float64 model up to
rounding). LIF parameters are the model's, transposed to (D, N, 1). A learned position embedding (pos_embedding)
has no NIR form here (a constant per-token current) and is refused.
"""

from __future__ import annotations

import nir
import numpy as np
import torch
from torch import nn

from neurostack.errors import NeurostackError
from neurostack.frontend.layers import LIF, SpikformerBlock, TokenBatchNorm, TokenConv, batch_norm_affine
from neurostack.sim.extensions import SpikingSelfAttention


# written into each attention node (visible with h5dump / h5ls -v): what the node is, for whoever finds it
ABOUT = ("neurostack extension node (not a NIR 1.0.8 primitive): spiking self-attention, per head (Q K^T) V * scale "
         "of the spike outputs of the nodes named q, k, v; only neurostack reads it (neurostack simulate)")


def _f64(t: torch.Tensor) -> np.ndarray:
    return t.detach().cpu().numpy().astype(np.float64)


def _bn_scale_shift(bn: TokenBatchNorm) -> tuple[np.ndarray, np.ndarray]:
    """(s, shift) with BN(x) = s x + shift per feature, in float64 (eval mode: running statistics)."""
    s, shift = batch_norm_affine(bn.bn)
    return s.cpu().numpy(), shift.cpu().numpy()


def _tokens(t: torch.Tensor) -> np.ndarray:
    """A (N, D) per-neuron buffer in the graph layout (D, N, 1)."""
    return np.ascontiguousarray(t.detach().cpu().numpy().T[..., None])


def _lif(lif: LIF) -> nir.LIF:
    return nir.LIF(tau=1.0 / _tokens(lif.tau_mem_inv).astype(np.float64), r=np.ones_like(_tokens(lif.v_th)),
                   v_leak=_tokens(lif.v_leak), v_threshold=_tokens(lif.v_th), v_reset=_tokens(lif.v_reset))


def _pointwise(fc: nn.Linear, bn: TokenBatchNorm, n_tokens: int) -> nir.Conv2d:
    """Linear (per token) followed by BN as a 1x1 Conv2d on (D_in, N, 1), BN folded in."""
    s, shift = _bn_scale_shift(bn)
    w = _f64(fc.weight) * s[:, None]
    bias = shift + (_f64(fc.bias) * s if fc.bias is not None else 0.0)
    return nir.Conv2d(input_shape=(n_tokens, 1), weight=w[:, :, None, None], stride=(1, 1), padding=(0, 0),
                      dilation=(1, 1), groups=1, bias=bias)


def _embed(embed: TokenConv, bn: TokenBatchNorm, frames: int, bins: int) -> nir.Conv2d:
    c = embed.conv
    s, shift = _bn_scale_shift(bn)
    w = _f64(c.weight) * s[:, None, None]  # (D, bins, patch)
    bias = shift + (_f64(c.bias) * s if c.bias is not None else 0.0)
    # stride `bins` along the width: the kernel spans the whole width, so there is one output column whatever the
    # stride; nir 1.0.8 computes a Conv2d's output type with weight.shape[2] as the kernel size of both dimensions,
    # and this stride makes its answer (1) right for a (patch, bins) kernel too (while patch <= bins)
    return nir.Conv2d(input_shape=(frames, bins), weight=np.transpose(w, (0, 2, 1))[:, None],  # (D, 1, patch, bins)
                      stride=(int(c.stride[0]), bins), padding=(int(c.padding[0]), 0), dilation=(1, 1), groups=1,
                      bias=bias)


def _block(b, name: str, blk: SpikformerBlock, x: list[str], n_tokens: int) -> list[str]:
    p = blk.prefix
    for part in ("q", "k", "v"):
        b.add(f"{p}{part}_fc", _pointwise(getattr(blk, f"{part}_fc"), getattr(blk, f"{part}_bn"), n_tokens), x)
        b.add(f"{p}{part}_lif", _lif(getattr(blk, f"{part}_lif")), [f"{p}{part}_fc"])
    d = blk.q_fc.out_features
    b.add(f"{p}attn", SpikingSelfAttention(shape=(d, n_tokens, 1), heads=blk.heads, scale=blk.scale,
                                           q=f"{p}q_lif", k=f"{p}k_lif", v=f"{p}v_lif", metadata={"about": ABOUT}),
          [f"{p}q_lif", f"{p}k_lif", f"{p}v_lif"])
    b.add(f"{p}attn_lif", _lif(blk.attn_lif), [f"{p}attn"])
    b.add(f"{p}proj_fc", _pointwise(blk.proj_fc, blk.proj_bn, n_tokens), [f"{p}attn_lif"])
    b.add(f"{p}proj_lif", _lif(blk.proj_lif), [f"{p}proj_fc"])
    res1 = b.add(f"{p}res1", nir.Scale(scale=np.ones((d, n_tokens, 1), np.float32)), x + [f"{p}proj_lif"])
    b.add(f"{p}mlp1_fc", _pointwise(blk.mlp1_fc, blk.mlp1_bn, n_tokens), res1)
    b.add(f"{p}mlp1_lif", _lif(blk.mlp1_lif), [f"{p}mlp1_fc"])
    b.add(f"{p}mlp2_fc", _pointwise(blk.mlp2_fc, blk.mlp2_bn, n_tokens), [f"{p}mlp1_lif"])
    b.add(f"{p}mlp2_lif", _lif(blk.mlp2_lif), [f"{p}mlp2_fc"])
    return b.add(name, nir.Scale(scale=np.ones((d, n_tokens, 1), np.float32)), res1 + [f"{p}mlp2_lif"])


def spikformer_to_nir(model, metadata: dict) -> nir.NIRGraph:
    """The Spikformer `model` (eval mode) as a NIR graph (see the module docstring)."""
    from neurostack.frontend.nir_export import GraphBuilder

    cfg = model.config
    if cfg.pos_embedding:
        raise NeurostackError("spikformer with pos_embedding cannot be exported to NIR: a learned constant current "
                              "per token has no NIR node (train with the default, no position embedding)")
    frames, bins = (int(s) for s in cfg.input_shape)
    stages = dict(zip(model.stage_names, model.stages))
    embed: TokenConv = stages["embed"]
    n_tokens = embed.n_tokens(frames)
    d = embed.conv.out_channels
    b = GraphBuilder()
    with torch.no_grad():
        x = b.add("input", nir.Input(input_type={"input": np.array([1, frames, bins])}), [])
        x = b.add("embed", _embed(embed, stages["embed_bn"], frames, bins), x)
        x = b.add("lif_embed", _lif(stages["lif_embed"]), x)
        for name, stage in stages.items():
            if isinstance(stage, SpikformerBlock):
                x = _block(b, name, stage, x, n_tokens)
        x = b.add("pool", nir.AvgPool2d(kernel_size=(n_tokens, 1), stride=(n_tokens, 1), padding=(0, 0)), x)
        x = b.add("flatten", nir.Flatten(input_type={"input": np.array([d, 1, 1])}, start_dim=-3, end_dim=-1), x)
        fc: nn.Linear = stages["fc_out"].module
        x = b.add("fc_out", nir.Affine(weight=fc.weight.detach().cpu().numpy(),
                                       bias=fc.bias.detach().cpu().numpy()), x)
    b.add("output", nir.Output(output_type={"output": np.array([cfg.n_classes])}), x)
    return b.graph(metadata)


def spikformer_neurons(model) -> dict[str, tuple[str, np.ndarray | None]]:
    """LIF nodes in execution order -> ("LIF", thresholds (D, N, 1) float64)."""
    found = {"lif_embed": ("LIF", _tokens(model.stages[model.stage_names.index("lif_embed")].v_th).astype(np.float64))}
    for stage in model.stages:
        if isinstance(stage, SpikformerBlock):
            for part in ("q", "k", "v", "attn", "proj", "mlp1", "mlp2"):
                found[f"{stage.prefix}{part}_lif"] = ("LIF", _tokens(getattr(stage, f"{part}_lif").v_th)
                                                      .astype(np.float64))
    return found


def token_layout(values: np.ndarray) -> np.ndarray:
    """A recording (S, T, N, D) of token tensors in the graph layout (S, T, D, N, 1); other shapes unchanged."""
    if values.ndim != 4:
        return values
    return np.ascontiguousarray(np.swapaxes(values, 2, 3)[..., None])
