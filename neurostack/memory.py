"""How much memory is free, and refusing work that would need more before anything is allocated.

`available_memory()` is the least of: the kernel's MemAvailable (/proc/meminfo, else
os.sysconf's available pages) and the room left under the process's cgroup memory limit (v1 or v2,
every level up to the root), since a container's limit is lower than what /proc/meminfo reports.
`$NEUROSTACK_MEMORY_LIMIT` (bytes, or with a K/M/G/T suffix: powers of 1024) replaces the detection,
for machines shared with other jobs and for tests.

`check_memory(needed, what)` raises NeurostackError stating the estimate and what is available when
`needed` exceeds it. Estimates are made from declared shapes (HDF5 headers: `hdf5_bytes`; NIR shapes;
dataset sizes), so nothing is allocated to find out. Torch-free and numba-free: the data layer uses it too.
"""

from __future__ import annotations

import math
import os
import re
from pathlib import Path

from neurostack.errors import NeurostackError

ENV_LIMIT = "NEUROSTACK_MEMORY_LIMIT"
_UNITS = {"": 1, "K": 1024, "M": 1024**2, "G": 1024**3, "T": 1024**4}
_UNLIMITED = 1 << 60  # cgroup v1 writes 2^63 rounded to the page size for "no limit"
_VLEN_GUESS = 16  # bytes per element of a variable-length / object dataset: only the header is known


def format_bytes(n: float) -> str:
    """1536 -> '1.5 KiB'; 3e12 -> '2.7 TiB'."""
    n = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if abs(n) < 1024 or unit == "PiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} EiB"  # not reached


def parse_bytes(text: str) -> int:
    """'512M' -> 536870912; a plain number is bytes. Raises NeurostackError on anything else."""
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([KMGT]?)(?:i?B)?\s*", str(text), re.IGNORECASE)
    if not m:
        raise NeurostackError(f"${ENV_LIMIT}={text!r}: expected a size in bytes such as 2000000000, 512M or 8G")
    return int(float(m[1]) * _UNITS[m[2].upper()])


def _meminfo_available() -> int | None:
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return int(os.sysconf("SC_AVPHYS_PAGES")) * int(os.sysconf("SC_PAGE_SIZE"))
    except (AttributeError, ValueError, OSError):
        return None


def _read_int(path: Path) -> int | None:
    try:
        text = path.read_text().strip()
    except OSError:
        return None
    if text == "max":
        return None
    try:
        return int(text)
    except ValueError:
        return None


def _cgroup_room() -> int | None:
    """Bytes left under the tightest cgroup memory limit on the way from this process's group to the root."""
    try:
        lines = Path("/proc/self/cgroup").read_text().splitlines()
    except OSError:
        return None
    candidates: list[tuple[Path, str, str]] = []
    for line in lines:
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        _, controllers, rel = parts
        if controllers == "":  # cgroup v2 unified hierarchy
            candidates.append((Path("/sys/fs/cgroup"), rel, "v2"))
        elif "memory" in controllers.split(","):
            candidates.append((Path("/sys/fs/cgroup/memory"), rel, "v1"))
    room = None
    for root, rel, version in candidates:
        rel_parts = [p for p in rel.split("/") if p]
        for depth in range(len(rel_parts), -1, -1):
            d = root.joinpath(*rel_parts[:depth])
            if version == "v2":
                limit, usage = _read_int(d / "memory.max"), _read_int(d / "memory.current")
            else:
                limit, usage = _read_int(d / "memory.limit_in_bytes"), _read_int(d / "memory.usage_in_bytes")
            if limit is None or limit >= _UNLIMITED:
                continue
            left = max(0, limit - (usage or 0))
            room = left if room is None else min(room, left)
    return room


def available_memory() -> int | None:
    """Bytes this process can still allocate (see the module docstring); None when it cannot be told."""
    env = os.environ.get(ENV_LIMIT)
    if env:
        return parse_bytes(env)
    found = [v for v in (_meminfo_available(), _cgroup_room()) if v is not None]
    return min(found) if found else None


# Below this many bytes a request is not worth asking the system about: reading /proc and the cgroup files takes
# about a millisecond, more than simulating a small sample (which calls this once per run).
ALWAYS_FITS = 64 * 1024**2


def worth_checking(needed: int) -> bool:
    """True when `needed` bytes must be compared with the available memory: large, or a limit set by $ENV_LIMIT."""
    return needed > ALWAYS_FITS or bool(os.environ.get(ENV_LIMIT))


def check_memory(needed: int, what: str, hint: str = "") -> None:
    """Raise NeurostackError when `needed` bytes (an estimate) exceed the available memory.

    what: the subject of the message ("the graph 'x.nir'", "the recordings"); hint: appended advice
    (e.g. "; simulate fewer samples with --limit").
    """
    if not worth_checking(needed):
        return
    available = available_memory()
    if available is None or needed <= available:
        return
    raise NeurostackError(f"{what} would need about {format_bytes(needed)} of memory, more than the "
                          f"{format_bytes(available)} available{hint}")


def nbytes(shape, itemsize: int) -> int:
    """Bytes of an array of `shape` (exact integer arithmetic: no int64 overflow on absurd shapes)."""
    return math.prod(int(s) for s in shape) * int(itemsize)


def hdf5_bytes(group) -> int:
    """Bytes that reading every dataset under the h5py `group` into memory would take (declared shapes)."""
    import h5py

    total = 0
    todo = [group]  # an explicit stack: visititems looks every item up by its full path (quadratic in depth)
    seen = {group.id}  # a damaged file can link a group into itself
    while todo:
        for item in todo.pop().values():
            if item.id in seen:
                continue
            seen.add(item.id)
            if isinstance(item, h5py.Group):
                todo.append(item)
            elif isinstance(item, h5py.Dataset):
                dtype = item.dtype
                itemsize = dtype.itemsize if dtype.kind not in "OV" or dtype.fields else _VLEN_GUESS
                total += nbytes(item.shape or (), max(int(itemsize), 1))
    return total
