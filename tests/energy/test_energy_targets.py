"""Target files: every built-in one loads with sourced figures; bad files fail with one clear line."""

from __future__ import annotations

import math

import pytest

from neurostack.energy.targets import (CAPACITY_KEYS, ENERGY_KEYS, builtin_target_names, list_targets, load_target,
                                       load_targets, targets_dir)
from neurostack.errors import NeurostackError

REQUIRED = {"cmos45nm", "loihi", "loihi2", "truenorth", "spinnaker", "spinnaker2", "speck", "xylo"}

GOOD = '''
[target]
name = "chip"
title = "A chip"
update_model = "event-driven"

[energy.sop]
value = 2.5
unit = "pJ"
basis = "measured"
confidence = "H"
source = "A. Author, Journal 1, 2020"

[capacity.neurons_per_core]
value = 100
unit = "neurons"
basis = "spec"
confidence = "H"
source = "datasheet"
'''


def test_builtin_targets_include_the_required_ones():
    assert REQUIRED <= set(builtin_target_names())
    assert {"odin", "akida"} <= set(builtin_target_names())


@pytest.mark.parametrize("name", builtin_target_names())
def test_every_builtin_target_loads_with_sourced_positive_figures(name):
    t = load_target(name)
    assert t.name == name == (t.path.stem if t.path else name)
    assert t.title and t.main_source
    for key, fig in {**t.energy, **t.capacity, **t.published}.items():
        assert fig.source and fig.basis and fig.confidence in "HML", key
        values = fig.value if isinstance(fig.value, tuple) else (fig.value,)
        assert all(v > 0 and math.isfinite(v) for v in values), key
    assert set(t.energy) <= set(ENERGY_KEYS) and set(t.capacity) <= set(CAPACITY_KEYS)


def test_published_numbers_are_the_papers():
    loihi = load_target("loihi")
    assert loihi.e("sop") == pytest.approx(23.6e-12) and loihi.energy["sop"].basis == "simulated"
    assert "3.5" in loihi.energy["sop"].note and "ns" in loihi.energy["sop"].note
    assert loihi.e("neuron_update") == pytest.approx(81e-12) and loihi.e("neuron_update_idle") == pytest.approx(52e-12)
    assert loihi.limit("neurons_per_core") == 1024 and loihi.limit("cores_per_chip") == 128
    cmos = load_target("cmos45nm")
    assert cmos.variant == "fp32" and cmos.label == "cmos45nm"
    assert cmos.e("sop") == pytest.approx(0.9e-12) and cmos.e("mac") == pytest.approx(4.6e-12)
    int8 = load_target("cmos45nm:int8")
    assert int8.label == "cmos45nm:int8" and int8.weight_bits == 8
    assert int8.e("sop") == pytest.approx(0.03e-12) and int8.e("mac") == pytest.approx(0.23e-12)
    assert load_target("cmos45nm:fp16").e("mac") == pytest.approx(1.5e-12)
    xylo = load_target("xylo")
    assert (xylo.limit("max_inputs"), xylo.limit("max_hidden_neurons"), xylo.limit("max_output_neurons"),
            xylo.limit("max_fan_in"), xylo.weight_bits) == (16, 1000, 8, 63, 8)
    assert not xylo.energy  # nothing per operation is published: absent, never 0
    speck = load_target("speck")
    assert speck.limit("max_layers") == 9
    assert speck.limit("neuron_memory_per_layer") == (65536,) * 3 + (32768,) * 2 + (16384,) * 4
    assert speck.support.layer_types == ("Conv2d", "SumPool2d", "AvgPool2d")


def test_truenorth_is_all_in_and_alone():
    tn = load_target("truenorth")
    assert tn.all_in and tn.e("sop") == pytest.approx(26e-12)
    assert set(tn.energy) == {"sop"}
    assert tn.weight_bits is None  # binary synapses: not a bit depth


def test_load_by_path_variant_and_lists(write_target):
    path = write_target(GOOD)
    t = load_target(str(path))
    assert t.name == "chip" and t.e("sop") == pytest.approx(2.5e-12) and t.limit("neurons_per_core") == 100
    assert [x.label for x in load_targets(f"loihi, {path}")] == ["loihi", "chip"]
    assert [x.label for x in load_targets("all")] == builtin_target_names()
    assert [x.label for x in list_targets()] == builtin_target_names()
    assert targets_dir().is_dir()


BAD = [
    ("unknown_name", None, "unknown target 'loihii' (did you mean 'loihi'?); known targets: akida, cmos45nm"),
    ("syntax", "[target\nname = 1\n", "not valid TOML"),
    ("no_target", '[energy.sop]\nvalue = 1\n', "has no [target] table"),
    ("unknown_key", GOOD.replace('title = "A chip"', 'titel = "A chip"'),
     "unknown key 'titel' (did you mean 'title'?)"),
    ("unknown_term", GOOD.replace("[energy.sop]", "[energy.sopp]"), "unknown energy term 'sopp' (did you mean 'sop'?)"),
    ("negative", GOOD.replace("value = 2.5", "value = -2.5"), "energy.sop: value must be > 0, got -2.5"),
    ("zero", GOOD.replace("value = 2.5", "value = 0"), "never 0"),
    ("nan", GOOD.replace("value = 2.5", "value = nan"), "value must be finite"),
    ("inf", GOOD.replace("value = 100", "value = inf"), "value must be finite"),
    ("string", GOOD.replace("value = 2.5", 'value = "2.5"'), "value must be a number, got str '2.5'"),
    ("no_source", GOOD.replace('source = "A. Author, Journal 1, 2020"\n', ""), "energy.sop has a value but no source"),
    ("bad_unit", GOOD.replace('unit = "pJ"', 'unit = "pW"'), "unit 'pW' is not one of J, mJ"),
    ("count_unit", GOOD.replace('unit = "neurons"', 'unit = "cores"'), 'unit must be "neurons", got "cores"'),
    ("bad_basis", GOOD.replace('basis = "measured"', 'basis = "guessed"'), "basis 'guessed' is not one of"),
    ("bad_confidence", GOOD.replace('confidence = "H"', 'confidence = "X"', 1), "confidence 'X' is not one of H, M, L"),
    ("fraction", GOOD.replace("value = 100", "value = 100.5"), "value must be a whole number"),
    ("no_update_model", GOOD.replace('update_model = "event-driven"', "").replace(
        "[energy.sop]", "[energy.neuron_update]"), "needs target.update_model"),
    ("all_in_plus", GOOD.replace('basis = "measured"', 'basis = "all-in"') + GOOD[GOOD.index("[energy.sop]"):
        GOOD.index("[capacity")].replace("sop", "static_power").replace("pJ", "mW"), "energy.sop is all-in"),
    ("table_expected", GOOD + '\n[support]\nneuron_types = "LIF"\nsource = "x"\nconfidence = "H"\n',
     "neuron_types must be a list of NIR type names"),
    ("unknown_nir_type", GOOD + '\n[support]\nneuron_types = ["Izhikevich"]\nsource = "x"\nconfidence = "H"\n',
     "'Izhikevich' is not a NIR type neurostack knows"),
    ("figure_not_table", GOOD.replace("[capacity.neurons_per_core]", "[capacity]\nneurons_per_core = 3\n[x]"),
     "unknown top-level key 'x'"),
    ("bad_name", GOOD.replace('name = "chip"', 'name = "My Chip"'), "must be lower-case"),
]


@pytest.mark.parametrize("case,text,message", BAD, ids=[b[0] for b in BAD])
def test_bad_target_files_fail_in_one_clear_line(case, text, message, write_target):
    spec = "loihii" if text is None else str(write_target(text))
    with pytest.raises(NeurostackError) as err:
        load_target(spec)
    assert message in str(err.value)
    assert "\n" not in str(err.value)


def test_figure_must_be_a_table(write_target):
    path = write_target('[target]\nname = "chip"\n[capacity]\nneurons_per_core = 3\n')
    with pytest.raises(NeurostackError, match=r"capacity.neurons_per_core must be a table \{value, unit"):
        load_target(path)


def test_syntax_error_names_the_line(write_target):
    path = write_target('[target]\nname = "chip"\n\n[energy.sop]\nvalue = = 3\n')
    with pytest.raises(NeurostackError, match=r"chip.toml: not valid TOML: .*line 5"):
        load_target(path)


def test_missing_file_and_unknown_variant(tmp_path):
    with pytest.raises(NeurostackError, match="target file not found: .*nope.toml"):
        load_target(str(tmp_path / "nope.toml"))
    with pytest.raises(NeurostackError, match="'cmos45nm' has no variant 'int4'; its variants: fp32, fp16, int8"):
        load_target("cmos45nm:int4")
    with pytest.raises(NeurostackError, match="target 'loihi' has no variant 'x'; its variants: none"):
        load_target("loihi:x")


def test_unknown_target_lists_every_known_one():
    with pytest.raises(NeurostackError) as err:
        load_target("brainscales")
    for name in builtin_target_names():
        assert name in str(err.value)
    assert "path of a .toml target file" in str(err.value)
