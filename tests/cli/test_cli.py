"""The command line through click's CliRunner: a short end-to-end train, resume, export, and clean errors."""

import json

import nir
import pytest
import torch
from click.testing import CliRunner

from neurostack.cli import main


def _invoke(*args):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


def test_help_lists_the_main_commands():
    result = _invoke("--help")
    assert result.exit_code == 0
    for command in ("train", "export", "simulate", "inspect"):
        assert command in result.output


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory, tiny_fsdd):
    root = tmp_path_factory.mktemp("runs")
    out = root / "run"
    cache = root / "cache"
    result = _invoke("train", "--data", f"fsdd:{tiny_fsdd}", "--split", "speaker:bob", "--epochs", "2",
                     "--hidden", "32", "--out", out, "--cache-dir", cache, "--device", "cpu")
    assert result.exit_code == 0, result.output
    return out, cache


def test_train_writes_a_complete_run_directory(trained_run):
    out, _ = trained_run
    metrics = json.loads((out / "metrics.json").read_text())
    for key in ("test_accuracy", "val_accuracy", "epochs", "params"):
        assert key in metrics
    assert metrics["epochs"] == 2 and len(metrics["history"]) == 2 and metrics["params"] > 0
    assert 0.0 <= metrics["test_accuracy"] <= 1.0
    config = json.loads((out / "config.json").read_text())
    assert config["model"]["name"] == "mlp" and config["seed"] == 0
    for png in ("training_curve.png", "confusion_matrix.png"):
        assert (out / png).read_bytes()[:4] == b"\x89PNG"
    state = torch.load(out / "checkpoints" / "last.pt", weights_only=True)
    assert state["epoch"] == 2


def test_resume_continues_from_the_last_checkpoint(trained_run, tmp_path):
    out, cache = trained_run
    result = _invoke("train", "--out", out, "--resume", "--epochs", "3", "--cache-dir", cache)
    assert result.exit_code == 0, result.output
    metrics = json.loads((out / "metrics.json").read_text())
    assert [h["epoch"] for h in metrics["history"]] == [1, 2, 3]


def test_train_refuses_to_overwrite_an_existing_run(trained_run):
    out, cache = trained_run
    result = CliRunner().invoke(main, ["train", "--out", str(out), "--cache-dir", str(cache)])
    assert result.exit_code == 2 and "already holds a run" in result.output


def test_export_writes_a_spec_nir_file(trained_run, tmp_path):
    out, _ = trained_run
    path = tmp_path / "model.nir"
    result = _invoke("export", out, "--to", "nir", "-o", path)
    assert result.exit_code == 0, result.output
    graph = nir.read(str(path), type_check=True)
    assert {"input", "fc1", "lif1", "fc_out", "li_out", "output"} <= set(graph.nodes)


@pytest.mark.parametrize("args,message", [
    (["--data", "fsdd:/no/such/folder"], "/no/such/folder"),
    (["--model", "no-such-model"], "no-such-model"),
    (["--data", "no-such-data"], "no-such-data"),
    (["--encoder", "morse"], "morse"),
])
def test_bad_train_input_is_one_clean_line_with_exit_code_2(tmp_path, args, message):
    result = CliRunner().invoke(main, ["train", "--epochs", "1", "--out", str(tmp_path / "r"), *args])
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    assert message in result.output and len(result.output.strip().splitlines()) <= 4


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU")
def test_device_cuda_without_a_gpu_is_a_clean_error(tmp_path):
    result = CliRunner().invoke(main, ["train", "--device", "cuda", "--epochs", "1", "--out", str(tmp_path / "r")])
    assert result.exit_code == 2 and "CUDA" in result.output


def test_export_of_a_missing_run_is_a_clean_error(tmp_path):
    result = CliRunner().invoke(main, ["export", str(tmp_path / "nothing"), "-o", str(tmp_path / "m.nir")])
    assert result.exit_code == 2 and "no such run directory" in result.output
