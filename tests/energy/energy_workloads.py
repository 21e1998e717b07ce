"""Hand-built workloads with counts small enough to check energies by hand (imported by the energy tests)."""

from __future__ import annotations

from neurostack.energy.workload import NodeWork, Workload


def mlp(*, hidden: int = 128, fan_in2: int = 128, dt: float | None = 1e-3) -> Workload:
    """input(40) -> fc1 Affine -> lif1 LIF(hidden) -> fc2 Affine -> li LI(10) -> output, 10 steps, one sample.

    fc1 gets real-valued input: 25,600 MACs; fc2 gets spikes: 2,000 SOPs. lif1: 1,280 updates, all driven,
    200 spikes; li: 100 updates, 90 driven. Dense per step: 40*128 + 128*10 = 6,400.
    """
    return Workload(nodes=[
        NodeWork("input", "Input", (40,)),
        NodeWork("fc1", "Affine", (hidden,), ["input"], macs=25_600, dense=51_200, dense_per_step=5_120,
                 n_weights=40 * hidden, n_nonzero_weights=40 * hidden, fan_in=40, fan_out=hidden,
                 weight_shape=(hidden, 40)),
        NodeWork("lif1", "LIF", (hidden,), ["fc1"], neuron_updates=1_280, neuron_updates_driven=1_280, spikes=200,
                 n_neurons=hidden),
        NodeWork("fc2", "Affine", (10,), ["lif1"], sops=2_000, dense=12_800, dense_per_step=1_280,
                 n_weights=hidden * 10, n_nonzero_weights=hidden * 10 - 280, fan_in=fan_in2, fan_out=10,
                 weight_shape=(10, hidden)),
        NodeWork("li", "LI", (10,), ["fc2"], neuron_updates=100, neuron_updates_driven=90, n_neurons=10),
        NodeWork("output", "Output", (10,), ["li"]),
    ], steps=10, dt=dt, samples=1)


def conv(layers: list[tuple[int, int, int, int]], input_shape=(2, 32, 32)) -> Workload:
    """A chain of Conv2d -> IF layers; each entry is (c_out, kernel, out_h, out_w)."""
    nodes = [NodeWork("input", "Input", tuple(input_shape))]
    prev, c_in = "input", input_shape[0]
    for i, (c_out, k, h, w) in enumerate(layers):
        nodes.append(NodeWork(f"conv{i}", "Conv2d", (c_out, h, w), [prev], n_weights=c_out * c_in * k * k,
                              n_nonzero_weights=c_out * c_in * k * k, fan_in=c_in * k * k, fan_out=c_out * k * k,
                              weight_shape=(c_out, c_in, k, k)))
        nodes.append(NodeWork(f"if{i}", "IF", (c_out, h, w), [f"conv{i}"], n_neurons=c_out * h * w,
                              neuron_updates=10.0 * c_out * h * w))
        prev, c_in = f"if{i}", c_out
    nodes.append(NodeWork("output", "Output", nodes[-1].shape, [prev]))
    return Workload(nodes=nodes, steps=10, dt=1e-3, samples=1)
