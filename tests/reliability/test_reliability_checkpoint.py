"""Checkpoints and run directories through `neurostack train --resume` and `neurostack export`: a corrupt file, one
from another model, and a pickle that would run code are refused in one line naming the file; the code never
runs."""

from __future__ import annotations

import json
import os
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file

from reliability_helpers import assert_clean_error, invoke

MARKER = "neurostack-pwned-marker"


class Payload:
    """Unpickling this runs a shell command that creates a marker file."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def _resume(run: Path, cache: Path):
    return invoke("train", "--out", run, "--resume", "--epochs", "2", "--cache-dir", cache)


def _state(run: Path) -> dict:
    return torch.load(run / "checkpoints" / "last.pt", weights_only=True)


def _grown(tensors: dict) -> dict:
    """The same names with every dimension one larger: weights of another model."""
    return {k: torch.zeros(*(s + 1 for s in v.shape)) for k, v in tensors.items()}


LAST_PT = {
    "corrupt": (lambda p, s: p.write_bytes(np.random.default_rng(0).bytes(2000)),
                "not a readable neurostack checkpoint"),
    "truncated": (lambda p, s: p.write_bytes(p.read_bytes()[:1000]), "not a readable neurostack checkpoint"),
    "empty": (lambda p, s: p.write_bytes(b""), "not a readable neurostack checkpoint"),
    "a list": (lambda p, s: torch.save([1, 2, 3], p), "holds a list, not a dict"),
    "a tensor": (lambda p, s: torch.save(torch.zeros(3), p), "holds a Tensor"),
    "no history": (lambda p, s: torch.save({k: v for k, v in s.items() if k != "history"}, p), "no history"),
    "epoch as text": (lambda p, s: torch.save({**s, "epoch": "seven"}, p), "'epoch' is a str"),
    "weights not tensors": (lambda p, s: torch.save({**s, "model": {"w": [1.0]}}, p), "not named tensors"),
    "from another model": (lambda p, s: torch.save({**s, "model": _grown(s["model"])}, p), "not fit this model"),
}


@pytest.mark.parametrize("case", LAST_PT, ids=list(LAST_PT))
def test_resume_from_a_damaged_checkpoint(run_copy, case):
    run, cache = run_copy
    damage, phrase = LAST_PT[case]
    damage(run / "checkpoints" / "last.pt", _state(run))
    assert_clean_error(_resume(run, cache), run / "checkpoints" / "last.pt", contains=phrase)


@pytest.mark.parametrize("how", ["plain pickle", "torch.save"])
def test_a_checkpoint_that_would_run_code_is_refused_and_the_code_never_runs(run_copy, tmp_path, how):
    run, cache = run_copy
    marker = tmp_path / MARKER
    path = run / "checkpoints" / "last.pt"
    if how == "plain pickle":
        path.write_bytes(pickle.dumps(Payload(marker), protocol=2))
    else:
        torch.save({**_state(run), "model": Payload(marker)}, path)
    line = assert_clean_error(_resume(run, cache), path)
    assert not marker.exists()
    if how == "torch.save":
        assert "refused: unpickling it would call posix.system" in line
    # the same file where export looks for weights: safetensors never unpickles anything
    (run / "best.safetensors").write_bytes(path.read_bytes())
    assert_clean_error(invoke("export", run, "-o", tmp_path / "m.nir"), run / "best.safetensors")
    assert not marker.exists()


BEST = {
    "corrupt": (lambda p: p.write_bytes(np.random.default_rng(1).bytes(300)), "not a readable safetensors file"),
    "empty": (lambda p: p.write_bytes(b""), "not a readable safetensors file"),
    "truncated": (lambda p: p.write_bytes(p.read_bytes()[:100]), "not a readable safetensors file"),
    "from another model": (lambda p: save_file(_grown(load_file(str(p))), str(p)), "wrong shape for"),
    "missing weights": (lambda p: save_file(dict(list(load_file(str(p)).items())[:1]), str(p)), "missing"),
}


@pytest.mark.parametrize("case", BEST, ids=list(BEST))
def test_export_of_damaged_weights(run_copy, tmp_path, case):
    run, _ = run_copy
    damage, phrase = BEST[case]
    damage(run / "best.safetensors")
    out = tmp_path / "m.nir"
    assert_clean_error(invoke("export", run, "-o", out), run / "best.safetensors", contains=phrase)
    assert not out.exists()


def _edit_config(edit):
    def damage(path: Path) -> None:
        config = json.loads(path.read_text())
        path.write_text(json.dumps(edit(config)))
    return damage


CONFIG = {
    "not JSON": (lambda p: p.write_text("{not json"), "unreadable run config"),
    "not UTF-8": (lambda p: p.write_bytes(b"\xff\xfe\x00"), "unreadable run config"),
    "a list": (lambda p: p.write_text("[]"), "not a neurostack run config"),
    "model a number": (_edit_config(lambda c: {**c, "model": 3}), "not a neurostack run config"),
    "hidden as text": (_edit_config(lambda c: {**c, "model": {**c["model"], "hidden": "abc"}}), "unreadable"),
    "unknown model": (_edit_config(lambda c: {**c, "model": {**c["model"], "name": "hal9000"}}), "hal9000"),
    "absurd input": (_edit_config(lambda c: {**c, "model": {**c["model"], "input_shape": [10**7, 10**7]}}),
                     "would need about"),
    "zero classes": (_edit_config(lambda c: {**c, "model": {**c["model"], "n_classes": 0}}), "n_classes"),
}


@pytest.mark.parametrize("case", CONFIG, ids=list(CONFIG))
def test_export_with_a_damaged_run_config(run_copy, tmp_path, case):
    run, _ = run_copy
    damage, phrase = CONFIG[case]
    damage(run / "config.json")
    assert_clean_error(invoke("export", run, "-o", tmp_path / "m.nir"), run / "config.json", contains=phrase)


def test_an_intact_run_still_resumes_and_exports(run_copy, tmp_path):
    run, cache = run_copy
    assert _resume(run, cache).exit_code == 0
    result = invoke("export", run, "-o", tmp_path / "m.nir")
    assert result.exit_code == 0, result.output


RESUME_CONFIG = {
    "unknown view": (lambda c: {**c, "view": "hologram"}, "unknown view 'hologram'"),
    "negative steps": (lambda c: {**c, "steps": -3}, "steps = -3"),
    "zero batch size": (lambda c: {**c, "batch_size": 0}, "batch_size = 0"),
    "learning rate as text": (lambda c: {**c, "lr": "fast"}, "lr = 'fast'"),
    "features as text": (lambda c: {**c, "features": {"n_bins": "x"}}, "n_bins"),
    "unknown surrogate": (lambda c: {**c, "model": {**c["model"], "surrogate": "magic"}}, "magic"),
    "augment a list": (lambda c: {**c, "augment": [1]}, "not a neurostack run config"),
}


@pytest.mark.parametrize("case", RESUME_CONFIG, ids=list(RESUME_CONFIG))
def test_resume_with_a_damaged_run_config(run_copy, case):
    run, cache = run_copy
    edit, phrase = RESUME_CONFIG[case]
    _edit_config(edit)(run / "config.json")
    assert_clean_error(_resume(run, cache), run / "config.json", contains=phrase)
