"""Activity of a trained PyTorch model per inference: spikes, synaptic operations (SOPs) and dense MACs.

Counted by running the model (eval mode) with hooks, so it covers every model, exportable or not:
- spikes: the outputs of every spiking neuron module (LIF, adaptive LIF), summed over steps and neurons;
- SOPs: each event arriving at a synaptic layer (Linear, Conv, DelayedLinear) costs one accumulate per
  target it reaches: events x fan-out, with fan-out = out_features for a Linear (and a delayed Linear: one
  delayed synapse each), out_channels x kernel area / stride area for a convolution; an input of spike
  counts (Spikformer residual sums, integers >= 0) counts each spike as an event. Spiking self-attention
  Q K^T V on spike tensors counts one accumulate per (q, k) pair that are both 1 in the same feature, then one
  per non-zero A[n, m] x active v[m, d];
- MACs: a synaptic layer whose input is not spikes or counts (real-valued features, the pooled head) is
  dense: rows x in x out multiply-accumulates.
Neuron state updates and batch norm (which folds into the synapses) are not counted. The simulator's
NeuroBench-style counters (`neurostack.sim`) agree with these SOPs for models it can run.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from neurostack.frontend.layers import LIF, AdLIFRecurrent, DelayedLinear, SpikformerBlock


def _fan_out(m: nn.Module) -> float:
    if isinstance(m, (nn.Linear, DelayedLinear)):
        return float(m.out_features)
    if isinstance(m, (nn.Conv1d, nn.Conv2d)):
        return m.out_channels * float(np.prod(m.kernel_size)) / float(np.prod(m.stride))
    raise TypeError(type(m).__name__)


@torch.no_grad()
def count_activity(model: nn.Module, x: torch.Tensor) -> dict:
    """Spikes, SOPs and MACs per sample of the model on x (T, B, *input_shape); also per-layer spike counts."""
    totals = {"spikes": 0.0, "sops": 0.0, "macs": 0.0}
    per_layer: dict[str, float] = {}
    hooks = []

    def synapse_hook(module, inputs, output):
        inp = inputs[0]
        is_counts = bool(torch.all(inp >= 0)) and bool(torch.all(inp == torch.round(inp)))
        if is_counts:
            totals["sops"] += float(inp.sum()) * _fan_out(module)
        elif isinstance(module, (nn.Conv1d, nn.Conv2d)):  # every output value: in_channels x kernel area MACs
            totals["macs"] += output.numel() * module.in_channels / module.groups * float(np.prod(module.kernel_size))
        else:
            totals["macs"] += inp.numel() * module.out_features  # rows x in x out

    def spike_hook(name):
        def hook(module, inputs, output):
            z = output[0] if isinstance(output, tuple) else output
            n = float(z.sum())
            totals["spikes"] += n
            per_layer[name] = per_layer.get(name, 0.0) + n
        return hook

    for name, m in model.named_modules():
        if isinstance(m, (nn.Linear, nn.Conv1d, nn.Conv2d, DelayedLinear)):
            hooks.append(m.register_forward_hook(synapse_hook))
        elif isinstance(m, (LIF, AdLIFRecurrent)):
            hooks.append(m.register_forward_hook(spike_hook(name)))
    was_training = model.training
    model.eval()
    try:
        _, outs, _ = model.run(x, record=True)
    finally:
        for h in hooks:
            h.remove()
        model.train(was_training)
    # spiking self-attention: (Q K^T) V on spikes, per head
    for block in (m for m in model.modules() if isinstance(m, SpikformerBlock)):
        q, k, v = (outs[block.prefix + f"{n}_lif"] for n in ("q", "k", "v"))
        t, b, n_tok, d = q.shape
        h = block.heads
        q, k, v = (s.reshape(t, b, n_tok, h, d // h).transpose(2, 3) for s in (q, k, v))
        totals["sops"] += float((q.sum(-2) * k.sum(-2)).sum())  # sum over features of (#q active)(#k active)
        a = q @ k.transpose(-2, -1)
        totals["sops"] += float(((a != 0).to(v.dtype) @ v).sum())
    n = x.shape[1]
    return {"spikes": totals["spikes"] / n, "sops": totals["sops"] / n, "macs": totals["macs"] / n,
            "spikes_per_layer": {_stage_name(model, k): v / n for k, v in per_layer.items()}}


def _stage_name(model: nn.Module, module_name: str) -> str:
    """'stages.3' -> that stage's name; 'stages.4.q_lif' -> 'block1.q_lif'."""
    parts = module_name.split(".")
    names = getattr(model, "stage_names", None)
    if names and len(parts) >= 2 and parts[0] == "stages" and parts[1].isdigit():
        return ".".join([names[int(parts[1])], *parts[2:]])
    return module_name
