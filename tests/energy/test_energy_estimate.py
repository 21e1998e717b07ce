"""Energy per inference on hand-built workloads, checked against sums done by hand (pJ x counts)."""

from __future__ import annotations

import pytest
from energy_workloads import mlp

from neurostack.energy.estimate import ann_equivalent, comparison_claim, estimate, spikformer_figure
from neurostack.energy.targets import load_target, parse_target
from neurostack.errors import NeurostackError

# The mlp() workload: 2,000 SOPs (fc2), 25,600 MACs (fc1, real-valued input), 1,380 neuron updates of which
# 1,370 driven (10 idle), 200 spikes, 10 steps of 1 ms, dense per step 6,400.


def fig(value: float, unit: str) -> dict:
    return {"value": value, "unit": unit, "basis": "measured", "confidence": "H", "source": "test"}


def chip(**energy) -> dict:
    units = {"static_power": "W"}
    return {"target": {"name": "chip", "update_model": "event-driven"},
            "energy": {k: fig(v, units.get(k, "pJ")) for k, v in energy.items()}}


def test_loihi_by_hand(workload):
    e = estimate(workload, load_target("loihi"))
    t = e.terms
    assert t["sop"].joules == pytest.approx(2_000 * 23.6e-12)  # 47.2 nJ
    assert t["mac"].joules == pytest.approx(25_600 * 23.6e-12)  # no per-MAC figure: charged at E_sop
    assert any("25,600 MACs" in a and "per-SOP energy 23.6 pJ" in a for a in e.assumptions)
    # clock-driven with an idle figure: 1,370 active x 81 pJ + 10 idle x 52 pJ
    assert t["neuron_update"].joules == pytest.approx(1_370 * 81e-12 + 10 * 52e-12)
    assert t["neuron_update"].count == 1_380 and "clock-driven" in t["neuron_update"].note
    assert t["spike_routed"].joules == pytest.approx(200 * 1.7e-12)
    assert t["static"].joules == pytest.approx(0.104 * 1 * 10 * 1e-3)  # 104 mW x 1 chip x 10 ms
    dynamic = 47.2e-9 + 604.16e-9 + 111.49e-9 + 0.34e-9
    assert e.dynamic == pytest.approx(dynamic)
    assert e.per_inference == pytest.approx(dynamic + 1.04e-3)
    assert e.complete and e.unavailable == []
    assert (e.cores, e.chips) == (1, 1) and e.errors == []


def test_cmos_and_references_by_hand(workload):
    cmos = load_target("cmos45nm")
    e = estimate(workload, cmos)
    assert e.terms["sop"].joules == pytest.approx(2_000 * 0.9e-12)
    assert e.terms["mac"].joules == pytest.approx(25_600 * 4.6e-12)
    assert e.per_inference == pytest.approx(119.56e-9)
    assert not e.complete and set(e.unavailable) == {"neuron_update", "spike_routed", "static"}
    ann = ann_equivalent(workload, cmos)
    assert ann.joules == pytest.approx(6_400 * 4.6e-12)  # 29.44 nJ: every connection once (ann_steps = 1)
    assert ann.parts == {"mac": (6_400, pytest.approx(4.6e-12))}
    spk = spikformer_figure(workload, cmos)
    assert spk.joules == pytest.approx(25_600 * 4.6e-12 + 2_000 * 0.9e-12)
    workload.ann_steps = 10  # sequence view: the ANN runs every step
    assert ann_equivalent(workload, cmos).joules == pytest.approx(64_000 * 4.6e-12)
    int8 = load_target("cmos45nm:int8")
    workload.ann_steps = 1
    assert ann_equivalent(workload, int8).joules == pytest.approx(6_400 * 0.23e-12)


def test_truenorth_all_in_adds_nothing(workload):
    e = estimate(workload, load_target("truenorth"))
    assert e.terms["sop"].joules == pytest.approx(2_000 * 26e-12)
    assert e.terms["mac"].joules == pytest.approx(25_600 * 26e-12)
    assert {n: e.terms[n].status for n in ("neuron_update", "spike_routed", "static")} == dict.fromkeys(
        ("neuron_update", "spike_routed", "static"), "included")
    assert e.per_inference == pytest.approx(27_600 * 26e-12) == pytest.approx(717.6e-9)
    assert e.complete


def test_spinnaker_clock_driven_without_idle_figure(workload):
    e = estimate(workload, load_target("spinnaker"))
    assert e.terms["neuron_update"].joules == pytest.approx(1_380 * 26e-9)  # every neuron every step
    assert e.terms["sop"].joules == pytest.approx(2_000 * 13.3e-9)
    assert e.per_inference == pytest.approx(26.6e-6 + 340.48e-6 + 35.88e-6)
    assert not e.complete and set(e.unavailable) == {"spike_routed", "static"}


def test_event_driven_updates_only_driven_neurons(workload):
    e = estimate(workload, parse_target(chip(sop=1.0, neuron_update=10.0)))
    assert e.terms["neuron_update"].count == 1_370
    assert e.terms["neuron_update"].joules == pytest.approx(1_370 * 10e-12)
    assert "event-driven" in e.terms["neuron_update"].note


def test_missing_figures_are_unavailable_never_zero(workload):
    speck = estimate(workload, load_target("speck"))
    assert speck.terms["sop"].status == "unavailable" and speck.terms["sop"].joules is None
    assert speck.per_inference == pytest.approx(0.42e-3 * 10e-3)  # only static: a lower bound
    assert not speck.complete and speck.dynamic is None
    xylo = estimate(workload, load_target("xylo"))
    assert xylo.per_inference is None and xylo.dynamic is None  # no energy figure at all: capacity only
    no_dt = estimate(mlp(dt=None), load_target("loihi"))
    assert no_dt.terms["static"].status == "unavailable" and "no dt" in no_dt.terms["static"].note
    assert no_dt.per_inference == pytest.approx(no_dt.dynamic)
    neither = estimate(workload, parse_target(chip(static_power=1.0)))
    assert neither.terms["mac"].status == "unavailable"  # no per-MAC and no per-SOP figure


def test_claims_state_the_numbers(workload):
    ann = ann_equivalent(workload, load_target("cmos45nm"))
    loihi = comparison_claim(estimate(workload, load_target("loihi")), ann)
    assert loihi.startswith("SNN on loihi uses 25.9x more energy than the ANN on 45 nm CMOS (FP32) "
                            "(763 nJ vs 29.4 nJ per inference)")
    assert "static power adds 1.04 mJ at real time" in loihi
    cheap = parse_target(chip(sop=0.001, mac=0.001, neuron_update=0.001, spike_routed=0.001))
    claim = comparison_claim(estimate(workload, cheap), ann)
    # (2,000 + 25,600 + 1,370 + 200) x 1 fJ = 29.17 pJ vs 29.44 nJ
    assert claim == ("SNN on chip uses 1,009x less energy than the ANN on 45 nm CMOS (FP32) "
                     "(29.2 pJ vs 29.4 nJ per inference)")
    spin = comparison_claim(estimate(workload, load_target("spinnaker")), ann)
    assert spin.startswith("SNN on spinnaker uses at least 13,688x more energy")
    assert "no figure for spike_routed" in spin
    tn = comparison_claim(estimate(workload, load_target("truenorth")), ann)
    assert "24.4x more" in tn and "all-in figure includes static power" in tn and "does not fit truenorth" in tn
    assert "no energy comparison" in comparison_claim(estimate(workload, load_target("xylo")), ann)
    low = parse_target(chip(sop=0.001))  # incomplete and below the ANN: no claim of a saving
    assert "too incomplete to claim a saving" in comparison_claim(estimate(workload, low), ann)


def test_references_need_a_cmos_target(workload):
    with pytest.raises(NeurostackError, match="has no energy.mac figure"):
        ann_equivalent(workload, load_target("loihi"))
