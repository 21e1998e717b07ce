"""Weight averaging (`--ema`): the averaged weights are the ones validated, kept, tested and resumed."""

import json

import pytest
import torch
from click.testing import CliRunner
from safetensors.torch import load_file

from neurostack.cli import main
from neurostack.errors import NeurostackError
from neurostack.frontend import models
from neurostack.frontend.models import build_model
from neurostack.train.loop import WeightAverage
from train_helpers import resolve


def test_average_follows_the_weights_with_warm_up_and_swaps_back():
    net = torch.nn.Sequential(torch.nn.Linear(3, 2), torch.nn.BatchNorm1d(2))
    avg = WeightAverage(net, decay=0.9)
    w0 = net[0].weight.detach().clone()
    with torch.no_grad():
        net[0].weight.add_(1.0)
    net[1].num_batches_tracked.fill_(7)
    avg.update(net)  # first update: d = min(0.9, 2 / 11)
    d = 2 / 11
    assert torch.allclose(avg.state["0.weight"], d * w0 + (1 - d) * (w0 + 1))
    assert int(avg.state["1.num_batches_tracked"]) == 7  # integer buffers are copied, not averaged
    for _ in range(200):
        avg.update(net)
    assert torch.allclose(avg.state["0.weight"], w0 + 1, atol=1e-6)  # converges to constant weights
    raw = net[0].weight.detach().clone()
    avg.state["0.weight"].zero_()
    with avg.applied(net) as evaluated:
        assert evaluated is net and torch.count_nonzero(net[0].weight) == 0
    assert torch.equal(net[0].weight, raw)  # the model's own weights come back
    again = WeightAverage(net, decay=0.9)
    again.load_state_dict(avg.state_dict())
    assert again.updates == avg.updates and torch.equal(again.state["0.weight"], avg.state["0.weight"])


def test_ema_option_defaults_to_off_and_a_model_default_can_switch_it_on(monkeypatch):
    for name in models.MODELS:  # the csnn averages by default (chosen on the fsdd-dev speakers)
        assert resolve(model_name=name).ema == (0.99 if name == "csnn" else 0.0)
    assert resolve(model_name="csnn", ema=0.0).ema == 0.0
    assert resolve(ema=0.99).ema == 0.99
    monkeypatch.setitem(models.MODEL_DEFAULTS, "mlp", {**models.MODEL_DEFAULTS["mlp"], "ema": 0.95})
    assert resolve().ema == 0.95 and resolve(ema=0.0).ema == 0.0  # an explicit 0 switches it off
    assert "ema" not in resolve().model.to_dict()  # a training option, not a model field
    with pytest.raises(NeurostackError, match="ema"):
        resolve(ema=1.0)
    result = CliRunner().invoke(main, ["train", "--ema", "1.5"])
    assert result.exit_code == 2 and "--ema" in result.output


def _train(tiny_fsdd, out, cache, *extra):
    result = CliRunner().invoke(main, [
        "train", "--data", f"fsdd:{tiny_fsdd}", "--split", "speaker:bob", "--hidden", "16", "--lr", "5e-3",
        "--out", str(out), "--cache-dir", str(cache), "--device", "cpu", "--seed", "3", *extra],
        catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result


def test_the_averaged_weights_are_validated_kept_and_saved_in_the_checkpoint(tmp_path, tiny_fsdd):
    out = tmp_path / "run"
    _train(tiny_fsdd, out, tmp_path / "c", "--epochs", "1", "--ema", "0.9")
    state = torch.load(out / "checkpoints" / "last.pt", map_location="cpu", weights_only=True)
    assert json.loads((out / "config.json").read_text())["ema"] == 0.9
    assert state["ema"]["updates"] > 0
    best = load_file(str(out / "best.safetensors"))
    # one epoch: the best weights are the average after it, not the weights the optimiser reached
    assert set(best) == set(state["ema"]["state"])
    assert all(torch.equal(best[k], state["ema"]["state"][k]) for k in best)
    assert any(not torch.equal(best[k], state["model"][k]) for k in best)
    # the test accuracy is that of the averaged weights
    from neurostack.train.config import TrainConfig
    from neurostack.train.evaluate import predict
    from neurostack.train.session import load_data

    cfg = TrainConfig.from_dict(json.loads((out / "config.json").read_text()))
    data = load_data(cfg, progress=False)
    model = build_model(cfg.model)
    model.load_state_dict(best)
    pred = predict(model, data.x["test"], spec=cfg.input_spec(), seed=cfg.seed, device=torch.device("cpu"))
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["test_accuracy"] == pytest.approx(float((pred == data.y["test"]).mean()))


def test_without_ema_the_checkpoint_holds_no_average(tmp_path, tiny_fsdd):
    out = tmp_path / "run"
    _train(tiny_fsdd, out, tmp_path / "c", "--epochs", "1")
    state = torch.load(out / "checkpoints" / "last.pt", map_location="cpu", weights_only=True)
    assert "ema" not in state and json.loads((out / "config.json").read_text())["ema"] == 0.0
    best = load_file(str(out / "best.safetensors"))
    assert all(torch.equal(best[k], state["model"][k]) for k in best)


def test_a_resumed_averaged_run_ends_with_the_same_weights(tmp_path, tiny_fsdd, monkeypatch):
    from neurostack.train import loop

    args = ("--epochs", "3", "--ema", "0.8", "--model", "delay", "--max-delay", "3")
    whole, split = tmp_path / "whole", tmp_path / "split"
    _train(tiny_fsdd, whole, tmp_path / "c", *args)
    save = loop.save_checkpoint

    def save_then_stop(path, state):  # an interruption right after epoch 2's checkpoint
        save(path, state)
        if state["epoch"] == 2:
            raise KeyboardInterrupt

    monkeypatch.setattr(loop, "save_checkpoint", save_then_stop)
    result = CliRunner().invoke(main, [
        "train", "--data", f"fsdd:{tiny_fsdd}", "--split", "speaker:bob", "--hidden", "16", "--lr", "5e-3",
        "--out", str(split), "--cache-dir", str(tmp_path / "c"), "--device", "cpu", "--seed", "3", *args])
    assert result.exit_code == 130, result.output
    monkeypatch.setattr(loop, "save_checkpoint", save)
    result = CliRunner().invoke(main, ["train", "--out", str(split), "--resume", "--cache-dir", str(tmp_path / "c")],
                                catch_exceptions=False)
    assert result.exit_code == 0, result.output
    a = torch.load(whole / "checkpoints" / "last.pt", map_location="cpu", weights_only=True)
    b = torch.load(split / "checkpoints" / "last.pt", map_location="cpu", weights_only=True)
    assert a["epoch"] == b["epoch"] == 3 and a["ema"]["updates"] == b["ema"]["updates"] > 0
    for k in a["ema"]["state"]:
        assert torch.equal(a["ema"]["state"][k], b["ema"]["state"][k]), k
        assert torch.equal(a["model"][k], b["model"][k]), k
    wa, wb = load_file(str(whole / "best.safetensors")), load_file(str(split / "best.safetensors"))
    assert all(torch.equal(wa[k], wb[k]) for k in wa)
