"""Our exporter writes graphs to the NIR spec: seconds, per-neuron arrays, no batch dim, v_reset set, type-checked."""

import json

import nir
import numpy as np
import pytest

from neurostack.frontend.models import ModelConfig, build_model
from neurostack.frontend.nir_export import METADATA_KEY, model_to_nir, write_graph


@pytest.mark.parametrize("name,shape", [("mlp", (20,)), ("csnn", (1, 20)), ("csnn", (1, 12, 20))])
def test_export_passes_type_check_and_follows_the_spec(tmp_path, name, shape):
    cfg = ModelConfig(name=name, input_shape=shape, n_classes=4, hidden=(16,), channels=(4, 8), tau_mem=0.02,
                      tau_out=0.05, dt=1e-3)
    model = build_model(cfg)
    path = tmp_path / "m.nir"
    write_graph(model_to_nir(model, {"dt": cfg.dt}), path)
    graph = nir.read(str(path), type_check=True)
    assert json.loads(graph.metadata[METADATA_KEY]) == {"dt": 1e-3}
    assert tuple(graph.nodes["input"].input_type["input"]) == shape  # no batch dimension
    lifs = {k: v for k, v in graph.nodes.items() if isinstance(v, nir.LIF)}
    assert lifs
    for node in lifs.values():
        assert node.tau.shape == node.v_threshold.shape == node.v_reset.shape == node.r.shape  # per neuron
        assert node.tau.ndim >= 1
        np.testing.assert_allclose(node.tau, 0.02)  # seconds, not dt/tau
        assert np.all(node.v_reset == 0) and np.all(node.v_threshold == 1)
    li = graph.nodes["li_out"]
    assert isinstance(li, nir.LI)
    np.testing.assert_allclose(li.tau, 0.05)
    # a simple chain input -> ... -> output, dropout left out
    assert ("li_out", "output") in graph.edges and not any("drop" in a or "drop" in b for a, b in graph.edges)
    assert len(graph.edges) == len(graph.nodes) - 1


def test_exported_weights_are_the_models(tmp_path):
    model = build_model(ModelConfig(name="mlp", input_shape=(6,), n_classes=3, hidden=(5,)))
    graph = model_to_nir(model, {})
    fc1 = model.stages[model.stage_names.index("fc1")].module
    np.testing.assert_array_equal(graph.nodes["fc1"].weight, fc1.weight.detach().numpy())
    np.testing.assert_array_equal(graph.nodes["fc1"].bias, fc1.bias.detach().numpy())
