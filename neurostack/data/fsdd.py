"""Free Spoken Digit Dataset folders: ``{digit}_{speaker}_{index}.wav`` recordings at 8 kHz.

Splits:
  ``standard``               recording index 0-4 test (the FSDD convention), 5-9 validation, rest train;
  ``speaker:NAME[,NAME]``    those speakers are the test set; validation is a seeded 10 % of the rest;
  ``all``                    every file is test data (train and val empty), to evaluate on a new folder.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from neurostack.data._progress import progress_bar
from neurostack.data._subset import seeded_holdout
from neurostack.data.features import FeatureConfig, check_dataset_memory, file_features
from neurostack.errors import NeurostackError

CLASSES = [str(d) for d in range(10)]
SPLITS = ("standard", "speaker:NAME[,NAME]", "all")
VAL_FRACTION = 0.1  # of the non-test files, for the speaker split
_NAME = re.compile(r"^(?P<digit>\d)_(?P<speaker>[^_]+)_(?P<index>\d+)\.wav$", re.IGNORECASE)


@dataclass(frozen=True)
class Recording:
    """One FSDD file: its path, digit (the label), speaker and recording index."""

    path: Path
    digit: int
    speaker: str
    index: int


def scan(folder: str | os.PathLike) -> list[Recording]:
    """All ``{digit}_{speaker}_{index}.wav`` files in `folder`, sorted by (speaker, digit, index)."""
    root = Path(folder).expanduser()
    if not root.exists():
        raise NeurostackError(f"FSDD folder {root} does not exist")
    if not root.is_dir():
        raise NeurostackError(f"FSDD path {root} is not a folder")
    found = []
    for p in root.iterdir():
        m = _NAME.match(p.name)
        if m and p.is_file():
            found.append(Recording(p.resolve(), int(m["digit"]), m["speaker"], int(m["index"])))
    if not found:
        raise NeurostackError(f"FSDD folder {root} has no recordings named {{digit}}_{{speaker}}_{{index}}.wav")
    return sorted(found, key=lambda r: (r.speaker, r.digit, r.index))


def split_recordings(recs: list[Recording], split: str, seed: int = 0) -> dict[str, list[Recording]]:
    """Assign recordings to "train" / "val" / "test" according to `split` (see module docstring)."""
    if split == "standard":
        return {
            "train": [r for r in recs if r.index >= 10],
            "val": [r for r in recs if 5 <= r.index < 10],
            "test": [r for r in recs if r.index < 5],
        }
    if split == "all":
        return {"train": [], "val": [], "test": list(recs)}
    if split.startswith("speaker:"):
        names = [n.strip() for n in split[len("speaker:") :].split(",") if n.strip()]
        known = sorted({r.speaker for r in recs})
        unknown = [n for n in names if n not in known]
        if not names or unknown:
            raise NeurostackError(
                f"split {split!r}: unknown speaker(s) {', '.join(unknown) or '(none given)'}; "
                f"known speakers: {', '.join(known)}"
            )
        test = [r for r in recs if r.speaker in names]
        rest = [r for r in recs if r.speaker not in names]
        train, val = seeded_holdout(rest, VAL_FRACTION, seed)
        return {"train": train, "val": val, "test": test}
    raise NeurostackError(f"unknown FSDD split {split!r}; use one of: {', '.join(SPLITS)}")


def featurize(
    by_split: dict[str, list[Recording]], cfg: FeatureConfig, progress: bool = True
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Features and labels of each split: x float32 (N, cfg.n_frames, cfg.n_bins), y int64 (N,)."""
    x, y = {}, {}
    total = sum(len(v) for v in by_split.values())
    folders = sorted({str(r.path.parent) for v in by_split.values() for r in v}) or ["FSDD"]
    check_dataset_memory(total, cfg, ", ".join(folders))
    with progress_bar(total, "featurising FSDD", progress) as advance:
        for split, recs in by_split.items():
            feats = []
            for r in recs:
                feats.append(file_features(r.path, cfg))
                advance()
            x[split] = np.stack(feats) if feats else np.zeros((0, cfg.n_frames, cfg.n_bins), np.float32)
            y[split] = np.array([r.digit for r in recs], dtype=np.int64)
    return x, y
