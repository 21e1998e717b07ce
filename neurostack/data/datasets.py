"""`load_dataset`: one entry point for every dataset, returning a `Dataset` of arrays."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from neurostack.data import cache
from neurostack.data._subset import seeded_subset
from neurostack.data.features import FeatureConfig
from neurostack.errors import NeurostackError

DATASET_NAMES = ("synth-digits", "fsdd:PATH", "shd:PATH", "ssc:PATH")


@dataclass
class Dataset:
    """Arrays of a dataset, split into "train" / "val" / "test".

    x[split]: float32 (N, T, F): features in [0, 1] (input_kind "features") or spike counts per
    frame (input_kind "spikes", shd/ssc). y[split]: int64 (N,) class indices into `classes`.
    meta: JSON-able description (spec, split, feature config, seed, sizes, speakers) that travels
    with exported models so the inputs can be rebuilt. files: source file per sample, if any.
    """

    name: str
    classes: list[str]
    x: dict[str, np.ndarray]
    y: dict[str, np.ndarray]
    input_kind: str
    meta: dict
    files: dict[str, list[str]] | None = None

    @property
    def features(self) -> FeatureConfig:
        """The FeatureConfig the arrays were computed with."""
        return FeatureConfig.from_dict(self.meta["features"])


def parse_spec(spec: str) -> tuple[str, Path | None]:
    """Split a dataset spec into (name, path or None); unknown forms raise NeurostackError."""
    name, sep, rest = str(spec).partition(":")
    if name == "synth-digits" and not sep:
        return name, None
    if name in ("fsdd", "shd", "ssc") and sep and rest:
        return name, Path(rest).expanduser()
    raise NeurostackError(f"unknown dataset {spec!r}; use one of: {', '.join(DATASET_NAMES)}")


def _check_limit(limit: int | None) -> None:
    if limit is not None and (not isinstance(limit, (int, np.integer)) or limit < 0):
        raise NeurostackError(f"limit must be a non-negative integer, got {limit!r}")


def load_dataset(
    spec: str,
    *,
    split: str = "standard",
    cache_dir: str | os.PathLike | None = None,
    seed: int = 0,
    features: FeatureConfig | None = None,
    progress: bool = True,
    limit: int | None = None,
) -> Dataset:
    """Load (or compute and cache) a dataset.

    spec: "synth-digits", "fsdd:PATH", "shd:PATH" or "ssc:PATH".
    split: "standard" everywhere; FSDD also "speaker:NAME[,NAME]" and "all"; shd/ssc also "all".
    features: defaults to FeatureConfig() (40 log-mel bins, 10 ms hop, 1 s) for audio and to
        FeatureConfig(n_bins=70) (700 units summed to 70 channels, 10 ms bins, 1 s) for shd/ssc.
    seed: drives synthesis, voice / validation splits and `limit` subsets.
    limit: at most this many samples per split (a seeded subset), for quick runs.
    progress: show a progress bar on stderr during long work.
    """
    name, path = parse_spec(spec)
    _check_limit(limit)
    if features is None:
        features = FeatureConfig(n_bins=70) if name in ("shd", "ssc") else FeatureConfig()
    if not isinstance(features, FeatureConfig):
        raise NeurostackError(f"features must be a FeatureConfig, got {type(features).__name__}")
    parts = {"dataset": name, "split": split, "features": features.to_dict(), "seed": int(seed), "limit": limit}

    if name == "synth-digits":
        from neurostack.data import synth_digits

        if split != "standard":
            raise NeurostackError(f"synth-digits has only the 'standard' split (voice-disjoint), not {split!r}")
        parts["recipe"] = synth_digits.recipe()

        def build() -> dict:
            x, y, meta = synth_digits.build(features, int(seed), limit=limit, progress=progress)
            return {"x": x, "y": y, "classes": synth_digits.CLASSES, "meta": meta, "files": None}

        input_kind = "features"
    elif name == "fsdd":
        from neurostack.data import fsdd

        recs = fsdd.scan(path)
        by_split = fsdd.split_recordings(recs, split, int(seed))
        if limit is not None:
            by_split = {s: seeded_subset(r, limit, int(seed)) for s, r in by_split.items()}
        parts["path"] = str(path.resolve())
        parts["files"] = cache.file_fingerprint(r.path for r in recs)

        def build() -> dict:
            x, y = fsdd.featurize(by_split, features, progress)
            meta = {"path": str(path.resolve()),
                    "speakers": {s: sorted({r.speaker for r in v}) for s, v in by_split.items()}}
            files = {s: [str(r.path) for r in v] for s, v in by_split.items()}
            return {"x": x, "y": y, "classes": fsdd.CLASSES, "meta": meta, "files": files}

        input_kind = "features"
    else:
        from neurostack.data import heidelberg

        heidelberg.check_split(name, split)
        paths = heidelberg.files_for(name, path)
        parts["path"] = str(path.resolve())
        parts["files"] = cache.file_fingerprint(paths.values())

        def build() -> dict:
            x, y, classes, meta = heidelberg.load(name, path, features, split, int(seed), limit, progress)
            return {"x": x, "y": y, "classes": classes, "meta": meta, "files": None}

        input_kind = "spikes"

    record, _ = cache.cached(parts, build, cache_dir)
    x, y = record["x"], record["y"]
    meta = {
        "spec": str(spec),
        "dataset": name,
        "split": split,
        "seed": int(seed),
        "limit": limit,
        "features": features.to_dict(),
        "input_kind": input_kind,
        "n": {s: int(len(y[s])) for s in y},
        **record["meta"],
    }
    return Dataset(name=name, classes=list(record["classes"]), x=x, y=y, input_kind=input_kind,
                   meta=meta, files=record["files"])

