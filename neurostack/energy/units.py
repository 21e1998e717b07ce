"""Formatting numbers with SI prefixes for reports: 4.1e-6 J -> "4.1 uJ"."""

from __future__ import annotations

import math

_PREFIXES = ((1e3, "k"), (1.0, ""), (1e-3, "m"), (1e-6, "u"), (1e-9, "n"), (1e-12, "p"), (1e-15, "f"))


def si(value: float | None, unit: str, digits: int = 3) -> str:
    """`value` in base `unit` with an SI prefix and `digits` significant figures; "-" for None."""
    if value is None:
        return "-"
    if value == 0 or not math.isfinite(value):
        return f"{value:g} {unit}"
    mag = abs(value)
    for scale, prefix in _PREFIXES:
        if mag >= scale * 0.9995:
            return f"{value / scale:.{digits}g} {prefix}{unit}"
    scale, prefix = _PREFIXES[-1]
    return f"{value / scale:.{digits}g} {prefix}{unit}"


def joules(value: float | None) -> str:
    """Energy in joules, e.g. "4.1 uJ"."""
    return si(value, "J")


def count(value: float | None) -> str:
    """An operation count: whole numbers with thousands separators, fractions (means) with 4 significant figures."""
    if value is None:
        return "-"
    if value >= 1e15:
        return f"{value:.3e}"
    if abs(value - round(value)) < 1e-9:
        return f"{int(round(value)):,}"
    return f"{value:,.1f}" if value >= 100 else f"{value:.4g}"


def ratio(value: float) -> str:
    """A ratio such as "12.3x" or "1,234x"."""
    return f"{value:,.0f}x" if value >= 100 else f"{value:.3g}x"


def binary_bytes(n: int) -> str:
    """A memory size: "128 KiB", "8 MiB", or bytes when not a whole number of KiB."""
    for scale, name in ((1024**3, "GiB"), (1024**2, "MiB"), (1024, "KiB")):
        if n >= scale and n % scale == 0:
            return f"{n // scale:,} {name}"
    return f"{n:,} B"
