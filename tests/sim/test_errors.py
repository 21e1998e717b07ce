"""User errors raise NeurostackError with one line naming the node(s) or file and the problem."""

from __future__ import annotations

from dataclasses import dataclass

import h5py
import nir
import numpy as np
import pytest

from neurostack.errors import NeurostackError
from neurostack.sim import load_graph, lower, run, unsupported_nodes
from sim_helpers import lif


def _mlp():
    return nir.NIRGraph.from_list(nir.Affine(np.ones((3, 2)), np.zeros(3)), lif(3))


def _one_line(exc: pytest.ExceptionInfo) -> str:
    msg = str(exc.value)
    assert "\n" not in msg
    return msg


def test_unknown_node_type_in_a_file(write):
    path = write(_mlp())
    with h5py.File(path, "r+") as f:
        del f["node/nodes/lif/type"]
        f["node/nodes/lif/type"] = np.bytes_("Izhikevich")
    with pytest.raises(NeurostackError) as exc:
        load_graph(path)
    assert "'lif'" in _one_line(exc) and "Izhikevich" in str(exc.value)


@dataclass(eq=False)
class Izhikevich(nir.NIRNode):
    """A primitive NIR does not define (a graph object can still hold one)."""

    a: np.ndarray

    def __post_init__(self):
        self.input_type = {"input": np.array(self.a.shape)}
        self.output_type = {"output": np.array(self.a.shape)}


def test_unsupported_primitive_in_a_graph_object():
    graph = nir.NIRGraph(nodes={"input": nir.Input(input_type={"input": np.array([2])}),
                                "odd": Izhikevich(a=np.ones(2)),
                                "output": nir.Output(output_type={"output": np.array([2])})},
                         edges=[("input", "odd"), ("odd", "output")], type_check=False)
    with pytest.raises(NeurostackError) as exc:
        lower(graph, dt=1e-3)
    assert "'odd'" in _one_line(exc) and "Izhikevich" in str(exc.value)
    assert unsupported_nodes(graph) == [("odd", "unsupported NIR primitive Izhikevich")]
    assert unsupported_nodes(_mlp()) == []


def test_identity_passes_its_input_through():
    graph = nir.NIRGraph(nodes={"input": nir.Input(input_type={"input": np.array([2])}),
                                "same": nir.ir.graph.Identity(input_type={"input": np.array([2])}),
                                "output": nir.Output(output_type={"output": np.array([2])})},
                         edges=[("input", "same"), ("same", "output")], type_check=False)
    x = np.arange(6.0).reshape(3, 2)
    np.testing.assert_array_equal(run(lower(graph, precision="float64"), x).output[0], x)


def test_conv_declared_input_must_match_the_edge():
    conv = nir.Conv2d(input_shape=(5, 5), weight=np.ones((2, 1, 3, 3)), stride=1, padding=0, dilation=1, groups=1,
                      bias=np.zeros(2))
    graph = nir.NIRGraph(nodes={"input": nir.Input(input_type={"input": np.array([1, 6, 6])}), "conv": conv,
                                "output": nir.Output(output_type={"output": None})},
                         edges=[("input", "conv"), ("conv", "output")], type_check=False)
    with pytest.raises(NeurostackError, match=r"'conv'.*\(1, 6, 6\).*\(1, 5, 5\)"):
        lower(graph)


def test_shape_mismatch_along_an_edge_names_both_nodes():
    graph = nir.NIRGraph(nodes={"input": nir.Input(input_type={"input": np.array([2])}),
                                "fc": nir.Affine(np.ones((4, 2)), np.zeros(4)), "lif": lif(5),
                                "output": nir.Output(output_type={"output": np.array([5])})},
                         edges=[("input", "fc"), ("fc", "lif"), ("lif", "output")], type_check=False)
    with pytest.raises(NeurostackError) as exc:
        lower(graph, dt=1e-3)
    msg = _one_line(exc)
    assert "'fc'" in msg and "'lif'" in msg and "(4,)" in msg and "(5,)" in msg


def test_affine_fed_the_wrong_width():
    graph = nir.NIRGraph(nodes={"input": nir.Input(input_type={"input": np.array([3])}),
                                "fc": nir.Affine(np.ones((4, 2)), np.zeros(4)),
                                "output": nir.Output(output_type={"output": np.array([4])})},
                         edges=[("input", "fc"), ("fc", "output")], type_check=False)
    with pytest.raises(NeurostackError, match=r"edge input -> fc: 'input' gives shape \(3,\) but 'fc' expects \(2,\)"):
        lower(graph)


def test_cycle_without_a_stateful_node():
    graph = nir.NIRGraph(nodes={"input": nir.Input(input_type={"input": np.array([2])}),
                                "a": nir.Affine(np.eye(2), np.zeros(2)), "b": nir.Linear(np.eye(2)),
                                "output": nir.Output(output_type={"output": np.array([2])})},
                         edges=[("input", "a"), ("a", "b"), ("b", "a"), ("a", "output")], type_check=False)
    with pytest.raises(NeurostackError) as exc:
        lower(graph, dt=1e-3)
    msg = _one_line(exc)
    assert "cycle" in msg and "'a'" in msg and "'b'" in msg


def test_nan_weights_name_the_node_and_parameter():
    w = np.ones((3, 2))
    w[1, 1] = np.nan
    graph = nir.NIRGraph.from_list(nir.Affine(w, np.zeros(3)), lif(3))
    with pytest.raises(NeurostackError) as exc:
        lower(graph, dt=1e-3)
    assert "'affine'" in _one_line(exc) and "weight" in str(exc.value) and "NaN" in str(exc.value)


def test_non_positive_time_constant():
    graph = nir.NIRGraph.from_list(nir.Affine(np.ones((3, 2)), np.zeros(3)), lif(3, tau=0.0))
    with pytest.raises(NeurostackError, match="'lif': tau must be positive"):
        lower(graph, dt=1e-3)


def test_truncated_file(write):
    path = write(_mlp())
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(NeurostackError) as exc:
        load_graph(path)
    assert str(path) in _one_line(exc)


def test_missing_file_and_a_non_nir_file(tmp_path):
    with pytest.raises(NeurostackError, match="no such file"):
        load_graph(tmp_path / "nope.nir")
    (tmp_path / "text.nir").write_text("not hdf5")
    with pytest.raises(NeurostackError, match="cannot read it as a NIR"):
        load_graph(tmp_path / "text.nir")
    with h5py.File(tmp_path / "other.h5", "w") as f:
        f["x"] = 1
    with pytest.raises(NeurostackError, match="no 'node' group"):
        load_graph(tmp_path / "other.h5")


def test_inputs_of_the_wrong_shape_or_not_finite():
    plan = lower(_mlp(), dt=1e-3)
    with pytest.raises(NeurostackError) as exc:
        run(plan, np.zeros((4, 10, 3)))
    msg = _one_line(exc)
    assert "(4, 10, 3)" in msg and "(N, T, 2)" in msg
    bad = np.zeros((10, 2))
    bad[3, 1] = np.inf
    with pytest.raises(NeurostackError, match="NaN or infinite"):
        run(plan, bad)


@pytest.mark.parametrize("parallel", [False, True])
def test_a_nan_input_is_reported_with_its_sample_and_step(parallel):
    """The kernels test each new input step as they copy it: a NaN after steps of a repeated (static) input, in
    the third of four samples, is still found, and named."""
    plan = lower(_mlp(), dt=1e-3)
    x = np.ones((4, 12, 2), np.float32)
    x[2, 7, 0] = np.nan
    with pytest.raises(NeurostackError) as exc:
        run(plan, x, parallel=parallel)
    assert _one_line(exc) == "inputs hold NaN or infinite values (sample 2, step 7)"
    x[2, 7, 0] = -np.inf
    with pytest.raises(NeurostackError, match=r"\(sample 2, step 7\)"):
        run(plan, x, parallel=parallel)
    x[2, 7, 0] = 1.0
    assert run(plan, x, parallel=parallel).output.shape == (4, 12, 3)


def test_bad_options():
    with pytest.raises(NeurostackError, match="unknown convention 'brian'"):
        lower(_mlp(), convention="brian")
    with pytest.raises(NeurostackError, match="unknown reset mode"):
        lower(_mlp(), reset="soft")
    with pytest.raises(NeurostackError, match="unknown precision"):
        lower(_mlp(), precision="float16")
    with pytest.raises(NeurostackError, match="positive number of seconds"):
        lower(_mlp(), dt=-1.0)


def test_graph_needs_one_input_and_one_output():
    graph = nir.NIRGraph(nodes={"fc": nir.Affine(np.ones((2, 2)), np.zeros(2)),
                                "output": nir.Output(output_type={"output": np.array([2])})},
                         edges=[("fc", "output")], type_check=False)
    with pytest.raises(NeurostackError, match="exactly one Input node"):
        lower(graph)


def test_edge_to_a_node_that_does_not_exist():
    graph = nir.NIRGraph(nodes={"input": nir.Input(input_type={"input": np.array([2])}),
                                "output": nir.Output(output_type={"output": np.array([2])})},
                         edges=[("input", "ghost"), ("input", "output")], type_check=False)
    with pytest.raises(NeurostackError, match="no node 'ghost'"):
        lower(graph)


def test_no_convention_default_dt_means_pass_dt(monkeypatch):
    from dataclasses import replace

    from neurostack.sim import conventions

    monkeypatch.setitem(conventions.TABLE, "spec", replace(conventions.TABLE["spec"], dt=None))
    with pytest.raises(NeurostackError, match="graph carries no dt: pass --dt"):
        lower(_mlp())
    lower(nir.NIRGraph.from_list(nir.Affine(np.ones((3, 2)), np.zeros(3))))  # nothing needs a dt
