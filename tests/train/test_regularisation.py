"""Early stopping, the optimiser's decay groups, the train command's new options, and a zoo model end to end."""

import json

import pytest
import torch
from click.testing import CliRunner

from neurostack.cli import main
from neurostack.errors import NeurostackError
from neurostack.frontend.models import ZOO_AUGMENT, ModelConfig, build_model
from neurostack.train.config import TrainConfig
from neurostack.train.loop import make_optimiser
from neurostack.train.session import resolve_augment
from train_helpers import resolve


def test_mlp_defaults_are_unchanged_and_zoo_models_get_their_own():
    mlp = resolve()
    assert (mlp.view, mlp.steps, mlp.lr, mlp.model.hidden, mlp.model.dropout) == ("image", 25, 2e-3, (512,), 0.3)
    assert mlp.weight_decay == 1e-4 and mlp.label_smoothing == 0.0 and mlp.patience == 0 and mlp.grad_clip == 0.0
    adlif = resolve(model_name="adlif")
    assert adlif.view == "image" and adlif.model.readout == "mean" and adlif.grad_clip == 1.0
    delay = resolve(model_name="delay")
    assert delay.view == "sequence" and delay.features["hop_s"] == 0.01 and delay.model.max_delay == 25
    spik = resolve(model_name="spikformer", model_options={"dim": 32, "heads": 8, "depth": None})
    assert spik.view == "image" and (spik.model.dim, spik.model.heads, spik.model.depth) == (32, 8, 2)
    assert resolve(model_name="delay", hidden="64", view="image").model.hidden == (64,)
    with pytest.raises(NeurostackError, match="multiple of"):
        resolve(model_name="spikformer", model_options={"dim": 30, "heads": 4})


def test_augment_switches():
    assert resolve_augment(False).active() == []
    assert resolve_augment(False, mixup=0.2, time_shift=None).active() == ["mixup"]
    assert resolve_augment(True).active() == ["time_shift"]  # the mlp's augmentation is what it always was
    zoo = resolve_augment(True, ZOO_AUGMENT, time_mask=0)
    assert "time_mask" not in zoo.active() and {"time_shift", "time_stretch", "freq_mask"} <= set(zoo.active())
    with pytest.raises(NeurostackError):
        resolve_augment(True, time_stretch=1.5)
    assert resolve_augment(True, vtlp=0.1).active() == ["time_shift", "vtlp"]
    with pytest.raises(NeurostackError, match="vtlp"):
        resolve_augment(True, vtlp=1.0)
    assert resolve().augment.active() == ["time_shift"]
    assert resolve(model_name="adlif").augment.active() == resolve_augment(True, ZOO_AUGMENT).active()
    assert resolve(model_name="adlif", augment=False).augment.active() == []


def test_time_constants_and_delays_are_not_weight_decayed():
    cfg = TrainConfig(weight_decay=0.1)
    groups = make_optimiser(build_model(ModelConfig(name="mlp", input_shape=(4,), hidden=(8,))), cfg).param_groups
    assert len(groups) == 1  # the mlp's optimiser is what it always was
    for name, shape in (("adlif", (4,)), ("delay", (4,))):
        model = build_model(ModelConfig(name=name, input_shape=shape, hidden=(8,), max_delay=3))
        groups = make_optimiser(model, cfg).param_groups
        assert len(groups) == 2 and groups[1]["weight_decay"] == 0.0
        no_decay = {id(p) for p in groups[1]["params"]}
        named = {n.rsplit(".", 1)[-1] for n, p in model.named_parameters() if id(p) in no_decay}
        assert named and named <= {"log_tau_mem", "log_tau_adapt", "jump", "delay"}


@pytest.fixture(scope="module")
def early_stopped(tmp_path_factory, tiny_fsdd):
    root = tmp_path_factory.mktemp("es")
    out = root / "run"
    result = CliRunner().invoke(main, [
        "train", "--data", f"fsdd:{tiny_fsdd}", "--split", "speaker:bob", "--epochs", "12", "--hidden", "16",
        "--lr", "1e-6", "--patience", "2", "--no-augment", "--label-smoothing", "0.1", "--weight-decay", "0",
        "--dropout", "0", "--out", str(out), "--cache-dir", str(root / "cache"), "--device", "cpu"],
        catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return out, root / "cache"


def test_early_stopping_stops_after_patience_epochs_without_improvement(early_stopped):
    out, cache = early_stopped
    metrics = json.loads((out / "metrics.json").read_text())
    # a learning rate of 1e-6 cannot improve on epoch 1 much: training stops well before 12 epochs
    assert metrics["stopped_early"] is not None and metrics["epochs_run"] < 12
    assert metrics["epochs_run"] - metrics["best_epoch"] == 2
    config = json.loads((out / "config.json").read_text())
    assert config["augment"]["time_shift"] == 0 and config["patience"] == 2 and config["label_smoothing"] == 0.1
    # resuming a stopped run trains nothing more
    result = CliRunner().invoke(main, ["train", "--out", str(out), "--resume", "--cache-dir", str(cache)],
                                catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert json.loads((out / "metrics.json").read_text())["epochs_run"] == metrics["epochs_run"]


def test_a_delay_model_trains_from_the_command_line_and_keeps_whole_step_delays(tmp_path, tiny_fsdd):
    from safetensors.torch import load_file

    out = tmp_path / "run"
    result = CliRunner().invoke(main, [
        "train", "--data", f"fsdd:{tiny_fsdd}", "--split", "speaker:bob", "--model", "delay", "--epochs", "2",
        "--hidden", "8", "--max-delay", "4", "--mixup", "0.4", "--vtlp", "0.1", "--out", str(out), "--cache-dir", str(tmp_path / "c"),
        "--device", "cpu"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    weights = load_file(str(out / "best.safetensors"))
    config = json.loads((out / "config.json").read_text())
    # the parameter holds delay / delay_scale (the delays learn delay_scale times faster): whole steps once scaled
    delays = [t * config["model"]["delay_scale"] for k, t in weights.items() if k.endswith(".delay")]
    assert delays and all(torch.allclose(d, torch.round(d), rtol=0, atol=1e-5) for d in delays)
    assert config["view"] == "sequence" and config["model"]["max_delay"] == 4 and config["augment"]["mixup"] == 0.4
    assert config["augment"]["vtlp"] == 0.1

