import os
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

FSDD_DEFAULT = Path("/work/shared/data/fsdd/recordings")


@pytest.fixture
def fsdd_real() -> Path:
    """The real FSDD recordings ($NEUROSTACK_FSDD or the shared default); skips when absent."""
    path = Path(os.environ.get("NEUROSTACK_FSDD", FSDD_DEFAULT))
    if not path.is_dir():
        pytest.skip(f"FSDD recordings not found at {path}")
    return path


def write_tone(path: Path, freq: float, seconds: float = 0.25, sr: int = 8000, seed: int = 0) -> None:
    t = np.arange(int(seconds * sr)) / sr
    noise = np.random.default_rng(seed).normal(0, 0.01, t.size)
    sf.write(path, (0.5 * np.sin(2 * np.pi * freq * t) + noise).astype(np.float32), sr)


@pytest.fixture
def fsdd_tiny(tmp_path) -> Path:
    """3 speakers x digits 0-2 x recording indices 0-11, a different tone per digit."""
    folder = tmp_path / "fsdd"
    folder.mkdir()
    for speaker in ("alice", "bob", "carol"):
        for digit in range(3):
            for index in range(12):
                write_tone(folder / f"{digit}_{speaker}_{index}.wav", 300 + 400 * digit, seed=index)
    (folder / "README.txt").write_text("not a recording")
    return folder
