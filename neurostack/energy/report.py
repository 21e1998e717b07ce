"""The SOP / energy report: rich tables for the terminal and a JSON-ready dict.

Units: energies in joules, counts per inference (means over the samples simulated). `None` (JSON null, "-" in
tables) means unknown: a figure the target does not publish, never zero.
"""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from neurostack.energy import units
from neurostack.energy.capacity import Violation
from neurostack.energy.estimate import (TERMS, Reference, TargetEstimate, ann_equivalent, comparison_claim,
                                        spikformer_figure)
from neurostack.energy.targets import Target, load_target
from neurostack.energy.workload import NodeWork, Workload

SPIKING_NEURONS = ("LIF", "CubaLIF", "IF")
TERM_HEADERS = {"sop": "SOPs", "mac": "MACs", "neuron_update": "neuron upd.", "spike_routed": "spikes routed",
                "static": "static"}


def activation_sparsity(n: NodeWork) -> float | None:
    """1 - spikes / neuron updates for spiking neuron nodes (fraction of neuron-steps without a spike), else None."""
    if n.type not in SPIKING_NEURONS or n.neuron_updates <= 0:
        return None
    return 1.0 - n.spikes / n.neuron_updates


def connection_sparsity(n: NodeWork) -> float | None:
    """1 - non-zero weights / weights for synaptic nodes with stored weights, else None."""
    if not n.is_synaptic or n.n_weights <= 0:
        return None
    return 1.0 - n.n_nonzero_weights / n.n_weights


def references(workload: Workload, cmos: Target | None = None) -> tuple[Reference, Reference]:
    """(ANN-equivalent, Spikformer-style) references on `cmos` (default: the built-in cmos45nm, FP32)."""
    cmos = cmos or load_target("cmos45nm")
    return ann_equivalent(workload, cmos), spikformer_figure(workload, cmos)


def per_timestep_sops(workload: Workload) -> list[float]:
    """SOPs at each time step summed over nodes (empty when the run did not count per step)."""
    series = [n.per_step_sops for n in workload.nodes if n.per_step_sops]
    if not series:
        return []
    length = max(len(s) for s in series)
    return [float(sum(s[t] for s in series if t < len(s))) for t in range(length)]


# --- JSON ----------------------------------------------------------------------------------------------------------


def _violation_json(v: Violation) -> dict[str, Any]:
    return {"node": v.node, "limit": v.limit, "value": v.value, "allowed": v.allowed, "severity": v.severity,
            "message": v.message}


def _estimate_json(e: TargetEstimate, ann: Reference) -> dict[str, Any]:
    return {
        "title": e.target.title,
        "per_inference": e.per_inference,
        "complete": e.complete,
        "dynamic": e.dynamic,
        "terms": {name: t.joules for name, t in e.terms.items()},
        "term_details": {name: {"status": t.status, "count": t.count, "energy_per_op": t.energy_per_op,
                                "joules": t.joules, "note": t.note} for name, t in e.terms.items()},
        "unavailable": e.unavailable,
        "update_model": e.target.update_model,
        "cores": e.cores,
        "chips": e.chips,
        "weight_bits": e.target.weight_bits,
        "violations": [_violation_json(v) for v in e.violations],
        "assumptions": e.assumptions,
        "notes": e.notes,
        "claim": comparison_claim(e, ann),
        "source": e.target.main_source,
    }


def _reference_json(r: Reference) -> dict[str, Any]:
    return {"target": r.target.label, "joules": r.joules, "formula": r.formula,
            "parts": {k: {"count": c, "energy_per_op": e} for k, (c, e) in r.parts.items()}}


def to_json(workload: Workload, estimates: list[TargetEstimate], cmos: Target | None = None) -> dict[str, Any]:
    """Counts and energies as a JSON-serialisable dict (joules; None where unknown)."""
    ann, spk = references(workload, cmos)

    def per_node(attr: str, neurons: bool = False) -> dict[str, float]:
        return {n.name: getattr(n, attr) for n in (workload.neurons if neurons else workload.synaptic)}

    return {
        "steps": workload.steps,
        "dt": workload.dt,
        "samples": workload.samples,
        "weight_bits": workload.weight_bits,
        "sops": {"per_inference": workload.total("sops"), "per_timestep": per_timestep_sops(workload),
                 "per_node": per_node("sops"),
                 "per_node_per_timestep": {n.name: n.per_step_sops for n in workload.synaptic if n.per_step_sops}},
        "macs": {"per_inference": workload.total("macs"), "first_layer": workload.first_layer_macs,
                 "per_node": per_node("macs")},
        "dense": {"per_inference": workload.total("dense"), "per_step": workload.total("dense_per_step"),
                  "per_node": per_node("dense")},
        "neuron_updates": {"per_inference": workload.total("neuron_updates"),
                           "driven": workload.total("neuron_updates_driven"),
                           "per_node": per_node("neuron_updates", neurons=True)},
        "spikes": {"per_inference": workload.total("spikes"), "per_node": per_node("spikes", neurons=True)},
        "sparsity": {n.name: {"activation": activation_sparsity(n), "connection": connection_sparsity(n)}
                     for n in workload.nodes if n.is_neuron or n.is_synaptic},
        "energy_j": {e.label: _estimate_json(e, ann) for e in estimates},
        "ann_equivalent_j": ann.joules,
        "spikformer_style_j": spk.joules,
        "references": {"ann_equivalent": _reference_json(ann), "spikformer_style": _reference_json(spk)},
        "claims": {e.label: comparison_claim(e, ann) for e in estimates},
    }


# --- terminal ------------------------------------------------------------------------------------------------------


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.1f}%"


def layer_table(workload: Workload) -> Table:
    """Per-node work per inference, with activation and connection sparsity."""
    t = Table(title=f"Work per inference (mean over {workload.samples} sample(s), {workload.steps} steps)")
    for col in ("node", "type", "SOPs", "MACs", "dense", "neuron upd.", "spikes", "act. sparsity", "conn. sparsity"):
        t.add_column(col, justify="left" if col in ("node", "type") else "right")
    for n in workload.nodes:
        if not (n.is_synaptic or n.is_neuron):
            continue
        syn, neu = n.is_synaptic, n.is_neuron
        t.add_row(escape(n.name), n.type, units.count(n.sops) if syn else "", units.count(n.macs) if syn else "",
                  units.count(n.dense) if syn else "", units.count(n.neuron_updates) if neu else "",
                  units.count(n.spikes) if neu else "", _pct(activation_sparsity(n)), _pct(connection_sparsity(n)))
    t.add_section()
    t.add_row("total", "", units.count(workload.total("sops")), units.count(workload.total("macs")),
              units.count(workload.total("dense")), units.count(workload.total("neuron_updates")),
              units.count(workload.total("spikes")), "", "")
    return t


def _term_cell(e: TargetEstimate, name: str) -> str:
    term = e.terms[name]
    if e.per_inference is None:
        return "-"
    if term.status == "included":
        return "incl."
    return units.joules(term.joules) if term.status == "charged" else "-"


def target_table(estimates: list[TargetEstimate]) -> Table:
    """Per target: energy per inference, its terms, cores/chips and violations (errors + warnings)."""
    t = Table(title="Energy per inference by target (- = not published, incl. = inside an all-in figure)")
    t.add_column("target")
    t.add_column("total", justify="right")
    for name in TERMS:
        t.add_column(TERM_HEADERS[name], justify="right")
    for col in ("cores", "chips", "w. bits", "violations"):
        t.add_column(col, justify="right")
    for e in estimates:
        total = units.joules(e.per_inference)
        if e.per_inference is not None and not e.complete:
            total = ">= " + total
        n_err, n_warn = len(e.errors), len(e.violations) - len(e.errors)
        viol = f"{n_err}" + (f" (+{n_warn} warn.)" if n_warn else "")
        t.add_row(escape(e.label), total, *(_term_cell(e, n) for n in TERMS),
                  "-" if e.cores is None else str(e.cores), "-" if e.chips is None else str(e.chips),
                  "-" if e.target.weight_bits is None else str(e.target.weight_bits),
                  f"[red]{viol}[/red]" if n_err else viol)
    return t


def _reference_line(r: Reference, what: str) -> str:
    parts = " + ".join(f"{units.count(c)} {k.upper()}s x {units.joules(e)}" for k, (c, e) in r.parts.items())
    variant = f" ({r.target.variant.upper()})" if r.target.variant else ""
    return escape(f"{what} on {r.target.title}{variant}: {parts} = {units.joules(r.joules)}   ({r.formula})")


def render(workload: Workload, estimates: list[TargetEstimate], console: Console,
           cmos: Target | None = None) -> None:
    """Print the per-layer table, the per-target table, the CMOS references, violations, assumptions and claims."""
    ann, spk = references(workload, cmos)
    console.print(layer_table(workload))
    if not estimates:
        return
    console.print(target_table(estimates))
    console.print(_reference_line(ann, "ANN equivalent"))
    console.print(_reference_line(spk, "Spikformer-style figure"))
    for e in estimates:
        if e.violations:
            console.print(f"[bold]{escape(e.label)}[/bold]: {len(e.errors)} violation(s), "
                          f"{len(e.violations) - len(e.errors)} warning(s)")
            for v in e.violations:
                colour = "red" if v.severity == "error" else "yellow"
                console.print(f"  [{colour}]{v.severity}[/{colour}] {escape(v.node or '(network)')}: "
                              f"{escape(v.message)}", highlight=False)
    notes = []
    if workload.weight_bits is None:
        notes.append("weights were simulated as floats; a chip stores them at its weight bits (w. bits): "
                     "quantise to those to see the accuracy on the chip")
    for e in estimates:
        for line in [*e.assumptions, *e.notes]:
            if line not in notes:
                notes.append(line)
    if notes:
        console.print("[bold]Assumptions and notes[/bold]")
        for line in notes:
            console.print(f"  - {escape(line)}", highlight=False)
    console.print("[bold]Compared with the ANN[/bold] (dynamic energy per inference)")
    for e in estimates:
        console.print(f"  {escape(comparison_claim(e, ann))}", highlight=False)
