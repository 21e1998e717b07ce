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
