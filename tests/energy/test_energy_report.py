"""Report rendering, JSON, plot and the targets listing."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from rich.console import Console

from neurostack.energy.estimate import estimate
from neurostack.energy.listing import target_details, targets_table
from neurostack.energy.plot import plot_energy
from neurostack.energy.report import render, to_json
from neurostack.energy.targets import list_targets, load_target


@pytest.fixture()
def estimates(workload):
    return [estimate(workload, t) for t in list_targets()]


def test_json_keys_and_numbers(workload, estimates):
    workload.node("fc2").per_step_sops = [100.0, 300.0]
    workload.node("fc1").per_step_sops = [1.0]
    out = to_json(workload, estimates)
    json.dumps(out)  # serialisable
    assert out["sops"]["per_inference"] == 2_000 and out["sops"]["per_node"] == {"fc1": 0, "fc2": 2_000}
    assert out["sops"]["per_timestep"] == [101.0, 300.0]
    assert out["macs"]["per_inference"] == 25_600 and out["neuron_updates"]["per_inference"] == 1_380
    assert out["spikes"]["per_node"] == {"lif1": 200, "li": 0}
    assert out["ann_equivalent_j"] == pytest.approx(6_400 * 4.6e-12)
    assert out["spikformer_style_j"] == pytest.approx(25_600 * 4.6e-12 + 2_000 * 0.9e-12)
    energy = out["energy_j"]
    assert set(energy) == {t.label for t in list_targets()}
    assert set(energy["loihi"]) >= {"per_inference", "terms", "violations", "cores", "chips", "claim"}
    assert energy["loihi"]["terms"]["sop"] == pytest.approx(2_000 * 23.6e-12)
    assert energy["xylo"]["per_inference"] is None and energy["xylo"]["terms"]["sop"] is None
    assert energy["truenorth"]["term_details"]["static"]["status"] == "included"
    [fan] = [v for v in energy["xylo"]["violations"] if v["limit"] == "max_fan_in"]
    assert fan == {"node": "fc2", "limit": "max_fan_in", "value": 128, "allowed": 63, "severity": "error",
                   "message": "'fc2' gives a neuron 128 non-zero inputs; xylo allows a fan-in of 63"}
    assert out["sparsity"]["lif1"]["activation"] == pytest.approx(1 - 200 / 1_280)
    assert out["sparsity"]["fc2"]["connection"] == pytest.approx(280 / 1_280)
    assert out["sparsity"]["li"]["activation"] is None  # non-spiking readout


def test_render_prints_tables_violations_and_claims(workload, estimates):
    console = Console(record=True, width=240)
    render(workload, estimates, console)
    text = console.export_text()
    for needle in ("Work per inference", "fc1", "84.4%", "Energy per inference by target", "loihi", "1.04 mJ",
                   "ANN equivalent on 45 nm CMOS (FP32): 6,400 MACs x 4.6 pJ = 29.4 nJ",
                   "'fc2' gives a neuron 128 non-zero inputs; xylo allows a fan-in of 63",
                   "layer 'fc1' is Affine on a flat input; speck runs Conv2d",
                   "SNN on loihi uses 25.9x more energy than the ANN on 45 nm CMOS (FP32)"):
        assert needle in text, needle


def test_plot_is_written_atomically(workload, estimates, tmp_path):
    path = tmp_path / "plots" / "energy.png"
    plot_energy(workload, estimates, path)
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000
    assert [p.name for p in path.parent.iterdir()] == ["energy.png"]  # no temporary file left


def test_targets_listing():
    console = Console(record=True, width=240)
    console.print(targets_table(list_targets()))
    console.print(target_details(load_target("truenorth")))
    text = console.export_text()
    for needle in ("loihi", "23.6 pJ (sim., M)", "26 pJ (all-in, H)", "128 x 1,024 = 131,072",
                   "1,000 hidden + 8 out", "cmos45nm [fp32, fp16, int8]", "Merolla", "42 mW"):
        assert needle in text, needle


def test_energy_package_imports_no_torch_and_no_cli():
    code = ("import sys, neurostack.energy.report, neurostack.energy.plot, neurostack.energy.listing, "
            "neurostack.energy.estimate; bad = [m for m in ('torch', 'neurostack.cli', 'norse') if m in sys.modules]; "
            "print(bad); sys.exit(1 if bad else 0)")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert run.returncode == 0, run.stdout + run.stderr
