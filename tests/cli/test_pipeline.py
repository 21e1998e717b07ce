"""train -> export -> simulate --parity through the command line, for every exportable model.

The simulator must reproduce the PyTorch model: at float64 no spike differs over the whole test split and the
accuracies agree; at float32 at most 1e-4 of the spikes differ and each one is explained by a voltage within
rounding of the threshold (or follows from an earlier such difference in the same sample).
"""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from neurostack.cli import main


def _invoke(*args):
    result = CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result


def _train_export(tmp, data: str, model: str, cache, *extra) -> tuple:
    run_dir, graph = tmp / f"run-{model}", tmp / f"{model}.nir"
    _invoke("train", "--data", data, "--model", model, "--epochs", "2", "--hidden", "32", "--out", run_dir,
            "--cache-dir", cache, "--device", "cpu", *extra)
    _invoke("export", run_dir, "--to", "nir", "-o", graph)
    return run_dir, graph


def _parity(tmp, graph, run_dir, precision: str, *extra) -> dict:
    out = tmp / f"sim-{precision}.json"
    _invoke("simulate", graph, "--parity", run_dir, "--precision", precision, "--json", out, *extra)
    return json.loads(out.read_text())


def _check_parity(report64: dict, report32: dict) -> None:
    p64 = report64["parity"]
    assert p64["spikes_total"] > 0
    assert p64["spikes_differing"] == 0
    assert abs(report64["accuracy"] - p64["pytorch_accuracy"]) <= 1 / report64["samples"] + 1e-12
    p32 = report32["parity"]
    assert p32["spikes_differing"] <= 1e-4 * p32["spikes_total"]
    if p32["spikes_differing"]:
        assert p32["explained"]["unexplained"] == 0, p32["explained"]
    assert abs(report32["accuracy"] - p32["pytorch_accuracy"]) <= 1 / report32["samples"] + 1e-12


@pytest.mark.slow
@pytest.mark.parametrize("model", ["mlp", "csnn"])  # the models NIR export supports today
def test_every_exportable_model_reproduces_its_spikes_in_the_simulator(tmp_path, tiny_fsdd, model):
    cache = tmp_path / "cache"
    run_dir, graph = _train_export(tmp_path, f"fsdd:{tiny_fsdd}", model, cache)
    _check_parity(_parity(tmp_path, graph, run_dir, "float64", "--cache-dir", cache),
                  _parity(tmp_path, graph, run_dir, "float32", "--cache-dir", cache))


@pytest.mark.slow
def test_real_fsdd_recordings_train_export_and_simulate_with_parity(tmp_path, fsdd_dir):
    cache = tmp_path / "cache"
    run_dir, graph = _train_export(tmp_path, f"fsdd:{fsdd_dir}", "mlp", cache, "--limit", "200")
    # the whole FSDD test split (500 recordings), not only the samples trained on
    _check_parity(_parity(tmp_path, graph, run_dir, "float64", "--cache-dir", cache),
                  _parity(tmp_path, graph, run_dir, "float32", "--cache-dir", cache))


@pytest.mark.slow
def test_synth_digits_train_export_and_simulate_with_parity(tmp_path):
    cache = tmp_path / "cache"
    run_dir, graph = _train_export(tmp_path, "synth-digits", "mlp", cache, "--limit", "200")
    _check_parity(_parity(tmp_path, graph, run_dir, "float64", "--cache-dir", cache, "--limit", "300"),
                  _parity(tmp_path, graph, run_dir, "float32", "--cache-dir", cache, "--limit", "300"))
