"""train -> export -> simulate --parity through the command line for the zoo models (adlif, delay, spikformer).

The same guarantee as tests/cli/test_pipeline.py: at float64 no spike differs and the accuracies agree; at float32
at most 1e-4 of the spikes differ, each explained by a voltage within rounding of the threshold (or downstream of
such a difference). Tiny models, two epochs on the tiny FSDD-like folder: a few seconds each.
"""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from neurostack.cli import main

# tiny versions of each model; --no-augment keeps the two epochs quick
ZOO_OPTIONS = {
    "delay": ("--hidden", "24", "--max-delay", "5"),
    "adlif": ("--hidden", "24", "--steps", "10"),
    "spikformer": ("--dim", "16", "--depth", "1", "--heads", "2"),
}


def _invoke(*args):
    result = CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp("zoo-cache")


def _wake_up_spikformer(run_dir) -> None:
    """Two epochs of a dozen samples leave the BatchNorm running statistics near their initial values, where every
    layer after the embedding is silent; smaller variances make them all spike, attention included, so that
    parity is checked through the attention node (the run stays a run: the same weights for both sides)."""
    import torch

    from neurostack.train.checkpoint import save_weights
    from neurostack.train.rundir import RunPaths, load_trained_model

    _, model = load_trained_model(run_dir)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm1d):
                m.running_mean.zero_()
                m.running_var.fill_(0.003)
    save_weights(RunPaths(run_dir).best_weights, model)


def _parity(tmp, graph, run_dir, precision: str, cache) -> dict:
    out = tmp / f"sim-{precision}.json"
    _invoke("simulate", graph, "--parity", run_dir, "--precision", precision, "--json", out, "--cache-dir", cache)
    return json.loads(out.read_text())


@pytest.mark.parametrize("model", sorted(ZOO_OPTIONS))
def test_zoo_model_reproduces_its_spikes_in_the_simulator(tmp_path, tiny_fsdd, cache, model):
    run_dir, graph = tmp_path / f"run-{model}", tmp_path / f"{model}.nir"
    _invoke("train", "--data", f"fsdd:{tiny_fsdd}", "--model", model, "--epochs", "2", "--no-augment",
            "--out", run_dir, "--cache-dir", cache, "--device", "cpu", *ZOO_OPTIONS[model])
    if model == "spikformer":
        _wake_up_spikformer(run_dir)
    exported = _invoke("export", run_dir, "--to", "nir", "-o", graph).output
    assert ("readable by neurostack" in exported) == (model == "spikformer"), exported
    r64, r32 = (_parity(tmp_path, graph, run_dir, p, cache) for p in ("float64", "float32"))
    p64, p32 = r64["parity"], r32["parity"]
    assert p64["spikes_total"] > 0 and p64["spikes_differing"] == 0, p64
    assert p64["simulator_predictions_agree"] == r64["samples"]
    assert abs(r64["accuracy"] - p64["pytorch_accuracy"]) <= 1e-12
    assert p32["spikes_differing"] <= 1e-4 * p32["spikes_total"], p32
    if p32["spikes_differing"]:
        assert p32["explained"]["unexplained"] == 0, p32["explained"]
    assert abs(r32["accuracy"] - p32["pytorch_accuracy"]) <= 1 / r32["samples"] + 1e-12
    # every neuron node of the model was compared, inner nodes of composite stages included
    compared = set(p64["per_node"])
    expected = {"delay": {"lif1", "li_out"}, "adlif": {"lif1", "adapt1", "li_out"},
                "spikformer": {"lif_embed", "b1_q_lif", "b1_k_lif", "b1_v_lif", "b1_attn_lif", "b1_proj_lif",
                               "b1_mlp1_lif", "b1_mlp2_lif"}}[model]
    assert expected <= compared
    assert all(p64["per_node"][n].get("spikes", 1) > 0 for n in expected), p64["per_node"]  # every layer spiked
