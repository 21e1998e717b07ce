"""`--plot FILE.png`: operations per layer and energy per inference per target (stacked terms, log scale)."""

from __future__ import annotations

from pathlib import Path

from neurostack.atomic import write_with
from neurostack.energy.estimate import TERMS, TargetEstimate
from neurostack.energy.report import references
from neurostack.energy.targets import Target
from neurostack.energy.workload import Workload

TERM_COLOURS = {"sop": "#4c72b0", "mac": "#dd8452", "neuron_update": "#55a868", "spike_routed": "#8172b3",
                "static": "#937860"}


def plot_energy(workload: Workload, estimates: list[TargetEstimate], path: str | Path,
                cmos: Target | None = None) -> None:
    """Write a PNG with two panels: SOPs and MACs per synaptic layer (per inference), and joules per inference per
    target as stacked terms on a log axis, with the ANN-equivalent and Spikformer-style references as lines.
    Targets with no energy figure are labelled, not drawn as zero. Written atomically."""
    from matplotlib.figure import Figure  # no pyplot: no global state, no GUI backend

    fig = Figure(figsize=(14, 5))
    ax_ops, ax_e = fig.subplots(1, 2, gridspec_kw={"width_ratios": [1, 1.4]})

    layers = workload.synaptic
    xs = range(len(layers))
    ax_ops.bar([x - 0.2 for x in xs], [n.sops for n in layers], width=0.4, label="SOPs", color=TERM_COLOURS["sop"])
    ax_ops.bar([x + 0.2 for x in xs], [n.macs for n in layers], width=0.4, label="MACs", color=TERM_COLOURS["mac"])
    ax_ops.set_xticks(list(xs), [n.name for n in layers], rotation=30, ha="right")
    ops = [v for n in layers for v in (n.sops, n.macs) if v > 0]
    if ops:
        ax_ops.set_yscale("log")
        ax_ops.set_ylim(bottom=min(ops) / 3, top=max(ops) * 2)
    ax_ops.set_ylabel("operations per inference")
    ax_ops.set_title("Operations per layer")
    ax_ops.legend(fontsize=8)

    ann, spk = references(workload, cmos)
    positive = [t.joules for e in estimates for t in e.terms.values() if t.status == "charged" and t.joules]
    positive += [r.joules for r in (ann, spk) if r.joules > 0]
    floor = min(positive) / 10 if positive else 1e-12
    drawn = set()
    for i, e in enumerate(estimates):
        total = 0.0  # stack from the axis floor so the top of the stack is exactly the total
        for name in TERMS:
            term = e.terms[name]
            if term.status != "charged" or not term.joules:
                continue
            low = max(total, floor)
            ax_e.bar(i, total + term.joules - low, bottom=low, width=0.6, color=TERM_COLOURS[name],
                     label=name if name not in drawn else None)
            drawn.add(name)
            total += term.joules
        if e.per_inference is None:
            ax_e.text(i, floor * 3, "no energy\nfigures", ha="center", va="bottom", fontsize=7, rotation=90)
        elif not e.complete:
            ax_e.text(i, max(total, floor) * 1.1, "lower\nbound", ha="center", va="bottom", fontsize=6)
    for ref, style, label in ((ann, "--", "ANN equivalent"), (spk, ":", "Spikformer-style")):
        if ref.joules > 0:
            ax_e.axhline(ref.joules, linestyle=style, color="black", linewidth=1,
                         label=f"{label} ({ref.target.label})")
    ax_e.set_yscale("log")
    ax_e.set_ylim(bottom=floor)
    ax_e.set_xlim(-0.7, len(estimates) - 0.3)
    ax_e.set_xticks(range(len(estimates)), [e.label for e in estimates], rotation=30, ha="right")
    ax_e.set_ylabel("joules per inference")
    ax_e.set_title("Energy per inference by target (stacked terms)")
    ax_e.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    fig.tight_layout()
    write_with(path, lambda tmp: fig.savefig(tmp, dpi=110))
