"""Shared fixtures: where the real data and the peer NIR graphs live, and a small FSDD-like folder."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

SHARED = Path(os.environ.get("NEUROSTACK_SHARED", Path(__file__).resolve().parents[1].parent / "shared"))
FSDD = Path(os.environ.get("NEUROSTACK_FSDD", SHARED / "data" / "fsdd" / "recordings"))


@pytest.fixture(scope="session")
def fsdd_dir() -> Path:
    """The real FSDD recordings (skips when this checkout has no ../shared)."""
    if not FSDD.is_dir():
        pytest.skip(f"FSDD recordings not found at {FSDD} (set NEUROSTACK_FSDD)")
    return FSDD


@pytest.fixture(scope="session")
def tiny_fsdd(tmp_path_factory) -> Path:
    """A small FSDD-style folder of synthetic tones: digit d is a chirp around (300 + 150 d) Hz."""
    import soundfile as sf

    root = tmp_path_factory.mktemp("tiny_fsdd")
    rng = np.random.default_rng(0)
    sr = 8000
    for digit in range(3):
        for speaker, shift in (("ann", 1.0), ("bob", 1.07)):
            for index in range(12):
                t = np.arange(int(sr * (0.35 + 0.2 * rng.random()))) / sr
                f0 = (300 + 150 * digit) * shift * (1 + 0.03 * rng.standard_normal())
                wave = 0.4 * np.sin(2 * np.pi * f0 * t * (1 + 0.3 * t)) + 0.02 * rng.standard_normal(len(t))
                sf.write(root / f"{digit}_{speaker}_{index}.wav", wave.astype(np.float32), sr)
    return root


@pytest.fixture()
def cache_dir(tmp_path) -> Path:
    d = tmp_path / "cache"
    d.mkdir()
    return d
