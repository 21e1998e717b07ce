"""Damaged NIR files through `neurostack simulate` and `neurostack inspect`: never a traceback, a hang or a crash.

A file that cannot be read, or a graph that cannot be simulated, ends `simulate` with exit code 2 and one line
`error: <file>: <problem>`. `inspect` fails the same way when it cannot read the file; a graph it can read is
listed, and what the simulator cannot run is marked UNSUPPORTED with the reason, followed by the same one-line
error and exit code 2.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import h5py
import nir
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import neurostack.sim.load as load_module
from reliability_helpers import (assert_clean_error, assert_ok_or_clean_error, invoke, lif, rich_graph, rich_input,
                                 simulate, write_graph)

LINUX_ONLY = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads are isolated on Linux only")
SETTINGS = settings(max_examples=60, deadline=None, database=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])


def assert_inspect_ok(result, path: Path) -> None:
    """inspect lists a graph the simulator runs (exit 0); a graph it cannot run is listed with the problems marked
    UNSUPPORTED and then refused with one error line (exit 2); an unreadable file is refused cleanly."""
    assert_ok_or_clean_error(result, path)
    if result.exit_code == 0:
        assert result.output.startswith(f"{path}:") and "UNSUPPORTED" not in result.output, result.output
    elif "UNSUPPORTED" in result.output:
        assert result.output.startswith(f"{path}:") and "the simulator cannot run this graph" in result.output


@pytest.fixture(scope="module")
def template(tmp_path_factory) -> tuple[bytes, list[str], Path]:
    """(bytes of a valid NIR file, the paths of its HDF5 datasets, a matching input file)."""
    root = tmp_path_factory.mktemp("nir_template")
    path = write_graph(root / "template.nir")
    keys: list[str] = []
    with h5py.File(path, "r") as f:
        f.visititems(lambda name, obj: keys.append(name) if isinstance(obj, h5py.Dataset) else None)
    return path.read_bytes(), sorted(keys), rich_input(root / "x.npy")


def _check_both(path: Path, inputs: Path) -> None:
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(load_module, "READ_TIMEOUT_S", 5.0)  # a flip can make libhdf5 loop: keep the test short
        assert_ok_or_clean_error(simulate(path, inputs), path)
        assert_inspect_ok(invoke("inspect", path), path)


# ------------------------------------------------------------------------------------------- random damage
damage = st.one_of(
    st.tuples(st.just("flip"), st.lists(st.tuples(st.floats(0, 1, exclude_max=True), st.integers(0, 7)),
                                        min_size=1, max_size=24)),
    st.tuples(st.just("truncate"), st.floats(0, 1, exclude_max=True)),
    st.tuples(st.just("overwrite"), st.floats(0, 1, exclude_max=True), st.binary(min_size=1, max_size=64)),
)


@LINUX_ONLY  # elsewhere reads are not isolated, and a flip can make libhdf5 loop for ever
@SETTINGS
@given(how=damage)
def test_random_byte_damage_is_refused_cleanly(template, tmp_path, how):
    data, _, inputs = template
    raw = bytearray(data)
    if how[0] == "flip":
        for where, bit in how[1]:
            raw[int(where * len(raw))] ^= 1 << bit
    elif how[0] == "truncate":
        raw = raw[: int(how[1] * len(raw))]
    else:
        at = int(how[1] * len(raw))
        raw[at:at + len(how[2])] = how[2]
    path = tmp_path / "damaged.nir"
    path.write_bytes(bytes(raw))
    _check_both(path, inputs)


def _replacement():
    shapes = hnp.array_shapes(min_dims=0, max_dims=4, min_side=0, max_side=5)
    dtypes = st.sampled_from([np.float64, np.float32, np.float16, np.int64, np.int8, np.uint16, np.bool_,
                              np.complex64])
    return st.one_of(
        st.none(),  # the parameter is missing
        hnp.arrays(dtypes, shapes),  # wrong shape and/or dtype, any values (NaN, inf, huge, negative)
        st.sampled_from([np.nan, np.inf, -np.inf, 0.0, -1.0, 1e300, 2**62]),  # replaces every value
        st.text(alphabet="abcxyz_-. 0123456789", max_size=12),  # a string where a number belongs
        st.sampled_from(sorted(load_module.NIR_TYPES)),  # another node type's name
        st.lists(st.text(alphabet="abcxyz", min_size=1, max_size=4), min_size=1, max_size=3).map(
            lambda v: np.array([s.encode() for s in v])),
    )


@SETTINGS
@given(data=st.data())
def test_random_parameter_damage_is_refused_cleanly(template, tmp_path, data):
    raw, keys, inputs = template
    path = tmp_path / "damaged.nir"
    path.write_bytes(raw)
    for _ in range(data.draw(st.integers(1, 3), label="parameters damaged")):
        key = data.draw(st.sampled_from(keys), label="dataset")
        value = data.draw(_replacement(), label="replacement")
        with h5py.File(path, "r+") as f:
            if key not in f:  # deleted by an earlier draw
                continue
            shape = f[key].shape
            del f[key]
            if value is None:
                continue
            if isinstance(value, float) or isinstance(value, int):
                value = np.full(shape, value)
            f[key] = value
    _check_both(path, inputs)


@SETTINGS
@given(edges=st.lists(st.tuples(st.sampled_from(["input", "conv", "lif1", "pool", "flat", "fc", "cuba", "scale",
                                                 "fc_out", "li", "output", "ghost", "fc.x", ""]),
                                st.sampled_from(["input", "conv", "lif1", "pool", "flat", "fc", "cuba", "scale",
                                                 "fc_out", "li", "output", "ghost"])), max_size=14))
def test_random_edges_are_refused_cleanly(template, tmp_path, edges):
    raw, _, inputs = template
    path = tmp_path / "edges.nir"
    path.write_bytes(raw)
    with h5py.File(path, "r+") as f:
        del f["node/edges"]
        f["node/edges"] = np.array([[a.encode(), b.encode()] for a, b in edges], dtype="S") if edges \
            else np.zeros((0, 2), "S1")
    _check_both(path, inputs)


# ---------------------------------------------------------------------------------------------- by hand
def _set(key, value):
    def damage(path: Path) -> None:
        with h5py.File(path, "r+") as f:
            del f[key]
            if value is not None:
                f[key] = value
    return damage


def _replace_bytes(path: Path, fn) -> None:
    path.write_bytes(fn(path.read_bytes()))


HAND_MADE = {
    "truncated": (lambda p: _replace_bytes(p, lambda b: b[: len(b) // 2]), "cannot read it"),
    "empty": (lambda p: p.write_bytes(b""), "cannot read it"),
    "not hdf5": (lambda p: p.write_text("this is not a NIR file"), "cannot read it"),
    "hdf5 without a graph": (lambda p: (p.unlink(), h5py.File(p, "w").close()), "no 'node' group"),
    "unknown node type": (_set("node/nodes/li/type", "Izhikevich"), "unknown NIR type 'Izhikevich'"),
    "node type not a string": (_set("node/nodes/li/type", np.arange(3)), "unknown NIR type"),
    "missing parameter": (_set("node/nodes/li/tau", None), "'li'"),
    "missing weight": (_set("node/nodes/fc/weight", None), "fc"),
    "string weight": (_set("node/nodes/fc/weight", "heavy"), "'fc'"),
    "string time constant": (_set("node/nodes/li/tau", np.array([b"a", b"b", b"c"])), "'li'"),
    "complex weight": (_set("node/nodes/fc/weight", np.ones((5, 18), np.complex64)), "not numeric"),
    "NaN weight": (_set("node/nodes/fc/weight", np.full((5, 18), np.nan, np.float32)), "NaN or infinite"),
    "inf time constant": (_set("node/nodes/li/tau", np.full(3, np.inf)), "NaN or infinite"),
    "zero time constant": (_set("node/nodes/li/tau", np.zeros(3)), "tau must be positive"),
    "weight wider than its input": (_set("node/nodes/fc/weight", np.ones((5, 19), np.float32)), "fc"),
    "neuron of the wrong size": (_set("node/nodes/li/r", np.ones(4)), "'li'"),
    "bias of the wrong size": (_set("node/nodes/conv/bias", np.ones(3, np.float32)), "bias"),
    "zero pooling stride": (_set("node/nodes/pool/stride", np.array([0, 0])), "'pool'"),
    "string stride": (_set("node/nodes/pool/stride", "wide"), "'pool'"),
    "negative padding": (_set("node/nodes/conv/padding", np.array([-2, -2])), "'conv'"),
    "groups empty": (_set("node/nodes/conv/groups", np.zeros(0, np.int64)), "'conv'"),
    "Input shape NaN": (_set("node/nodes/input/shape", np.array([np.nan, 6.0, 6.0])), "input"),
    "Input shape negative": (_set("node/nodes/input/shape", np.array([1, -6, 6])), "input"),
    "Output shape text": (_set("node/nodes/output/shape", "three"), "output"),
}


@pytest.mark.parametrize("case", HAND_MADE, ids=list(HAND_MADE))
def test_hand_made_damage(graph_and_input, case):
    path, inputs = graph_and_input
    damage, phrase = HAND_MADE[case]
    damage(path)
    assert_clean_error(simulate(path, inputs), path, contains=phrase)
    assert_inspect_ok(invoke("inspect", path), path)


def test_missing_file_and_a_folder(tmp_path, graph_and_input):
    _, inputs = graph_and_input
    assert_clean_error(simulate(tmp_path / "nope.nir", inputs), tmp_path / "nope.nir", contains="no such file")
    assert_clean_error(invoke("inspect", tmp_path), tmp_path, contains="not a file")


def _graph_file(tmp_path: Path, nodes: dict, edges: list) -> Path:
    path = tmp_path / "hand.nir"
    nir.write(str(path), nir.NIRGraph(nodes=nodes, edges=edges, type_check=False))
    return path


def test_cycle_without_state(tmp_path):
    path = _graph_file(tmp_path, {"input": nir.Input(input_type={"input": np.array([2])}),
                                  "a": nir.Affine(np.eye(2), np.zeros(2)), "b": nir.Linear(np.eye(2)),
                                  "output": nir.Output(output_type={"output": np.array([2])})},
                       [("input", "a"), ("a", "b"), ("b", "a"), ("a", "output")])
    np.save(tmp_path / "x.npy", np.ones((3, 2)))
    assert_clean_error(simulate(path, tmp_path / "x.npy"), path, contains="cycle without a stateful node")
    result = invoke("inspect", path)
    assert_inspect_ok(result, path)
    assert result.exit_code == 2 and "UNSUPPORTED: cycle without a stateful node" in result.output


def test_edge_to_a_missing_node_and_shapes_that_do_not_meet(tmp_path):
    nodes = {"input": nir.Input(input_type={"input": np.array([2])}), "fc": nir.Affine(np.ones((4, 2)), np.zeros(4)),
             "lif": lif(5), "output": nir.Output(output_type={"output": np.array([5])})}
    path = _graph_file(tmp_path, nodes, [("input", "fc"), ("fc", "lif"), ("lif", "output")])
    np.save(tmp_path / "x.npy", np.ones((3, 2)))
    line = assert_clean_error(simulate(path, tmp_path / "x.npy"), path)
    assert "'fc'" in line and "'lif'" in line and "(4,)" in line and "(5,)" in line
    path = _graph_file(tmp_path, nodes, [("input", "fc"), ("fc", "ghost"), ("lif", "output")])
    assert_clean_error(simulate(path, tmp_path / "x.npy"), path, contains="ghost")


def test_input_file_that_does_not_fit_names_both_files(graph_and_input, tmp_path):
    path, _ = graph_and_input
    np.save(tmp_path / "wrong.npy", np.zeros((4, 3, 7)))
    line = assert_clean_error(simulate(path, tmp_path / "wrong.npy"), tmp_path / "wrong.npy")
    assert str(path) in line and "(1, 6, 6)" in line
    for name, array in {"nan.npy": np.full((2, 1, 6, 6), np.nan), "str.npy": np.array(["a", "b"]),
                        "empty.npy": np.zeros((2, 0, 1, 6, 6))}.items():
        np.save(tmp_path / name, array)
        assert_clean_error(simulate(path, tmp_path / name), tmp_path / name)
    np.save(tmp_path / "obj.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    assert_clean_error(simulate(path, tmp_path / "obj.npy"), tmp_path / "obj.npy")
    (tmp_path / "junk.npy").write_bytes(b"\x93NUMPY junk")
    assert_clean_error(simulate(path, tmp_path / "junk.npy"), tmp_path / "junk.npy", contains="not a readable")
    np.savez(tmp_path / "z.npz", a=np.ones(3))
    assert_clean_error(simulate(path, tmp_path / "z.npz"), tmp_path / "z.npz", contains=".npz")


@pytest.mark.parametrize("metadata,phrase", [
    ({"dt": "fast"}, "dt"),
    ({"input": [1, 2]}, "input"),
    ({"readout": {"node": 3}}, "readout.node"),
    ({"input": {"data": "fsdd:/no/such/folder", "features": {"n_bins": "many"}}}, "n_bins"),
    ({"input": {"data": "fsdd:/no/such/folder", "steps": -4}}, "steps"),
    ({"input": {"data": "fsdd:/no/such/folder", "view": "hologram"}}, "hologram"),
    ({"input": {"data": "fsdd:/no/such/folder", "encoder": "morse"}}, "morse"),
])
def test_damaged_neurostack_metadata(tmp_path, metadata, phrase):
    graph = rich_graph()
    graph.metadata = {"neurostack": json.dumps(metadata)}
    path = write_graph(tmp_path / "meta.nir", graph)
    assert_clean_error(invoke("simulate", path), path, contains=phrase)
    assert_inspect_ok(invoke("inspect", path), path)


def test_subgraphs_nested_too_deeply(tmp_path, graph_and_input):
    _, inputs = graph_and_input
    path = tmp_path / "deep.nir"
    with h5py.File(path, "w") as f:
        f["version"] = "1.0.8"
        g = f.create_group("node")
        for _ in range(600):
            g["type"] = "NIRGraph"
            g.create_group("edges")
            g = g.create_group("nodes").create_group("s")
        g["type"] = "Input"
        g["shape"] = np.array([2])
    assert_clean_error(simulate(path, inputs), path, contains="nested too deeply")
    assert_clean_error(invoke("inspect", path), path, contains="nested too deeply")


@LINUX_ONLY
def test_a_file_that_makes_libhdf5_loop_is_stopped(graph_and_input, monkeypatch):
    """A one-byte change to a string's size in the global heap sends libhdf5 into an endless loop when the edges
    are read: the read runs in a child process and is given up after READ_TIMEOUT_S."""
    path, inputs = graph_and_input
    data = bytearray(path.read_bytes())
    at = data.find(b"\x08" + b"\x00" * 7 + b"NIRGraph")  # a heap object: size 8, then the string
    assert at > 0
    data[at + 1] = 1  # size 0x108: past the end of its heap collection
    path.write_bytes(bytes(data))
    monkeypatch.setattr(load_module, "READ_TIMEOUT_S", 2.0)
    assert_clean_error(simulate(path, inputs), path, contains="did not finish")
    assert_clean_error(invoke("inspect", path), path, contains="did not finish")
