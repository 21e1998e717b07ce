"""Fixtures for the bad-input tests: a valid graph file with an input for it, and one small trained run."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from reliability_helpers import fsdd_folder, invoke, rich_input, write_graph


@pytest.fixture
def graph_and_input(tmp_path) -> tuple[Path, Path]:
    """(a valid NIR file of many node kinds, an .npy input for it), fresh for each test."""
    return write_graph(tmp_path / "g.nir"), rich_input(tmp_path / "x.npy")


@pytest.fixture(scope="session")
def trained_run(tmp_path_factory) -> tuple[Path, Path]:
    """(run directory of a 1-epoch mlp trained through the CLI, its cache dir); copy it before damaging it."""
    root = tmp_path_factory.mktemp("reliability_run")
    data = fsdd_folder(root / "fsdd")
    out, cache = root / "run", root / "cache"
    result = invoke("train", "--data", f"fsdd:{data}", "--epochs", "1", "--hidden", "8", "--steps", "3",
                    "--out", out, "--cache-dir", cache, "--device", "cpu")
    assert result.exit_code == 0, result.output
    return out, cache


@pytest.fixture
def run_copy(trained_run, tmp_path) -> tuple[Path, Path]:
    """A private copy of the trained run (and the shared cache dir)."""
    out, cache = trained_run
    copy = tmp_path / "run"
    shutil.copytree(out, copy)
    return copy, cache
