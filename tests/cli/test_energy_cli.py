"""`simulate --report-sops --target ... --plot --quantize` and `neurostack targets` through the command line."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from neurostack.cli import main


def _invoke(*args, ok: bool = True):
    result = CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)
    if ok:
        assert result.exit_code == 0, result.output
    return result


@pytest.fixture(scope="module")
def exported(tmp_path_factory, tiny_fsdd):
    root = tmp_path_factory.mktemp("energy")
    run_dir, graph, cache = root / "run", root / "m.nir", root / "cache"
    _invoke("train", "--data", f"fsdd:{tiny_fsdd}", "--epochs", "1", "--hidden", "32", "--out", run_dir,
            "--cache-dir", cache, "--device", "cpu")
    _invoke("export", run_dir, "--to", "nir", "-o", graph)
    return graph, cache


def test_report_sops_on_all_targets_writes_counts_energy_plot_and_claims(exported, tmp_path):
    graph, cache = exported
    out, png = tmp_path / "r.json", tmp_path / "e.png"
    result = _invoke("simulate", graph, "--cache-dir", cache, "--report-sops", "--target", "all", "--json", out,
                     "--plot", png)
    report = json.loads(out.read_text())
    sops = report["sops"]
    assert set(sops) >= {"per_inference", "per_timestep", "per_node"}
    assert len(sops["per_timestep"]) == 25 and sops["per_inference"] == pytest.approx(sum(sops["per_timestep"]))
    assert set(sops["per_node"]) == {"fc1", "fc_out"}
    # image view: the first layer sees real values (MACs), the readout layer sees spikes (SOPs)
    assert report["macs"]["per_node"]["fc1"] > 0 and sops["per_node"]["fc1"] == 0
    assert sops["per_node"]["fc_out"] > 0
    assert report["spikes"]["per_inference"] == pytest.approx(report["nodes"]["lif1"]["spikes"] / report["samples"])
    assert report["neuron_updates"]["per_node"]["lif1"] == 32 * 25
    for name in ("cmos45nm", "loihi", "loihi2", "truenorth", "spinnaker", "spinnaker2", "speck", "xylo"):
        entry = report["energy_j"][name]
        assert {"per_inference", "terms", "violations"} <= set(entry)
    loihi = report["energy_j"]["loihi"]
    assert loihi["per_inference"] > 0 and loihi["terms"]["sop"] > 0
    assert any(v["node"] for v in report["energy_j"]["speck"]["violations"])  # Speck runs no flat Affine layers
    assert report["ann_equivalent_j"] > 0
    assert "ANN on 45 nm CMOS" in report["claims"]["loihi"]
    assert "Energy per inference by target" in result.output
    assert png.read_bytes()[:4] == b"\x89PNG"


def test_quantize_reports_accuracy_before_and_after_per_weight_precision(exported, tmp_path):
    graph, cache = exported
    out = tmp_path / "q.json"
    result = _invoke("simulate", graph, "--cache-dir", cache, "--target", "loihi,xylo,odin", "--quantize",
                     "--json", out)
    q = json.loads(out.read_text())["quantized"]
    assert q["accuracy_before"] is not None
    assert set(q["by_bits"]) == {"9", "8", "3"}
    assert q["by_bits"]["8"]["targets"] == ["xylo"]
    assert all(0.0 <= v["accuracy"] <= 1.0 for v in q["by_bits"].values())
    assert q["by_bits"]["3"]["weights_zeroed"] > q["by_bits"]["9"]["weights_zeroed"]
    assert "quantised to 3-bit weights (odin)" in result.output


def test_a_user_target_file_is_used_and_a_bad_one_is_a_clean_error(exported, tmp_path):
    graph, cache = exported
    mine = tmp_path / "mychip.toml"
    mine.write_text('[target]\nname = "mychip"\ntitle = "My chip"\nmain_source = "lab notes"\n'
                    'update_model = "event-driven"\n\n'
                    '[energy.sop]\nvalue = 1.0\nunit = "pJ"\nbasis = "measured"\nconfidence = "L"\n'
                    'source = "lab notes, 2026"\n')
    out = tmp_path / "m.json"
    _invoke("simulate", graph, "--cache-dir", cache, "--target", mine, "--json", out, "--limit", "5")
    energy = json.loads(out.read_text())["energy_j"]
    assert list(energy) == ["mychip"] and energy["mychip"]["terms"]["sop"] > 0
    bad = tmp_path / "bad.toml"
    bad.write_text('[target]\nname = "bad"\n\n[energy.sop]\nvalue = -1.0\nunit = "pJ"\nsource = "x"\n')
    for target in (bad, "no-such-chip"):
        result = _invoke("simulate", graph, "--cache-dir", cache, "--target", target, ok=False)
        assert result.exit_code == 2 and "Traceback" not in result.output
        assert len(result.output.strip().splitlines()) == 1, result.output


def test_targets_lists_every_builtin_target_and_shows_one_with_sources():
    listing = _invoke("targets").output
    for name in ("cmos45nm", "loihi", "loihi2", "truenorth", "spinnaker", "spinnaker2", "speck", "xylo"):
        assert name in listing
    detail = _invoke("targets", "truenorth").output
    assert "26" in detail and "Merolla" in detail
