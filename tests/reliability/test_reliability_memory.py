"""Resource limits: work that needs more memory than the machine has is refused with the estimate, before the
memory is allocated (so neither a MemoryError nor the kernel's OOM killer ever gets involved)."""

from __future__ import annotations

import tracemalloc

import h5py
import nir
import numpy as np
import pytest

from neurostack import memory
from neurostack.errors import NeurostackError
from neurostack.sim import load_graph, lower, run
from neurostack.sim.memory import run_bytes
from reliability_helpers import assert_clean_error, invoke, lif, simulate

MiB = 1024**2


def test_available_memory_and_the_override(monkeypatch):
    monkeypatch.delenv(memory.ENV_LIMIT, raising=False)
    found = memory.available_memory()
    assert found is None or found > 0
    monkeypatch.setenv(memory.ENV_LIMIT, "512M")
    assert memory.available_memory() == 512 * MiB
    monkeypatch.setenv(memory.ENV_LIMIT, "2 GiB")
    assert memory.available_memory() == 2 * 1024 * MiB
    monkeypatch.setenv(memory.ENV_LIMIT, "lots")
    with pytest.raises(NeurostackError, match="NEUROSTACK_MEMORY_LIMIT"):
        memory.available_memory()
    monkeypatch.setenv(memory.ENV_LIMIT, "1000")
    memory.check_memory(1000, "x")
    with pytest.raises(NeurostackError, match=r"^thing would need about 1\.0 KiB of memory, more than the 1000 B"):
        memory.check_memory(1024, "thing")
    assert memory.format_bytes(3 * 1024**4) == "3.0 TiB"
    assert memory.nbytes((10**6, 10**6, 10**6), 8) == 8 * 10**18  # exact: no int64 overflow


def _peak_mib(fn) -> float:
    tracemalloc.start()
    try:
        fn()
    except NeurostackError:
        pass
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return peak / MiB


def test_a_huge_affine_in_a_file_is_refused_before_reading(tmp_path):
    """10^6 x 10^6 float32 weights: 3.6 TiB once read, a few hundred bytes on disk (chunked, never written)."""
    path = tmp_path / "huge.nir"
    nir.write(str(path), nir.NIRGraph.from_list(nir.Affine(np.ones((3, 2), np.float32), np.zeros(3, np.float32))))
    with h5py.File(path, "r+") as f:
        key = next(k for k in ("node/nodes/affine/weight", "node/nodes/0/weight") if k in f)
        del f[key]
        f.create_dataset(key, shape=(10**6, 10**6), dtype="f4", chunks=(1, 1024))
    assert path.stat().st_size < 1 * MiB
    with pytest.raises(NeurostackError, match=r"huge\.nir: reading its arrays would need about 3\.6 TiB"):
        load_graph(path)
    assert _peak_mib(lambda: load_graph(path)) < 50
    np.save(tmp_path / "x.npy", np.zeros((2, 2)))
    line = assert_clean_error(simulate(path, tmp_path / "x.npy"), path, contains="3.6 TiB")
    assert "available" in line
    assert_clean_error(invoke("inspect", path), path, contains="3.6 TiB")


def test_a_huge_declared_shape_is_refused_before_lowering(tmp_path):
    """Small parameters, absurd shapes: a scalar Scale on a (10^6, 10^6) input, a Delay of 10^9 s at dt 1 ms."""
    graph = nir.NIRGraph(nodes={"input": nir.Input(input_type={"input": np.array([10**6, 10**6])}),
                                "scale": nir.Scale(scale=np.array([2.0])),
                                "output": nir.Output(output_type={"output": np.array([10**6, 10**6])})},
                         edges=[("input", "scale"), ("scale", "output")], type_check=False)
    with pytest.raises(NeurostackError, match=r"node 'scale', Scale of shape \(1000000, 1000000\).*TiB of memory"):
        lower(graph, dt=1e-3)
    assert _peak_mib(lambda: lower(graph, dt=1e-3)) < 50
    path = tmp_path / "wide.nir"
    nir.write(str(path), graph)
    np.save(tmp_path / "x.npy", np.zeros((2, 3)))
    assert_clean_error(simulate(path, tmp_path / "x.npy"), path, contains="TiB of memory")

    delay = nir.NIRGraph(nodes={"input": nir.Input(input_type={"input": np.array([1000])}),
                                "delay": nir.Delay(delay=np.full(1000, 1e9)),
                                "output": nir.Output(output_type={"output": np.array([1000])})},
                         edges=[("input", "delay"), ("delay", "output")], type_check=False)
    with pytest.raises(NeurostackError, match=r"node 'delay'.*PiB of memory"):
        lower(delay, dt=1e-3)
    assert _peak_mib(lambda: lower(delay, dt=1e-3)) < 50


def test_parameters_that_broadcast_to_an_absurd_shape(tmp_path):
    path = tmp_path / "bcast.nir"
    nir.write(str(path), nir.NIRGraph.from_list(nir.Affine(np.ones((3, 2)), np.zeros(3)), lif(3)))
    with h5py.File(path, "r+") as f:
        lif_key = next(k for k in f["node/nodes"] if f[f"node/nodes/{k}/type"][()] in (b"LIF", "LIF"))
        for key, shape in (("tau", (10**6, 1)), ("r", (1, 10**6)), ("v_leak", (1,)), ("v_threshold", (1,)),
                           ("v_reset", (1,))):
            del f[f"node/nodes/{lif_key}/{key}"]
            f[f"node/nodes/{lif_key}/{key}"] = np.full(shape, 0.01)
    with pytest.raises(NeurostackError, match=r"broadcasting the parameters .* would need about"):
        load_graph(path)


@pytest.fixture
def mlp_file(tmp_path):
    n_in, n = 64, 256
    w = np.random.default_rng(0).normal(0, 1, (n, n_in)).astype(np.float32)
    path = tmp_path / "mlp.nir"
    nir.write(str(path), nir.NIRGraph.from_list(nir.Affine(w, np.zeros(n, np.float32)), lif(n)))
    np.save(tmp_path / "many.npy", np.zeros((64, 200, n_in), np.float32))
    return path, tmp_path / "many.npy"


def test_recordings_that_would_not_fit_suggest_limit(mlp_file):
    path, inputs = mlp_file
    plan = lower(load_graph(path).graph, dt=1e-3)
    needed = run_bytes(plan, 64, 200)
    limit = f"{int(needed * 0.5)}"  # room for about half the samples
    result = simulate(path, inputs, env={memory.ENV_LIMIT: limit})
    line = assert_clean_error(result, path, contains="--limit")
    assert "64 samples of 200 steps" in line and "per sample: at most" in line
    ok = simulate(path, inputs, "--limit", "16", env={memory.ENV_LIMIT: limit})
    assert ok.exit_code == 0, ok.output


def test_the_run_estimate_covers_what_run_allocates(mlp_file):
    path, _ = mlp_file
    plan = lower(load_graph(path).graph, dt=1e-3, precision="float64")
    x = np.zeros((8, 50, 64))
    result = run(plan, x, record_voltages=True, count_per_step=True)
    allocated = sum(a.base.nbytes if a.base is not None else a.nbytes for a in
                    [next(iter(result.outputs.values())), next(iter(result.voltages.values()))])
    allocated += sum(getattr(result.counts, k).nbytes for k in ("sops", "macs", "events", "spikes", "driven"))
    assert run_bytes(plan, 8, 50, record_voltages=True, count_per_step=True) >= allocated


def test_an_npy_whose_header_promises_too_much(tmp_path, mlp_file):
    path, _ = mlp_file
    big = tmp_path / "big.npy"
    with open(big, "wb") as fh:
        np.lib.format.write_array_header_1_0(fh, {"descr": "<f4", "fortran_order": False,
                                                  "shape": (10**6, 10**4, 64)})
        fh.write(b"\0" * 1024)
    assert_clean_error(simulate(path, big), big)  # a truncated file: refused before reading
    np.save(tmp_path / "fits.npy", np.zeros((4000, 10, 64), np.float32))  # 19.5 MiB once read as float64
    line = assert_clean_error(simulate(path, tmp_path / "fits.npy", env={memory.ENV_LIMIT: "5M"}),
                              tmp_path / "fits.npy", contains="--limit")
    assert "(4000, 10, 64) array would need about 19.5 MiB" in line


def test_a_dataset_that_would_not_fit_is_refused(tmp_path):
    from neurostack.data import FeatureConfig, load_dataset
    from reliability_helpers import fsdd_folder

    folder = fsdd_folder(tmp_path / "fsdd")
    config = FeatureConfig(duration_s=10**6)  # 10^8 frames per utterance
    with pytest.raises(NeurostackError, match=r"fsdd: 8 samples of 100000000 x 40 features would need about"):
        load_dataset(f"fsdd:{folder}", features=config, cache_dir=tmp_path / "cache", progress=False)
