"""`neurostack train` under torchrun: DistributedDataParallel over 2 CPU processes (gloo), the data sharded, rank 0
alone printing and writing, resumable, and as accurate as one process; and the sharding itself."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from neurostack.frontend.models import count_parameters
from neurostack.train import distributed
from neurostack.train.rundir import load_trained_model
from reliability_helpers import fsdd_folder, invoke

REPO = Path(__file__).resolve().parents[2]
TRAIN = ("--hidden", 32, "--batch-size", 4, "--device", "cpu", "--seed", 1)


# ------------------------------------------------------------------------------------------------ sharding
@pytest.mark.parametrize("n", [0, 1, 7, 8, 150])
@pytest.mark.parametrize("world", [1, 2, 3, 4])
def test_shards_are_equal_in_size_cover_everything_and_overlap_only_in_the_padding(n, world):
    order = np.random.default_rng(n).permutation(n)
    shards = [distributed.shard_indices(order, r, world) for r in range(world)]
    assert {len(s) for s in shards} == {-(-n // world)}  # the same number of steps on every process
    assert set(np.concatenate(shards).tolist()) == set(range(n))
    for s in shards:
        assert len(set(s.tolist())) == len(s)
    repeats = sum(len(s) for s in shards) - n  # only the padding, the first entries of `order`, is repeated
    assert repeats == (-n % world if n else 0)
    if n % world == 0:
        assert sum(len(s) for s in shards) == n  # disjoint
    assert all(np.array_equal(s, distributed.shard_indices(order, r, world)) for r, s in enumerate(shards))
    if world == 1:
        assert np.array_equal(shards[0], order)


def test_shard_indices_refuses_a_rank_outside_the_world():
    with pytest.raises(ValueError):
        distributed.shard_indices(np.arange(4), 2, 2)


# --------------------------------------------------------------------------------- a process of rank != 0
@pytest.fixture(scope="module")
def data(tmp_path_factory) -> tuple[Path, Path]:
    """(an FSDD-style folder of 3 well-separated tones, 150 training clips; the cache dir)."""
    root = tmp_path_factory.mktemp("ddp")
    return fsdd_folder(root / "fsdd", digits=(0, 1, 2), indices=range(60)), root / "cache"


def test_a_process_other_than_rank_0_trains_without_printing_or_writing_anything(data, tmp_path, monkeypatch, capfd):
    """Rank 1 of 2, without its peers: collectives are no-ops without a process group, so it trains its shard."""
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "1")
    monkeypatch.setattr(distributed, "init_from_env", lambda device: device)
    out = tmp_path / "run"
    folder, cache = data
    trained = invoke("train", "--data", f"fsdd:{folder}", "--out", out, "--cache-dir", cache, "--epochs", 1, *TRAIN)
    assert trained.exit_code == 0 and trained.exception is None, trained.output
    assert not out.exists()
    failed = invoke("train", "--out", out, "--resume")  # an error, too, is left to rank 0 to report
    assert failed.exit_code == 2
    printed = capfd.readouterr()
    assert trained.output + failed.output + printed.out + printed.err == ""


# -------------------------------------------------------------------------------------------- torchrun
def _env() -> dict:
    path = os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH", "")) if p)
    return {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "PYTHONPATH": path}


def _run(launcher: list[str], *args) -> subprocess.CompletedProcess:
    done = subprocess.run([*launcher, "-m", "neurostack", "train", *map(str, args)], env=_env(), capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    text = done.stdout + done.stderr
    assert "Traceback" not in text and "error" not in text.lower(), text
    return done


TORCHRUN = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2"]


def _count(text: str, line_start: str) -> int:
    return sum(line.startswith(line_start) for line in text.splitlines())


def test_torchrun_with_two_processes_trains_resumes_and_matches_one_process(data, tmp_path):
    folder, cache = data
    common = ("--data", f"fsdd:{folder}", "--cache-dir", cache, *TRAIN)
    single, multi = tmp_path / "single", tmp_path / "multi"
    one = invoke("train", *common, "--out", single, "--epochs", 2)  # in this process: no start-up to wait for
    assert one.exit_code == 0, one.output
    log = _run(TORCHRUN, *common, "--out", multi, "--epochs", 2).stderr

    # Rank 0 alone prints: every line once.
    assert "2 processes (gloo, batch 4 each)" in " ".join(log.split())
    for start in ("neurostack train:", "augmentation:", "epoch   1/2", "epoch   2/2", "test accuracy"):
        assert _count(log, start) == 1, log
    # ... and writes: one run directory, nothing left half-written.
    files = sorted(p.relative_to(multi).as_posix() for p in multi.rglob("*") if p.is_file())
    assert files == ["best.safetensors", "checkpoints/last.pt", "config.json", "confusion_matrix.png",
                     "metrics.json", "training_curve.png"]
    m1, m2 = (json.loads((run / "metrics.json").read_text()) for run in (single, multi))
    assert (m1["processes"], m2["processes"]) == (1, 2)
    assert m2["epochs_run"] == 2 and m2["data"] == m1["data"]
    _, model = load_trained_model(multi)
    assert count_parameters(model) == m2["params"] == m1["params"]

    # The same accuracy within noise: 3 classes (chance 1/3), 15 test clips.
    chance = 1 / 3
    assert m1["test_accuracy"] > chance + 0.3 and m2["test_accuracy"] > chance + 0.3, (m1, m2)
    assert abs(m1["test_accuracy"] - m2["test_accuracy"]) <= 0.2, (m1["test_accuracy"], m2["test_accuracy"])

    # Resuming: every process reads the checkpoint, rank 0 alone goes on writing.
    log = _run(TORCHRUN, "--out", multi, "--resume", "--epochs", 3, "--cache-dir", cache).stderr
    assert _count(log, "epoch   3/3") == 1 and _count(log, "epoch   2/") == 0, log
    m3 = json.loads((multi / "metrics.json").read_text())
    assert m3["epochs_run"] == 3 and m3["history"][:2] == m2["history"]
