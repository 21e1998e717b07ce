"""Models build, run time-major, record every stage, and learn."""

import pytest
import torch

from neurostack.errors import NeurostackError
from neurostack.frontend.models import ModelConfig, build_model, calibrate_init, count_parameters, model_input_shape


@pytest.mark.parametrize("name,shape", [("mlp", (12,)), ("csnn", (1, 12)), ("csnn", (1, 10, 12))])
def test_models_run_and_record_each_stage(name, shape):
    model = build_model(ModelConfig(name=name, input_shape=shape, n_classes=3, hidden=(16,), channels=(4, 4)))
    x = torch.rand(20, 5, *shape)
    scores = model(x)
    assert scores.shape == (5, 3)
    v, outs, volts = model.eval().run(x, record=True, record_voltages=True)
    assert v.shape == (20, 5, 3)
    assert torch.equal(outs["li_out"], v)
    lif_names = [n for n in model.stage_names if n.startswith("lif")]
    assert lif_names and all(set(outs[n].unique().tolist()) <= {0.0, 1.0} for n in lif_names)
    assert all(volts[n].shape == outs[n].shape for n in lif_names)
    assert count_parameters(model) > 0


def test_mlp_learns_a_separable_toy_problem():
    torch.manual_seed(0)
    model = build_model(ModelConfig(name="mlp", input_shape=(8,), n_classes=2, hidden=(32,), dropout=0.0))
    calibrate_init(model, torch.rand(30, 64, 8))
    x = torch.rand(30, 64, 8) * 0.2
    y = torch.randint(0, 2, (64,))
    x[:, y == 1, :4] += 0.8
    x[:, y == 0, 4:] += 0.8
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    for _ in range(200):
        loss = torch.nn.functional.cross_entropy(model(x), y)
        opt.zero_grad(), loss.backward(), opt.step()
    assert (model(x).argmax(1) == y).float().mean() > 0.9


def test_model_input_shape_and_unknown_model():
    assert model_input_shape("csnn", "sequence", 100, 40, 40) == (1, 40)
    assert model_input_shape("csnn", "image", 50, 40, 2000) == (1, 50, 40)
    assert model_input_shape("mlp", "image", 50, 40, 2000) == (2000,)
    with pytest.raises(NeurostackError, match="unknown model"):
        build_model(ModelConfig(name="transformer-xl"))
