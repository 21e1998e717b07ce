"""`neurostack train` stopped mid-epoch (kill -9, SIGTERM, Ctrl-C) and continued with `--resume` reaches, bit for
bit, the weights of a run that was never stopped (CPU, one thread, the same seed).

Each test starts the real command in a subprocess, waits for the first epoch's checkpoint, lets the next epoch
get going and sends the signal; the run must then hold a complete checkpoint of an earlier epoch and no
metrics. A kill -9 during a write leaves only a `.NAME.tmp-*` file beside the target (`neurostack.atomic`):
resuming ignores such files and removes them. (A damaged `last.pt` itself is refused in one line naming it:
test_reliability_checkpoint.py.)
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from reliability_helpers import fsdd_folder

REPO = Path(__file__).resolve().parents[2]
EPOCHS = 3
TRAIN = ("--epochs", EPOCHS, "--hidden", 32, "--batch-size", 4, "--device", "cpu", "--seed", 3)


def _env() -> dict:
    """One thread (the same arithmetic in every run) and this checkout first on the path."""
    path = os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH", "")) if p)
    return {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "PYTHONPATH": path}


def _command(*args) -> list[str]:
    return [sys.executable, "-m", "neurostack", "train", *map(str, args)]


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> tuple[Path, Path]:
    """(an FSDD-style folder of 150 training clips: epochs of about half a second, the cache dir)."""
    root = tmp_path_factory.mktemp("resume")
    return fsdd_folder(root / "fsdd", digits=(0, 1, 2), indices=range(60)), root / "cache"


def _train_args(data: tuple[Path, Path], out: Path) -> list:
    folder, cache = data
    return ["--data", f"fsdd:{folder}", "--out", out, "--cache-dir", cache, *TRAIN]


@pytest.fixture(scope="module")
def reference(data, tmp_path_factory) -> Path:
    """A run that was never stopped."""
    out = tmp_path_factory.mktemp("reference") / "run"
    done = subprocess.run(_command(*_train_args(data, out)), env=_env(), capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    return out


def _interrupt(args: list, out: Path, sig: int, tmp_path: Path) -> tuple[int, str]:
    """Start `neurostack train ARGS`, send `sig` once epoch 1 is saved and epoch 2 half run; (exit code, stderr)."""
    log = tmp_path / "interrupted.log"
    with open(log, "w") as err:
        # Ctrl-C as a terminal sends it: the child must not inherit an ignored SIGINT (a test session started in
        # the background by a non-interactive shell ignores it, and Python then installs no KeyboardInterrupt)
        proc = subprocess.Popen(_command(*args), env=_env(), stdout=subprocess.DEVNULL, stderr=err,
                                preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
        try:
            checkpoint, deadline = out / "checkpoints" / "last.pt", time.monotonic() + 240
            while not checkpoint.is_file():
                assert proc.poll() is None, f"training ended before its first checkpoint:\n{log.read_text()}"
                assert time.monotonic() < deadline, "no checkpoint after 240 s"
                time.sleep(0.01)
            epoch_s = torch.load(checkpoint, weights_only=True)["history"][0]["seconds"]
            time.sleep(epoch_s / 2)  # into epoch 2
            proc.send_signal(sig)
            code = proc.wait(timeout=120)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    return code, log.read_text()


def _final_state(run: Path) -> dict:
    state = torch.load(run / "checkpoints" / "last.pt", weights_only=True)
    metrics = json.loads((run / "metrics.json").read_text())
    numbers = [{k: v for k, v in h.items() if k != "seconds"} for h in metrics["history"]]
    return {"last": state["model"], "optimiser": state["optimiser"]["state"], "best": load_file(run / "best.safetensors"),
            "history": numbers, "test_accuracy": metrics["test_accuracy"]}


def _assert_same_tensors(a: dict, b: dict, what: str) -> None:
    assert a.keys() == b.keys(), what
    for k in a:
        if isinstance(a[k], dict):
            _assert_same_tensors(a[k], b[k], f"{what}[{k}]")
        else:
            assert torch.equal(a[k], b[k]), f"{what}: {k} differs"


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM, signal.SIGINT], ids=["kill-9", "SIGTERM", "Ctrl-C"])
def test_a_run_stopped_mid_epoch_resumes_to_the_weights_of_an_uninterrupted_run(data, reference, tmp_path, sig):
    out = tmp_path / "run"
    code, stderr = _interrupt(_train_args(data, out), out, sig, tmp_path)

    # Stopped for real, before the end, with a complete checkpoint of an earlier epoch.
    assert "Traceback" not in stderr, stderr
    if sig == signal.SIGKILL:
        assert code == -signal.SIGKILL
    else:
        assert code == 130, stderr
        assert "interrupted: the last complete epoch is saved" in " ".join(stderr.split()), stderr
    saved = torch.load(out / "checkpoints" / "last.pt", weights_only=True)
    assert 1 <= saved["epoch"] < EPOCHS
    assert not (out / "metrics.json").exists()
    if sig != signal.SIGKILL:  # a write that the signal interrupts removes its temporary file
        assert not list(out.rglob(".*.tmp-*"))

    # What a kill -9 in the middle of writing the next checkpoint or weights would leave: never trusted.
    leftovers = [out / "checkpoints" / ".last.pt.tmp-k1ll3d.pt", out / ".best.safetensors.tmp-k1ll3d.safetensors"]
    leftovers[0].write_bytes((out / "checkpoints" / "last.pt").read_bytes()[:5000])
    leftovers[1].write_bytes(b"\x00garbage")

    done = subprocess.run(_command("--out", out, "--resume", "--cache-dir", data[1]), env=_env(),
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert f"epoch {saved['epoch'] + 1:>3}/{EPOCHS}" in done.stderr  # it continued after the saved epoch
    assert f"epoch {saved['epoch']:>3}/{EPOCHS}" not in done.stderr
    assert not any(p.exists() for p in leftovers)

    resumed, uninterrupted = _final_state(out), _final_state(reference)
    assert resumed["history"] == uninterrupted["history"]
    assert resumed["test_accuracy"] == uninterrupted["test_accuracy"]
    for key in ("last", "optimiser", "best"):
        _assert_same_tensors(resumed[key], uninterrupted[key], key)


def test_weights_are_written_whole_with_the_usual_permissions(tmp_path):
    from neurostack.train.checkpoint import load_weights, save_weights

    path, model, copy = tmp_path / "best.safetensors", torch.nn.Linear(3, 2), torch.nn.Linear(3, 2)
    save_weights(path, model)
    umask = os.umask(0)
    os.umask(umask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~umask  # as every other file of a run, not 0600
    assert [p.name for p in tmp_path.iterdir()] == ["best.safetensors"]
    load_weights(path, copy)
    assert torch.equal(copy.weight, model.weight) and torch.equal(copy.bias, model.bias)
