"""Tolerant loading: files other tools write are repaired where the intent is clear, and every repair is said."""

from __future__ import annotations

import json

import h5py
import nir
import numpy as np
import pytest

from neurostack.sim import load_graph, lower, run
from sim_helpers import lif


def _mlp(n_in=3, n=4):
    w = np.random.default_rng(0).normal(1, 1, (n, n_in)).astype(np.float32)
    return nir.NIRGraph(nodes={"input": nir.Input(input_type={"input": np.array([n_in])}),
                               "fc": nir.Affine(w, np.zeros(n, np.float32)),
                               "lif": lif(n, th=0.5), "output": nir.Output(output_type={"output": np.array([n])})},
                        edges=[("input", "fc"), ("fc", "lif"), ("lif", "output")])


def test_clean_file_loads_without_warnings(write):
    loaded = load_graph(write(_mlp()))
    assert loaded.warnings == [] and loaded.metadata == {}
    assert set(loaded.graph.nodes) == {"input", "fc", "lif", "output"}


def test_batch_dim_in_input_is_stripped_and_type_check_relaxed(write):
    g = _mlp()
    g.nodes["input"] = nir.Input(input_type={"input": np.array([1, 3])})
    g.nodes["output"] = nir.Output(output_type={"output": np.array([1, 1, 4])})
    loaded = load_graph(write(g))
    assert any(w.startswith("file needed type_check=False") for w in loaded.warnings)
    assert "stripped batch dim from Input 'input': (1, 3) -> (3,)" in loaded.warnings
    assert any("stripped batch dim from Output 'output'" in w for w in loaded.warnings)
    assert tuple(loaded.graph.nodes["input"].input_type["input"]) == (3,)
    plan = lower(loaded.graph, dt=1e-3)
    assert plan.input_shape == (3,) and plan.output_shape == (4,)


def test_old_file_without_v_reset_gets_zeros(write):
    path = write(_mlp())
    with h5py.File(path, "r+") as f:
        del f["node/nodes/lif/v_reset"]
        f["version"][...] = "1.0.4"
    loaded = load_graph(path)
    assert "added v_reset=0 to old file (node 'lif')" in loaded.warnings
    np.testing.assert_array_equal(loaded.graph.nodes["lif"].v_reset, np.zeros(4))


def test_scalar_parameter_broadcast_to_the_node_shape(write):
    path = write(_mlp())
    with h5py.File(path, "r+") as f:
        del f["node/nodes/lif/tau"]
        f["node/nodes/lif/tau"] = np.array([0.02], np.float32)
    loaded = load_graph(path)
    assert "broadcast scalar tau of node 'lif' to shape (4,)" in loaded.warnings
    assert loaded.graph.nodes["lif"].tau.shape == (4,)


def test_all_scalar_neuron_parameters_take_their_shape_from_the_edge(write):
    """Norse 1.1.0 exports 0-d parameters: the node's shape comes from the Affine before it."""
    path = write(_mlp())
    with h5py.File(path, "r+") as f:
        for key in ("tau", "r", "v_leak", "v_threshold", "v_reset"):
            value = np.asarray(f[f"node/nodes/lif/{key}"][0])
            del f[f"node/nodes/lif/{key}"]
            f.create_dataset(f"node/nodes/lif/{key}", data=value)  # 0-d, no compression
    loaded = load_graph(path)
    assert any("type_check=False" in w for w in loaded.warnings)
    assert "broadcast scalar tau of node 'lif' to shape (4,)" in loaded.warnings
    x = (np.random.default_rng(1).random((20, 3)) < 0.5).astype(np.float32)
    a = run(lower(loaded.graph, dt=1e-3), x)
    b = run(lower(_mlp(), dt=1e-3), x)
    np.testing.assert_array_equal(a.output, b.output)


def test_neurostack_metadata_is_parsed_and_gives_dt(write):
    g = _mlp()
    g.metadata = {"neurostack": json.dumps({"dt": 5e-4, "convention": "spec", "readout": {"node": "lif"}})}
    loaded = load_graph(write(g))
    assert loaded.metadata["dt"] == 5e-4 and loaded.metadata["readout"] == {"node": "lif"}
    plan = lower(loaded.graph)
    assert plan.dt == 5e-4 and not any("carries no dt" in w for w in plan.warnings)
    assert lower(loaded.graph, dt=1e-3).dt == 1e-3


def test_convention_default_dt_is_announced():
    plan = lower(_mlp())
    assert plan.dt == 1e-3
    assert "graph carries no dt: using the spec convention's 0.001 s" in plan.warnings


def test_nested_subgraph_file_that_fails_type_check(write):
    """nir.read(type_check=False) still validates nested graphs; load_graph relaxes every level."""
    sub = nir.NIRGraph(nodes={"input": nir.Input(input_type={"input": np.array([1, 4])}), "lif": lif(4, th=0.5),
                              "output": nir.Output(output_type={"output": np.array([4])})},
                       edges=[("input", "lif"), ("lif", "output")], type_check=False)
    g = nir.NIRGraph(nodes={"input": nir.Input(input_type={"input": np.array([3])}),
                            "fc": nir.Affine(np.ones((4, 3), np.float32), np.zeros(4, np.float32)), "sub": sub,
                            "output": nir.Output(output_type={"output": np.array([4])})},
                     edges=[("input", "fc"), ("fc", "sub"), ("sub", "output")], type_check=False)
    path = write(g)
    with pytest.raises(Exception):
        nir.read(str(path), type_check=False)
    loaded = load_graph(path)
    assert any("type_check=False" in w for w in loaded.warnings)
    assert any("stripped batch dim from Input 'sub.input'" in w for w in loaded.warnings)
    result = run(lower(loaded.graph, dt=1e-3), np.ones((5, 3), np.float32))
    assert result.outputs["sub.lif"].shape == (1, 5, 4)
