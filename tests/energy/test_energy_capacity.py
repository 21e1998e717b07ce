"""Capacity checks: each violation names the node that causes it, with the limit and the value."""

from __future__ import annotations

from energy_workloads import conv, mlp

from neurostack.energy.capacity import place, speck_memory
from neurostack.energy.estimate import estimate
from neurostack.energy.targets import load_target
from neurostack.energy.workload import NodeWork, Workload


def by_limit(violations, limit):
    return [v for v in violations if v.limit == limit]


def test_xylo_fan_in_64_is_over_63():
    over = place(mlp(fan_in2=64), load_target("xylo"))
    [v] = by_limit(over.violations, "max_fan_in")
    assert (v.node, v.value, v.allowed, v.severity) == ("fc2", 64, 63, "error")
    assert "fan-in of 63" in v.message
    assert by_limit(place(mlp(fan_in2=63), load_target("xylo")).violations, "max_fan_in") == []


def test_xylo_inputs_outputs_and_readout():
    p = place(mlp(), load_target("xylo"))
    [inputs] = by_limit(p.violations, "max_inputs")
    assert (inputs.node, inputs.value, inputs.allowed) == ("input", 40, 16)
    [outputs] = by_limit(p.violations, "max_output_neurons")
    assert (outputs.node, outputs.value, outputs.allowed) == ("li", 10, 8)
    [readout] = by_limit(p.violations, "neuron_types")
    assert readout.node == "li" and readout.value == "LI"  # Xylo's outputs spike
    assert by_limit(p.violations, "max_hidden_neurons") == []
    big = place(mlp(hidden=1001), load_target("xylo"))
    [hidden] = by_limit(big.violations, "max_hidden_neurons")
    assert (hidden.node, hidden.value, hidden.allowed) == ("lif1", 1001, 1000)


def test_speck_rejects_affine_layers():
    p = place(mlp(), load_target("speck"))
    layers = by_limit(p.violations, "layer_types")
    assert [(v.node, v.value) for v in layers] == [("fc1", "Affine"), ("fc2", "Affine")]
    assert all(v.severity == "error" for v in layers)
    [lif] = [v for v in by_limit(p.violations, "neuron_types") if v.node == "lif1"]
    assert lif.severity == "warning"  # a leak runs only approximately (linear)


def test_speck_runs_a_linear_layer_after_a_map_as_a_conv():
    w = conv([(4, 3, 4, 4)])  # conv0 -> if0 (4, 4, 4) -> Flatten -> fc (5) -> if_fc: what sinabs deploys
    w.nodes[-1:] = [NodeWork("flat", "Flatten", (64,), ["if0"]),
                    NodeWork("fc", "Affine", (5,), ["flat"], n_weights=320, n_nonzero_weights=320, fan_in=64),
                    NodeWork("if_fc", "IF", (5,), ["fc"], n_neurons=5)]
    speck = load_target("speck")
    p = place(w, speck)
    assert p.violations == [] and p.cores == 2
    # a Conv2d with a 4 x 4 kernel over the map: kernel = 4 * 2^(ceil(log2 16) + ceil(log2 5)); neuron = 5
    assert speck_memory(w, w.node("fc"), speck) == (4 * 2 ** (4 + 3), 5)


def test_speck_convolutions_fit_by_sinabs_memory_formulas():
    small = conv([(8, 3, 32, 32)])
    conv0 = small.node("conv0")
    # kernel = c_in * 2^(ceil(log2 9) + ceil(log2 8)) = 2 * 2^7; neuron = 8 * 2^(5 + 5)
    assert speck_memory(small, conv0) == (256, 8192)
    p = place(small, load_target("speck"))
    assert p.violations == [] and (p.cores, p.chips) == (1, 1)
    huge = place(conv([(64, 3, 128, 128)], input_shape=(2, 128, 128)), load_target("speck"))
    [v] = by_limit(huge.violations, "neuron_memory_per_layer")
    assert v.node == "if0" and v.value == [2 * 2 ** (4 + 6), 64 * 2 ** 14]


def test_speck_layer_count_kernel_size_and_destinations():
    ten = place(conv([(4, 3, 8, 8)] * 10), load_target("speck"))
    [v] = by_limit(ten.violations, "max_layers")
    assert (v.node, v.value, v.allowed) == ("if9", 10, 9)
    wide = place(conv([(4, 17, 8, 8)]), load_target("speck"))
    [k] = by_limit(wide.violations, "max_kernel_size")
    assert (k.node, k.value, k.allowed) == ("conv0", [17, 17], [16, 16])
    w = conv([(4, 3, 8, 8)])
    for i in range(3):  # if0 feeds three convolutions
        w.nodes.append(NodeWork(f"branch{i}", "Conv2d", (4, 8, 8), ["if0"], n_weights=144, n_nonzero_weights=144,
                                weight_shape=(4, 4, 3, 3)))
    [d] = by_limit(place(w, load_target("speck")).violations, "max_destinations")
    assert (d.node, d.value, d.allowed) == ("if0", 3, 2)


def test_big_input_is_over_speck_input_size():
    p = place(conv([(4, 3, 100, 100)], input_shape=(2, 200, 100)), load_target("speck"))
    [v] = by_limit(p.violations, "max_input_size")
    assert (v.node, v.value, v.allowed) == ("input", [200, 100], [128, 128])


def test_loihi_neurons_per_core_and_chip():
    loihi = load_target("loihi")
    one = place(mlp(hidden=1500), loihi)  # 1,510 neurons: two cores, splitting a layer is fine
    assert (one.cores, one.chips) == (2, 1) and by_limit(one.violations, "cores_per_chip") == []
    big = place(mlp(hidden=140_000), loihi)  # 140,010 neurons / 1,024 per core = 137 cores > 128
    [v] = by_limit(big.violations, "cores_per_chip")
    assert (v.node, v.value, v.allowed) == ("lif1", 137, 128) and big.chips == 2
    assert estimate(mlp(hidden=140_000), loihi).terms["static"].count == 2 * 10e-3  # 2 chips x 10 ms


def test_loihi_synapse_memory_counts_cores():
    w = Workload(nodes=[
        NodeWork("input", "Input", (4096,)),
        NodeWork("fc", "Affine", (1024,), ["input"], n_weights=4096 * 1024, n_nonzero_weights=4096 * 1024,
                 fan_in=4096, fan_out=1024),
        NodeWork("lif", "LIF", (1024,), ["fc"], n_neurons=1024)], steps=1, dt=1e-3, samples=1)
    p = place(w, load_target("loihi"))
    assert p.cores == 4096 * 1024 * 9 // 8 // (128 * 1024)  # 36 cores of 128 KiB for 9-bit weights
    assert p.violations == []
    w.nodes[1].fan_in = 4097
    assert by_limit(place(w, load_target("loihi")).violations, "max_fan_in")[0].node == "fc"


def test_supported_types_and_multi_source_fan_in_note():
    assert place(mlp(), load_target("loihi")).violations == []  # CUBA LIF covers LIF and LI
    tn = place(mlp(), load_target("truenorth"))
    assert [(v.node, v.severity) for v in by_limit(tn.violations, "neuron_types")] == [("lif1", "warning"),
                                                                                       ("li", "error")]
    w = mlp(fan_in2=40)
    w.nodes.insert(4, NodeWork("rec", "Affine", (10,), ["li"], fan_in=40, n_weights=100, n_nonzero_weights=100))
    w.nodes[5].sources = ["fc2", "rec"]  # li is fed by fc2 and a recurrent rec: fan-ins 40 + 40 may reach 80 > 63
    p = place(w, load_target("xylo"))
    assert by_limit(p.violations, "max_fan_in") == []
    assert any("'li' is fed by fc2, rec" in n and "80 > 63" in n for n in p.notes)


def test_speck_layers_must_share_out_the_big_neuron_memories():
    # each layer needs 16 * 2^(6 + 6) = 65,536 neuron entries: only 3 of the 9 cores have them
    three = place(conv([(16, 3, 64, 64)] * 3, input_shape=(2, 64, 64)), load_target("speck"))
    assert three.violations == []
    four = place(conv([(16, 3, 64, 64)] * 4, input_shape=(2, 64, 64)), load_target("speck"))
    [v] = four.violations
    assert v.limit == "neuron_memory_per_layer" and "no assignment of all layers to the 9 cores" in v.message
