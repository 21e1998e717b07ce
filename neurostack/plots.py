"""Figures shared by commands: spike rasters."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from neurostack.atomic import write_with


def plot_raster(spikes: dict[str, np.ndarray], path: str | Path, dt: float) -> None:
    """One panel per layer: spikes[name] is (T, *shape); neurons flattened on the y axis, time in seconds."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(spikes)
    fig, axes = plt.subplots(len(names), 1, figsize=(9, 1.6 + 1.8 * len(names)), sharex=True, squeeze=False)
    for ax, name in zip(axes[:, 0], names):
        s = spikes[name].reshape(spikes[name].shape[0], -1)
        t, n = np.nonzero(s)
        ax.scatter(t * dt, n, s=2, marker="|", color="black")
        ax.set_ylabel(f"{name}\nneuron"), ax.set_title(f"{name}: {int(s.sum())} spikes", fontsize=9)
    axes[-1, 0].set_xlabel("time (s)")
    fig.tight_layout()
    write_with(path, lambda tmp: fig.savefig(tmp, dpi=110))
    plt.close(fig)
