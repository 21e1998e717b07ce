"""The lowered form of a NIR graph: plain arrays the Numba kernels run over, plus names for people.

Layout (per sample; every node writes its output for the current step into one flat buffer `buf`):
  kinds[k]                 what node k does (K_* below); nodes are in topological order
  out_off[k], out_len[k]   node k's output slice of `buf`; in_len[k] the length of its (summed) input
  src_ptr[k]:src_ptr[k+1]  node k's incoming edges in file order: src_node (source index) and src_prev
                           (1 = back edge of a cycle: read the source's output of the PREVIOUS step, zeros at t=0)
  fp_off[k], ip_off[k]     node k's float parameters in `fparams` (plan precision) and int parameters in
                           `iparams` (int64); each kind's layout is documented in kernels.py
  st_off[k], st_len[k]     node k's state in the per-sample `state` array (plan precision)
  prev_nodes               nodes whose previous-step output some back edge reads
  v_off[k]                 offset of node k's membrane voltage in `state` (-1: no voltage)
Node inputs from several edges are summed in file order before the node runs, except for extension nodes that
read named sources (attention: in_len 0, its Q, K, V offsets in its iparams).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

import numpy as np

# Node kinds (kernels.py dispatches on these integers).
K_INPUT = 0
K_OUTPUT = 1
K_IDENTITY = 2  # Input / Output node of a nested subgraph: passes its input through
K_AFFINE = 3  # also Linear (zero bias)
K_SCALE = 4
K_CONV = 5  # Conv2d, and Conv1d as a conv with height 1
K_SUMPOOL = 6  # SumPool2d, and AvgPool2d (then divided by the window area)
K_FLATTEN = 7
K_NEURON = 8  # LIF, CubaLIF, LI, CubaLI, IF, I
K_THRESHOLD = 9
K_DELAY = 10
K_ATTENTION = 11  # neurostack.SpikingSelfAttention (extensions.py): reads its Q, K, V sources from buf (attention.py)

KIND_NAMES = {K_INPUT: "input", K_OUTPUT: "output", K_IDENTITY: "identity", K_AFFINE: "affine", K_SCALE: "scale",
              K_CONV: "conv", K_SUMPOOL: "sumpool", K_FLATTEN: "flatten", K_NEURON: "neuron",
              K_THRESHOLD: "threshold", K_DELAY: "delay", K_ATTENTION: "attention"}

# Neuron flags: iparams[ip_off[k] + F_*] for K_NEURON nodes.
F_UPDATE = 0  # membrane update form: U_* below
F_SYN = 1  # synaptic current: S_* below
F_SPIKING = 2  # 1: emits spikes (LIF, CubaLIF, IF); 0: emits its voltage (LI, CubaLI, I)
F_SUBTRACT = 3  # 1: reset by subtracting n*v_threshold; 0: reset to v_reset
F_NEXT_STEP = 4  # 1: the reset of step t is the spike of step t-1 (snnTorch reset_delay, Spyx)
F_INCLUSIVE = 5  # 1: spike when v >= v_threshold; 0: when v > v_threshold
F_MULTI = 6  # 1: floor(v/v_threshold) spikes per step; 0: at most one
F_LATENCY = 7  # 1: emit the previous step's spike decision (Spyx)
F_CLEAR_NEW = 8  # with value reset at the next step: 1 clears the new v (input lost), 0 the old v
N_NEURON_FLAGS = 9

U_INC_LIF = 0  # v' = v + a*((g*x + v_leak) - v)          (Norse LIFBox)
U_INC_LI = 1  # v' = v + a*((v_leak - v) + g*x)           (Norse LIBox, LIFCell)
U_PRODUCT = 2  # v' = d*v + g*x + c,  c = (1-d)*v_leak   (snnTorch, Spyx, Rockpool, Sinabs; IF and I)

S_NONE = 0
S_JUMP_THEN_DECAY = 1  # u = i + gs*x; after the membrane step i = u - a_syn*u  (Norse LIFCell)
S_DECAY_THEN_ADD = 2  # i = d_syn*i + gs*x; u = i                             (snnTorch Synaptic)
S_ADD_THEN_DECAY = 3  # i = (i + gs*x)*d_syn; u = i                           (Rockpool LIFTorch)

# Neuron float parameters: N_NEURON_PARAMS arrays of the node's size, stored one after the other.
P_DECAY = 0  # a (increment forms) or d (product form)
P_GAIN = 1  # g, gain on the membrane input
P_LEAK = 2  # v_leak (increment forms) or c = (1-d)*v_leak (product form)
P_THRESHOLD = 3
P_RESET = 4  # v_reset
P_SYN_DECAY = 5  # a_syn (jump_then_decay) or d_syn
P_SYN_GAIN = 6  # gs
P_V_INIT = 7  # initial membrane voltage
N_NEURON_PARAMS = 8

SPIKING_TYPES = ("LIF", "CubaLIF", "IF", "Threshold")

# Time blocks (kernels.simulate_sample): each node runs this many steps in a row; the per-step buffers of a block
# (every node's output and event list) are kept near this size, so that they stay in the CPU's L2 cache.
BLOCK_BYTES = 256 * 1024
MAX_BLOCK_STEPS = 64


@dataclass
class Plan:
    """A NIR graph lowered for the simulator (see the module docstring for the array layout).

    node_names are in execution (topological) order; shapes exclude batch and time; dt in seconds.
    """

    node_names: list[str]
    node_types: dict[str, str]
    shapes: dict[str, tuple[int, ...]]
    input_name: str
    output_name: str
    input_shape: tuple[int, ...]
    output_shape: tuple[int, ...]
    dt: float | None
    convention: str
    reset: str
    spikes: str
    precision: str
    back_edges: list[tuple[str, str]]
    warnings: list[str]
    # arrays for the kernels
    kinds: np.ndarray
    out_off: np.ndarray
    out_len: np.ndarray
    in_len: np.ndarray
    src_ptr: np.ndarray
    src_node: np.ndarray
    src_prev: np.ndarray
    fp_off: np.ndarray
    ip_off: np.ndarray
    st_off: np.ndarray
    st_len: np.ndarray
    v_off: np.ndarray
    fparams: np.ndarray
    iparams: np.ndarray
    prev_nodes: np.ndarray
    scratch_len: int  # entries of the kernels' scratch array: summed inputs of multi-source nodes, attention's S
    extra: dict = field(default_factory=dict)

    @property
    def dtype(self) -> np.dtype:
        return np.dtype(self.precision)

    @cached_property
    def buffer_len(self) -> int:
        """Length of the per-step output buffer: node outputs start at aligned offsets, so gaps are included."""
        return int((self.out_off + self.out_len).max(initial=0))

    def block_steps(self, steps: int, block_bytes: int = BLOCK_BYTES) -> int:
        """Steps per time block for a run of `steps` steps: 1 with back edges (a node then reads a later node's
        previous step), else as many as fit in block_bytes of per-step buffers (outputs and event lists)."""
        if len(self.prev_nodes):
            return 1
        per_step = self.buffer_len * (self.fparams.itemsize + 8)
        return int(max(1, min(steps, MAX_BLOCK_STEPS, block_bytes // max(per_step, 1))))

    @property
    def spiking_nodes(self) -> list[str]:
        """Nodes whose output is spikes (counts with multi-spike conventions)."""
        return [n for n in self.node_names if self.node_types[n] in SPIKING_TYPES]

    @property
    def neuron_nodes(self) -> list[str]:
        """Nodes with a membrane voltage (LIF, CubaLIF, LI, CubaLI, IF, I)."""
        return [n for i, n in enumerate(self.node_names) if self.v_off[i] >= 0]

    def index(self, name: str) -> int:
        return self.node_names.index(name)

    def __repr__(self) -> str:
        return (f"Plan({len(self.node_names)} nodes, input {self.input_shape}, output {self.output_shape}, "
                f"dt={self.dt}, convention={self.convention!r}, reset={self.reset!r}, spikes={self.spikes!r}, "
                f"{self.precision})")
