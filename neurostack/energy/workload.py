"""What a network did on one inference, per NIR node: the input to energy estimates and capacity checks.

Plain data, filled by `neurostack.sim.counters.workload` from a simulator run (numbers are means over the
samples simulated, summed over the time steps of one inference) and by hand in tests. Torch-free.

Definitions (the one place they are written down; the README repeats them):
  sops          accumulate operations driven by events: for every input value in {-1, 0, 1} that is non-zero, one per
                non-zero weight it reaches (conv taps that land in the padding are not counted). As in NeuroBench's
                SynapticOperations, a node's inputs are classed per time step: if any input value at that step is
                outside {-1, 0, 1} (real-valued features, graded outputs, multi-spike counts > 1), that step's
                operations count as MACs instead. Bias adds are counted separately (bias_adds), never as SOPs.
  macs          the same (non-zero input, non-zero weight) pairs for real-valued inputs.
  dense         every structural connection every step (zero weights and zero inputs included, padding taps not):
                what a dense ANN layer of the same shape does. dense_per_step is one step's worth.
  neuron_updates         every neuron every step (a clock-driven chip).
  neuron_updates_driven  neuron-steps whose input was non-zero (an event-driven chip updates only those).
  spikes        spikes emitted (a multi-spike step counts its spike count).
Pooling (SumPool2d / AvgPool2d) and Scale count their additions as sops/macs in the same way (weight 1), but
NeuroBench does not hook them, so they are flagged `counted_by_neurobench = False`. Recurrent (back) edges are
ordinary synaptic nodes in the cycle and count like any other; Delay nodes move values and count nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field

# "neurostack.SpikingSelfAttention": the Spikformer extension node (neurostack/sim/extensions.py), whose SOPs are
# those of its spike-matrix products; no chip lists it among its layer types.
SYNAPTIC_TYPES = ("Affine", "Linear", "Conv1d", "Conv2d", "SumPool2d", "AvgPool2d", "Scale",
                  "neurostack.SpikingSelfAttention")
NEURON_TYPES = ("LIF", "CubaLIF", "LI", "CubaLI", "IF", "I")


@dataclass
class NodeWork:
    """One NIR node's work per inference (means over samples). Counts are floats because they are means."""

    name: str
    type: str  # NIR primitive name, e.g. "Affine", "Conv2d", "LIF"
    shape: tuple[int, ...]  # output shape, without batch and time
    sources: list[str] = field(default_factory=list)  # nodes feeding this one
    sops: float = 0.0
    macs: float = 0.0
    dense: float = 0.0
    dense_per_step: float = 0.0
    bias_adds: float = 0.0
    neuron_updates: float = 0.0
    neuron_updates_driven: float = 0.0
    spikes: float = 0.0
    input_events: float = 0.0  # non-zero input values received
    n_neurons: int = 0  # neurons (neuron nodes only)
    n_weights: int = 0  # stored weights, zeros included (synaptic nodes only; kernel size for convs)
    n_nonzero_weights: int = 0
    fan_in: int = 0  # most non-zero weights into one output (synaptic nodes)
    fan_out: int = 0  # most non-zero weights out of one input (synaptic nodes; padding taps excluded)
    counted_by_neurobench: bool = True
    per_step_sops: list[float] = field(default_factory=list)  # (T,) mean over samples
    per_step_macs: list[float] = field(default_factory=list)
    # the weight array's shape, e.g. (out, in) for Affine/Linear, (c_out, c_in, kh, kw) for Conv2d; () when unknown.
    # Capacity checks use it for kernel sizes and input channels (they fall back to shapes of the sources).
    weight_shape: tuple[int, ...] = ()

    @property
    def is_synaptic(self) -> bool:
        return self.type in SYNAPTIC_TYPES

    @property
    def is_neuron(self) -> bool:
        return self.type in NEURON_TYPES


@dataclass
class Workload:
    """A whole network's work per inference.

    steps: time steps per inference; dt: seconds per step (None when the graph has no time base);
    samples: how many samples the means are over; ann_steps: how many steps an ANN of the same shape would
    run per inference (1 when the input is the same at every step, as with the image view; else `steps`).
    """

    nodes: list[NodeWork]
    steps: int
    dt: float | None
    samples: int
    ann_steps: int = 1
    weight_bits: int | None = None  # precision of the weights as simulated (None: float)

    def node(self, name: str) -> NodeWork:
        for n in self.nodes:
            if n.name == name:
                return n
        raise KeyError(name)

    @property
    def synaptic(self) -> list[NodeWork]:
        return [n for n in self.nodes if n.is_synaptic]

    @property
    def neurons(self) -> list[NodeWork]:
        return [n for n in self.nodes if n.is_neuron]

    def total(self, attr: str) -> float:
        """Sum of one count (e.g. "sops") over all nodes."""
        return float(sum(getattr(n, attr) for n in self.nodes))

    @property
    def first_layer_macs(self) -> float:
        """MACs of synaptic nodes fed by real values (the encoding layer in the Spikformer-style estimate)."""
        return float(sum(n.macs for n in self.synaptic))
