"""Fixtures for the simulator tests."""

from __future__ import annotations

from pathlib import Path

import nir
import pytest


@pytest.fixture
def write(tmp_path):
    """write(graph, name="g.nir") -> path of the graph written with nir.write."""

    def _write(graph: nir.NIRGraph, name: str = "g.nir") -> Path:
        path = tmp_path / name
        nir.write(str(path), graph)
        return path

    return _write
