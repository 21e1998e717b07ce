"""Capacity checks: does a network fit a target, how many cores and chips does it need, and what breaks a limit.

A *layer* is a neuron node together with the synaptic nodes that feed it (through pass-through nodes such as
Flatten). Two ways of placing layers on cores:

* packed (Loihi, TrueNorth, SpiNNaker, ODIN, ...): cores = max(ceil(all neurons / neurons_per_core),
  ceil(synapse bytes / synapse_memory_per_core)), a lower bound (layers may share cores, no encoding overhead).
  Splitting a big layer over several cores is normal and is not a violation; needing more than one chip is,
  and names the first layer (in graph order) past the chip's cores.
* one layer per core (Speck: the target lists per-layer memories): every layer needs a core whose neuron and
  kernel memories hold it (sinabs' memory formulas), at most `max_layers` layers.

Every violation names the node that causes it. `severity` is "error" (the network cannot run as it is) or
"warning" (it runs only approximately, e.g. an exponential leak done as a linear one).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from neurostack.energy.targets import Target
from neurostack.energy.workload import NodeWork, Workload

POOL_TYPES = ("SumPool2d", "AvgPool2d")
CONV_TYPES = ("Conv1d", "Conv2d")
LINEAR_TYPES = ("Affine", "Linear")


@dataclass
class Violation:
    """One broken limit. `limit` is the capacity key or "neuron_types"/"layer_types"; value/allowed in its unit."""

    node: str | None
    limit: str
    value: object
    allowed: object
    message: str
    severity: str = "error"


@dataclass
class Placement:
    """Cores and chips needed (None when the target does not publish what it takes to count them)."""

    cores: int | None
    chips: int | None
    cores_per_layer: dict[str, int] = field(default_factory=dict)
    violations: list[Violation] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


# --- the graph around each node ------------------------------------------------------------------------------------


def _is_pass_through(n: NodeWork) -> bool:
    return not n.is_synaptic and not n.is_neuron and n.type not in ("Input", "Output")


def consumers(workload: Workload) -> dict[str, list[str]]:
    """For every node, the nodes that take its output."""
    out: dict[str, list[str]] = {n.name: [] for n in workload.nodes}
    for n in workload.nodes:
        for s in n.sources:
            out.setdefault(s, []).append(n.name)
    return out


def upstream_synapses(workload: Workload, node: NodeWork) -> list[NodeWork]:
    """The synaptic nodes feeding `node`, looking through pass-through nodes (Flatten, Identity, Delay)."""
    by_name = {n.name: n for n in workload.nodes}
    found, todo, seen = [], list(node.sources), set()
    while todo:
        name = todo.pop(0)
        if name in seen or name not in by_name:
            continue
        seen.add(name)
        src = by_name[name]
        if src.is_synaptic:
            found.append(src)
        elif _is_pass_through(src):
            todo.extend(src.sources)
    return found


def downstream(workload: Workload, name: str, *, through_pools: bool = False) -> list[NodeWork]:
    """Synaptic nodes reached from `name` through pass-through nodes (and pooling nodes when through_pools)."""
    by_name = {n.name: n for n in workload.nodes}
    after = consumers(workload)
    found, todo, seen = [], list(after.get(name, [])), set()
    while todo:
        nxt = todo.pop(0)
        if nxt in seen or nxt not in by_name:
            continue
        seen.add(nxt)
        n = by_name[nxt]
        if _is_pass_through(n) or (through_pools and n.type in POOL_TYPES):
            todo.extend(after.get(nxt, []))
        elif n.is_synaptic:
            found.append(n)
    return found


def output_neurons(workload: Workload) -> list[NodeWork]:
    """Neuron nodes whose output feeds no synaptic node: the readout layer(s)."""
    return [n for n in workload.neurons if not downstream(workload, n.name, through_pools=True)]


def input_nodes(workload: Workload) -> list[NodeWork]:
    return [n for n in workload.nodes if n.type == "Input"]


def expanded_synapses(n: NodeWork) -> float:
    """Explicit synapses a chip without weight sharing stores: non-zero weights, repeated at every output position
    for a convolution (padding ignored, so an upper bound for padded convolutions)."""
    if n.type in CONV_TYPES:
        return float(n.n_nonzero_weights * math.prod(n.shape[1:]))
    return float(n.n_nonzero_weights)


def linear_as_conv_input(workload: Workload, n: NodeWork, target: Target) -> tuple[int, int, int] | None:
    """(C, H, W) of the map a linear layer reads through a Flatten, when that map fits the target's kernel size:
    the layer then runs as a Conv2d whose kernel covers the whole map (what sinabs does on Speck). Else None."""
    by_name = {m.name: m for m in workload.nodes}
    todo = list(n.sources)
    while todo:
        src = by_name.get(todo.pop(0))
        if src is None:
            continue
        if len(src.shape) == 3:
            c, h, w = (int(v) for v in src.shape)
            max_k = target.limit("max_kernel_size")
            return (c, h, w) if max_k is None or (h <= max_k[0] and w <= max_k[1]) else None
        if _is_pass_through(src):
            todo.extend(src.sources)
    return None


def conv_geometry(workload: Workload, n: NodeWork) -> tuple[int, int, tuple[int, ...] | None]:
    """(c_out, c_in, kernel dims or None when unknown) of a convolution node."""
    c_out = int(n.weight_shape[0]) if n.weight_shape else int(n.shape[0])
    if len(n.weight_shape) >= 3:
        return c_out, int(n.weight_shape[1]), tuple(int(k) for k in n.weight_shape[2:])
    by_name = {m.name: m for m in workload.nodes}
    src = by_name.get(n.sources[0]) if n.sources else None
    c_in = int(src.shape[0]) if src is not None and src.shape else 0
    return c_out, c_in, None


# --- checks --------------------------------------------------------------------------------------------------------


def check_support(workload: Workload, target: Target) -> list[Violation]:
    """Node types the target does not run (error) or runs only approximately (warning)."""
    s = target.support
    if s is None:
        return []
    out = []
    if s.layer_types is not None:
        for n in workload.synaptic:
            if n.type in s.layer_types:
                continue
            if s.linear_as_conv and n.type in LINEAR_TYPES:
                if linear_as_conv_input(workload, n, target) is not None:
                    continue
                out.append(Violation(n.name, "layer_types", n.type, list(s.layer_types),
                                     f"layer '{n.name}' is {n.type} on a flat input; {target.label} runs "
                                     f"{', '.join(s.layer_types)} layers, and a linear layer only after a "
                                     f"(channels, height, width) map within the kernel size, as a Conv2d covering it"))
                continue
            out.append(Violation(n.name, "layer_types", n.type, list(s.layer_types),
                                 f"layer '{n.name}' is {n.type}; {target.label} runs only "
                                 f"{', '.join(s.layer_types)} layers"))
    if s.neuron_types is not None:
        for n in workload.nodes:
            if not (n.is_neuron or n.type == "Threshold") or n.type in s.neuron_types:
                continue
            if n.type in s.approximate_neuron_types:
                out.append(Violation(n.name, "neuron_types", n.type, list(s.neuron_types),
                                     f"neurons '{n.name}' are {n.type}; {target.label} runs them only approximately "
                                     f"({s.approximation})", severity="warning"))
            else:
                out.append(Violation(n.name, "neuron_types", n.type, list(s.neuron_types),
                                     f"neurons '{n.name}' are {n.type}; {target.label} runs only "
                                     f"{', '.join(s.neuron_types)} neurons"))
    return out


def check_fan(workload: Workload, target: Target) -> tuple[list[Violation], list[str]]:
    """Fan-in and fan-out per synaptic node (exact per node); a neuron fed by several synaptic nodes gets a note
    when the sum of their fan-ins could pass the limit (the exact per-neuron sum is not recorded)."""
    out, notes = [], []
    fan_in, fan_out = target.limit("max_fan_in"), target.limit("max_fan_out")
    for n in workload.synaptic:
        if n.type in POOL_TYPES:
            continue
        if fan_in is not None and n.fan_in > fan_in:
            out.append(Violation(n.name, "max_fan_in", n.fan_in, fan_in,
                                 f"'{n.name}' gives a neuron {n.fan_in} non-zero inputs; {target.label} allows a "
                                 f"fan-in of {fan_in}"))
        if fan_out is not None and n.fan_out > fan_out:
            out.append(Violation(n.name, "max_fan_out", n.fan_out, fan_out,
                                 f"an input of '{n.name}' reaches {n.fan_out} synapses; {target.label} allows a "
                                 f"fan-out of {fan_out}"))
    if fan_in is not None:
        for neuron in workload.neurons:
            feeds = [s for s in upstream_synapses(workload, neuron) if s.type not in POOL_TYPES]
            total = sum(s.fan_in for s in feeds)
            if len(feeds) > 1 and total > fan_in and all(s.fan_in <= fan_in for s in feeds):
                notes.append(f"'{neuron.name}' is fed by {', '.join(s.name for s in feeds)}: its fan-in may reach "
                             f"{total} > {fan_in} on {target.label} (only per-node fan-ins are known)")
    return out, notes


def check_io_sizes(workload: Workload, target: Target) -> tuple[list[Violation], list[str]]:
    """Xylo-style limits on inputs, hidden and output neurons; Speck-style input size."""
    out, notes = [], []
    inputs = input_nodes(workload)
    max_inputs, max_size = target.limit("max_inputs"), target.limit("max_input_size")
    if (max_inputs is not None or max_size is not None) and not inputs:
        notes.append(f"the graph has no Input node: input limits of {target.label} not checked")
    for n in inputs:
        size = math.prod(n.shape) if n.shape else 0
        if max_inputs is not None and size > max_inputs:
            out.append(Violation(n.name, "max_inputs", size, max_inputs,
                                 f"input '{n.name}' has {size} channels {tuple(n.shape)}; {target.label} takes "
                                 f"{max_inputs}"))
        if max_size is not None and len(n.shape) >= 2:
            h, w = int(n.shape[-2]), int(n.shape[-1])
            if h > max_size[0] or w > max_size[1]:
                out.append(Violation(n.name, "max_input_size", [h, w], list(max_size),
                                     f"input '{n.name}' is {h} x {w}; {target.label} takes at most "
                                     f"{max_size[0]} x {max_size[1]}"))
    outputs = {n.name for n in output_neurons(workload)}
    max_hidden, max_out = target.limit("max_hidden_neurons"), target.limit("max_output_neurons")
    if max_hidden is not None:
        total = 0
        for n in workload.neurons:
            if n.name in outputs:
                continue
            total += n.n_neurons
            if total > max_hidden:
                out.append(Violation(n.name, "max_hidden_neurons", total, max_hidden,
                                     f"hidden neurons reach {total} at '{n.name}'; {target.label} has "
                                     f"{max_hidden}"))
                break
    if max_out is not None:
        total = sum(n.n_neurons for n in workload.neurons if n.name in outputs)
        if total > max_out:
            last = [n.name for n in workload.neurons if n.name in outputs][-1]
            out.append(Violation(last, "max_output_neurons", total, max_out,
                                 f"output layer '{last}' has {total} neurons; {target.label} has {max_out} outputs"))
    return out, notes


def check_convolutions(workload: Workload, target: Target) -> tuple[list[Violation], list[str]]:
    """Channel and kernel-size limits of convolutional layers, and how many layers one layer's output feeds."""
    out, notes = [], []
    max_ch, max_k = target.limit("max_channels"), target.limit("max_kernel_size")
    for n in workload.synaptic:
        if n.type not in CONV_TYPES:
            continue
        c_out, c_in, kernel = conv_geometry(workload, n)
        if max_ch is not None and max(c_out, c_in) > max_ch:
            out.append(Violation(n.name, "max_channels", max(c_out, c_in), max_ch,
                                 f"'{n.name}' has {c_in} input and {c_out} output channels; {target.label} allows "
                                 f"{max_ch}"))
        if max_k is not None:
            if kernel is not None and (kernel[0] > max_k[0] or kernel[-1] > max_k[-1]):
                out.append(Violation(n.name, "max_kernel_size", list(kernel), list(max_k),
                                     f"'{n.name}' has a {' x '.join(map(str, kernel))} kernel; {target.label} allows "
                                     f"{max_k[0]} x {max_k[1]}"))
            elif kernel is None:
                taps = n.n_weights // max(1, c_out * c_in)
                if taps > max_k[0] * max_k[1]:
                    out.append(Violation(n.name, "max_kernel_size", taps, max_k[0] * max_k[1],
                                         f"'{n.name}' has {taps} kernel taps; {target.label} allows "
                                         f"{max_k[0]} x {max_k[1]}"))
    max_dest = target.limit("max_destinations")
    if max_dest is not None:
        for n in workload.neurons:
            dests = downstream(workload, n.name, through_pools=True)
            if len(dests) > max_dest:
                out.append(Violation(n.name, "max_destinations", len(dests), max_dest,
                                     f"'{n.name}' feeds {len(dests)} layers ({', '.join(d.name for d in dests)}); "
                                     f"{target.label} allows {max_dest}"))
    return out, notes


# --- placing layers on cores ---------------------------------------------------------------------------------------


def speck_memory(workload: Workload, conv: NodeWork, target: Target | None = None) -> tuple[int, int] | None:
    """(kernel, neuron) memory entries of a Conv2d layer (or a linear layer run as a Conv2d covering its input map),
    with sinabs' formulas; None when the kernel size is unknown.

    kernel = c_in * 2^(ceil(log2(kh*kw)) + ceil(log2(c_out))), neuron = c_out * 2^(ceil(log2 H) + ceil(log2 W)).
    """
    if conv.type in LINEAR_TYPES:
        cmap = linear_as_conv_input(workload, conv, target) if target is not None else None
        if cmap is None:
            return None
        c_in, taps, c_out, h, w = cmap[0], cmap[1] * cmap[2], int(conv.shape[0]), 1, 1
    else:
        c_out, c_in, _ = conv_geometry(workload, conv)
        if c_in <= 0 or c_out <= 0:
            return None
        taps = conv.n_weights // (c_out * c_in)
        h, w = (int(conv.shape[-2]), int(conv.shape[-1])) if len(conv.shape) >= 3 else (1, int(conv.shape[-1]))
    kernel = c_in * 2 ** (math.ceil(math.log2(max(taps, 1))) + math.ceil(math.log2(c_out)))
    neuron = c_out * 2 ** (math.ceil(math.log2(h)) + math.ceil(math.log2(w)))
    return int(kernel), int(neuron)


def _match(needs: list[tuple[int, int]], cores: list[tuple[int, int]]) -> dict[int, int]:
    """Assign layers to cores (kernel, neuron memory both fitting), as many as possible: {layer: core}."""
    owner: dict[int, int] = {}

    def assign(i: int, seen: set[int]) -> bool:
        for c, (k_mem, n_mem) in enumerate(cores):
            if c in seen or needs[i][0] > k_mem or needs[i][1] > n_mem:
                continue
            seen.add(c)
            if c not in owner or assign(owner[c], seen):
                owner[c] = i
                return True
        return False

    for i in range(len(needs)):
        assign(i, set())
    return {i: c for c, i in owner.items()}


def _place_layer_per_core(workload: Workload, target: Target) -> Placement:
    neuron_mem, kernel_mem = target.limit("neuron_memory_per_layer"), target.limit("kernel_memory_per_layer")
    cores = list(zip(kernel_mem, neuron_mem))
    max_layers = target.limit("max_layers") or len(cores)
    layers = workload.neurons
    p = Placement(cores=len(layers), chips=1, cores_per_layer={n.name: 1 for n in layers})
    if len(layers) > max_layers:
        p.violations.append(Violation(layers[max_layers].name, "max_layers", len(layers), max_layers,
                                      f"{len(layers)} layers; {target.label} runs at most {max_layers} (one per core): "
                                      f"'{layers[max_layers].name}' is the first that does not fit"))
    needs, names = [], []
    for n in layers:
        convs = [s for s in upstream_synapses(workload, n) if s.type in ("Conv2d", *LINEAR_TYPES)]
        mem = speck_memory(workload, convs[0], target) if len(convs) == 1 else None
        if mem is None:
            if convs and convs[0].type == "Conv2d":
                p.notes.append(f"memory of layer '{n.name}' on {target.label} not checked (kernel size unknown)")
            continue
        needs.append(mem)
        names.append(n.name)
    biggest_k, biggest_n = max(k for k, _ in cores), max(m for _, m in cores)
    fits = [i for i, (k, m) in enumerate(needs) if any(k <= ck and m <= cn for ck, cn in cores)]
    for i, ((k, m), name) in enumerate(zip(needs, names)):
        if i not in fits:
            limit = "neuron_memory_per_layer" if m > biggest_n else "kernel_memory_per_layer"
            p.violations.append(Violation(name, limit, [k, m], [biggest_k, biggest_n],
                                          f"layer '{name}' needs {k} kernel and {m} neuron memory entries; no "
                                          f"{target.label} core holds both (largest: {biggest_k} kernel, "
                                          f"{biggest_n} neuron)"))
    placed = _match([needs[i] for i in fits], cores)
    if len(placed) < len(fits) and len(layers) <= len(cores):
        left = [names[fits[i]] for i in range(len(fits)) if i not in placed]
        p.violations.append(Violation(left[0], "neuron_memory_per_layer", len(fits), len(placed),
                                      f"layers {', '.join(left)} each fit some {target.label} core, but no "
                                      f"assignment of all layers to the {len(cores)} cores fits every memory"))
    return p


def _place_packed(workload: Workload, target: Target) -> Placement:
    """Cores = max(ceil(all neurons / neurons_per_core), ceil(synapse bytes / synapse memory per core)): layers may
    share cores, encoding overhead is ignored, so it is a lower bound. cores_per_layer is each layer alone."""
    npc, cpc = target.limit("neurons_per_core"), target.limit("cores_per_chip")
    mem, bits = target.limit("synapse_memory_per_core"), target.weight_bits
    use_mem = mem is not None and bits is not None
    p = Placement(cores=None, chips=None)
    if npc is None and not use_mem:
        if cpc is not None:
            p.notes.append(f"{target.label} publishes no neurons per core or synapse memory: cores not counted")
    else:
        neurons = synapse_bytes = 0.0
        crossed = None
        for n in workload.neurons:
            layer_bytes = sum(expanded_synapses(s) for s in upstream_synapses(workload, n)) * (bits or 0) / 8
            alone = [math.ceil(n.n_neurons / npc)] if npc is not None else []
            alone += [math.ceil(layer_bytes / mem)] if use_mem else []
            p.cores_per_layer[n.name] = max(1, *alone)
            neurons, synapse_bytes = neurons + n.n_neurons, synapse_bytes + layer_bytes
            so_far = _cores(neurons, synapse_bytes, npc, mem if use_mem else None)
            if cpc is not None and so_far > cpc and crossed is None:
                crossed = n.name
        p.cores = _cores(neurons, synapse_bytes, npc, mem if use_mem else None)
        p.notes.append(f"cores on {target.label} are a lower bound: layers may share cores"
                       + (f"; synapses counted as {bits}-bit weights, convolutions expanded, no encoding overhead"
                          if use_mem else ""))
        if cpc is not None:
            p.chips = max(1, math.ceil(p.cores / cpc))
            if crossed is not None:
                p.violations.append(Violation(crossed, "cores_per_chip", p.cores, cpc,
                                              f"the network needs {p.cores} cores; one {target.label} chip has "
                                              f"{cpc} ('{crossed}' is the first layer past it): {p.chips} chips"))
    spc = target.limit("synapses_per_chip")
    if spc is not None:
        synapses = sum(expanded_synapses(s) for s in workload.synaptic)
        p.chips = max(p.chips or 1, math.ceil(synapses / spc))
        if synapses > spc:
            p.violations.append(Violation(None, "synapses_per_chip", int(synapses), spc,
                                          f"the network has {int(synapses)} synapses; one {target.label} chip "
                                          f"stores {spc}"))
    mpc = target.limit("memory_per_chip")
    if mpc is not None and bits is not None:
        stored = sum(s.n_weights for s in workload.synaptic) * bits / 8
        p.chips = max(p.chips or 1, math.ceil(stored / mpc))
        if stored > mpc:
            p.violations.append(Violation(None, "memory_per_chip", int(stored), mpc,
                                          f"the weights take {int(stored)} bytes at {bits} bits; one {target.label} "
                                          f"chip has {mpc}"))
    return p


def _cores(neurons: float, synapse_bytes: float, npc: int | None, mem: int | None) -> int:
    need = [math.ceil(neurons / npc)] if npc is not None else []
    need += [math.ceil(synapse_bytes / mem)] if mem is not None else []
    return max(1, *need)


def place(workload: Workload, target: Target) -> Placement:
    """Cores and chips needed, and every capacity violation with the node that causes it."""
    if target.limit("neuron_memory_per_layer") is not None:
        p = _place_layer_per_core(workload, target)
    else:
        p = _place_packed(workload, target)
    p.violations[:0] = check_support(workload, target)
    for check in (check_fan, check_io_sizes, check_convolutions):
        v, notes = check(workload, target)
        p.violations += v
        p.notes += notes
    return p
