"""Seeded subsets for the `limit` option."""

from __future__ import annotations

from typing import TypeVar

import numpy as np

T = TypeVar("T")


def seeded_subset(items: list[T], limit: int | None, seed: int) -> list[T]:
    """At most `limit` of `items`: a random choice drawn from `seed`, keeping their order."""
    if limit is None or limit >= len(items):
        return list(items)
    keep = np.sort(np.random.default_rng([seed, 0x11A1]).permutation(len(items))[: max(0, limit)])
    return [items[i] for i in keep]


def seeded_holdout(items: list[T], fraction: float, seed: int) -> tuple[list[T], list[T]]:
    """Split `items` into (kept, held out): round(fraction * len) items drawn from `seed`, order kept."""
    n_out = int(round(fraction * len(items)))
    out = set(np.random.default_rng([seed, 0x7A1]).permutation(len(items))[:n_out].tolist())
    return [x for i, x in enumerate(items) if i not in out], [x for i, x in enumerate(items) if i in out]
