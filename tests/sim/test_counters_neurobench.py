"""Our SOP / MAC / dense counts equal NeuroBench 2.x `SynapticOperations` on the same model and input.

NeuroBench hooks the PyTorch model's Linear/Conv layers; we count inside the simulator running the exported
NIR graph. Both runs are float64 so that the spikes (and therefore the counts) are the same.
"""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("neurobench")

from neurobench.metrics.workload import SynapticOperations  # noqa: E402
from neurobench.models import TorchModel  # noqa: E402

from neurostack.frontend.models import ModelConfig, build_model, calibrate_init  # noqa: E402
from neurostack.frontend.nir_export import model_to_nir  # noqa: E402
from neurostack.sim import lower, run  # noqa: E402

STEPS = 8


class BatchFirst(torch.nn.Module):
    """NeuroBench feeds (batch, time, ...); our models are time-major."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, x):
        return self.model(x.transpose(0, 1))


def _model(name: str, shape: tuple[int, ...], x_calib: torch.Tensor):
    torch.manual_seed(0)
    cfg = ModelConfig(name=name, input_shape=shape, n_classes=5, hidden=(24,), channels=(3, 4), kernel_size=3,
                      tau_mem=0.01, tau_out=0.01, dropout=0.2)
    model = build_model(cfg).double()
    calibrate_init(model, x_calib, target_std=2.0)
    with torch.no_grad():  # prune: zero weights must not be counted
        gen = torch.Generator().manual_seed(1)
        for p in model.parameters():
            if p.ndim > 1:
                p.mul_((torch.rand(p.shape, generator=gen) > 0.3).double())
    return model.eval()


def _inputs(kind: str, shape: tuple[int, ...], n: int = 6) -> np.ndarray:
    rng = np.random.default_rng(2)
    if kind == "real":  # the image view: the same real-valued features at every step
        frame = rng.normal(0, 1, (n, 1, *shape))
        return np.repeat(frame, STEPS, axis=1)
    return (rng.random((n, STEPS, *shape)) < 0.3).astype(np.float64)  # rate-coded spikes


def _neurobench(model, x: np.ndarray) -> dict:
    net = TorchModel(BatchFirst(model))
    net.register_hooks()
    xt = torch.from_numpy(x)
    with torch.no_grad():
        preds = net(xt)
    metric = SynapticOperations()
    result = metric(net, preds, (xt, torch.zeros(len(x))))
    net.cleanup_hooks()
    return result


@pytest.mark.parametrize("name,shape", [("mlp", (30,)), ("csnn", (1, 9, 10))])
@pytest.mark.parametrize("kind", ["real", "spikes"])
def test_sop_mac_and_dense_totals_equal_neurobench(name, shape, kind):
    x = _inputs(kind, shape)
    model = _model(name, shape, torch.from_numpy(np.swapaxes(x, 0, 1)))
    expected = _neurobench(model, x)

    plan = lower(model_to_nir(model, {"dt": 1e-3}), dt=1e-3, precision="float64")
    result = run(plan, x)
    work = result.workload(plan)
    counted = [n.name for n in work.synaptic if n.counted_by_neurobench]
    assert set(counted) == {s for s in model.stage_names if s.startswith(("fc", "conv"))}
    # integer totals over all samples, divided once by the sample count, as NeuroBench does
    total = lambda what: sum(result.counts.total(what, n) for n in counted) / len(x)  # noqa: E731
    ours = {"Effective_ACs": total("sops"), "Effective_MACs": total("macs"),
            "Dense": sum(work.node(n).dense for n in counted)}
    assert ours["Effective_ACs"] > 0  # hidden layers do spike: the comparison is not 0 == 0
    if kind == "real":
        assert ours["Effective_MACs"] > 0
    assert ours == {k: float(expected[k]) for k in ours}
