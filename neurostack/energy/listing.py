"""`neurostack targets`: the built-in (or given) targets with their key figures and sources, as rich tables."""

from __future__ import annotations

from rich.markup import escape
from rich.table import Table

from neurostack.energy import units
from neurostack.energy.targets import BASES, CAPACITY_KEYS, ENERGY_KEYS, Figure, Target

BASIS_SHORT = {"measured": "meas.", "simulated": "sim.", "estimated": "est.", "derived": "der.", "all-in": "all-in",
               "spec": "spec"}


def figure_text(f: Figure | None) -> str:
    """A figure as "23.6 pJ (sim., M)"; "-" when not published."""
    if f is None:
        return "-"
    if isinstance(f.value, tuple):
        value = "[" + ", ".join(units.count(v) for v in f.value) + f"] {f.unit}"
    elif f.unit in ("J", "W"):
        value = units.si(float(f.value), f.unit)
    elif f.unit == "B":
        value = units.binary_bytes(int(f.value))
    else:
        value = f"{units.count(float(f.value))} {f.unit}"
    return f"{value} ({BASIS_SHORT[f.basis]}, {f.confidence})"


def neurons_text(t: Target) -> str:
    """What a chip holds: cores x neurons per core, layer-cores, or Xylo-style hidden/output neurons."""
    npc, cpc = t.limit("neurons_per_core"), t.limit("cores_per_chip")
    if npc is not None and cpc is not None:
        return f"{cpc:,} x {npc:,} = {npc * cpc:,}"
    if npc is not None:
        return f"{npc:,} per core"
    if t.limit("max_hidden_neurons") is not None:
        return f"{t.limit('max_hidden_neurons'):,} hidden + {t.limit('max_output_neurons') or '?'} out"
    if t.limit("max_layers") is not None:
        return f"{t.limit('max_layers')} layer-cores"
    if cpc is not None:
        return f"{cpc:,} cores"
    return "-"


def targets_table(targets: list[Target]) -> Table:
    """One row per target: name, energy per SOP, per neuron update, static power, capacity, weight bits, source.
    Each figure shows its basis (meas./sim./est./der./all-in/spec) and confidence (H/M/L); "-" = not published."""
    t = Table(title="Targets (figures: value (basis, confidence); - = not published)")
    for col in ("name", "E / SOP", "E / neuron update", "static power", "neurons", "weight bits", "main source"):
        t.add_column(col, overflow="fold")
    for target in targets:
        variants = f" [{', '.join(target.variants)}]" if target.variants else ""
        t.add_row(escape(target.label + variants), figure_text(target.energy.get("sop")),
                  figure_text(target.energy.get("neuron_update")), figure_text(target.energy.get("static_power")),
                  neurons_text(target), "-" if target.weight_bits is None else str(target.weight_bits),
                  escape(target.main_source))
    return t


def target_details(target: Target) -> Table:
    """Every figure of one target with its basis, confidence, source and note."""
    t = Table(title=escape(f"{target.label}: {target.title}. {target.description}"), show_lines=False)
    for col in ("figure", "value", "basis", "conf.", "source", "note"):
        t.add_column(col, overflow="fold")
    sections = (("energy", target.energy, ENERGY_KEYS), ("capacity", target.capacity, CAPACITY_KEYS),
                ("published", target.published, {}))
    for section, figures, known in sections:
        for key, f in figures.items():
            value = figure_text(f).rsplit(" (", 1)[0]
            what = known.get(key, ("", ""))[1]
            t.add_row(escape(f"{section}.{key}"), escape(value), f.basis, f.confidence, escape(f.source),
                      escape("; ".join(x for x in (what, f.note) if x)))
    if target.support is not None:
        s = target.support
        kinds = [f"neurons: {', '.join(s.neuron_types)}" if s.neuron_types is not None else "neurons: any",
                 f"approximately: {', '.join(s.approximate_neuron_types)}" if s.approximate_neuron_types else "",
                 f"layers: {', '.join(s.layer_types)}" if s.layer_types is not None else "layers: any"]
        t.add_row("support", escape("; ".join(k for k in kinds if k)), "", s.confidence, escape(s.source),
                  escape("; ".join(x for x in (s.approximation, s.note) if x)))
    for note in target.notes:
        t.add_row("note", "", "", "", "", escape(note))
    t.caption = "basis: " + "; ".join(f"{k} = {v}" for k, v in BASES.items())
    return t
