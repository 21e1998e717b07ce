"""Fixtures of the energy tests: a hand-built workload and a writer of target files."""

from __future__ import annotations

from pathlib import Path

import pytest
from energy_workloads import mlp

from neurostack.energy.workload import Workload


@pytest.fixture()
def workload() -> Workload:
    return mlp()


@pytest.fixture()
def write_target(tmp_path):
    """write_target(text, name="chip") -> path of a .toml file holding `text`."""

    def write(text: str, name: str = "chip") -> Path:
        path = tmp_path / f"{name}.toml"
        path.write_text(text, encoding="utf-8")
        return path

    return write
