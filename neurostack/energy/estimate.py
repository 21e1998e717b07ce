"""Energy per inference of a Workload on a Target, the ANN and Spikformer-style references, and the claim.

Energy terms (joules per inference; counts are means per inference from `Workload`):

  sop            SOPs x E_sop
  mac            MACs (non-zero real-valued inputs x non-zero weights) x E_mac. A chip with no per-MAC figure
                 (neuromorphic chips take spikes) has them charged at E_sop, as if each non-zero input value were
                 one spike: a lower bound, listed under `assumptions`. With neither figure the term is unavailable.
  neuron_update  clock-driven target: every neuron every step (Workload.neuron_updates); where the target gives an
                 idle figure, driven updates x E_active + the other updates x E_idle. Event-driven target: only the
                 updates whose input was non-zero (Workload.neuron_updates_driven). The term's note says which.
  spike_routed   spikes emitted x E_spike (input events from outside the chip are not charged).
  static         static power x chips x steps x dt: assumes the chip runs in real time (one step per dt);
                 unavailable when the workload has no dt.

A term whose figure is not published is "unavailable" (never charged as 0); the total is then the sum of the
other terms, a lower bound, and `complete` is False. A target with no energy figure at all has total None
(it can still be checked for capacity). An all-in per-SOP figure (TrueNorth) already includes neuron, routing
and static energy: those terms are "included", not added. Bias additions are not charged (counted apart).

References on a CMOS target (`cmos45nm`, FP32 by default):
  ann_equivalent    dense connections of one step x ann_steps x E_MAC (pooling additions x E_AC): the same network
                    run as an ANN, every connection every step it runs.
  spikformer_figure E_MAC x MACs of the real-valued (first) layer + E_AC x SOPs, the figure papers report
                    (Zhou et al., "Spikformer", ICLR 2023).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from neurostack.energy import units
from neurostack.energy.capacity import POOL_TYPES, Placement, Violation, place
from neurostack.energy.targets import Target
from neurostack.energy.workload import Workload
from neurostack.errors import NeurostackError

TERMS = ("sop", "mac", "neuron_update", "spike_routed", "static")


@dataclass
class Term:
    """One energy term. status: "charged" (joules known), "unavailable" (no published figure) or "included"
    (inside an all-in figure). count: operations per inference (for static: chip-seconds); energy_per_op:
    J per operation (W per chip for static), the effective mean when two figures are mixed."""

    name: str
    status: str
    count: float
    energy_per_op: float | None
    joules: float | None
    note: str = ""


@dataclass
class TargetEstimate:
    """Energy per inference on one target (joules), its terms, and the capacity check."""

    target: Target
    terms: dict[str, Term]
    per_inference: float | None
    complete: bool
    placement: Placement
    assumptions: list[str] = field(default_factory=list)

    @property
    def label(self) -> str:
        return self.target.label

    @property
    def cores(self) -> int | None:
        return self.placement.cores

    @property
    def chips(self) -> int | None:
        return self.placement.chips

    @property
    def violations(self) -> list[Violation]:
        return self.placement.violations

    @property
    def errors(self) -> list[Violation]:
        return [v for v in self.violations if v.severity == "error"]

    @property
    def notes(self) -> list[str]:
        return self.placement.notes

    @property
    def unavailable(self) -> list[str]:
        return [t.name for t in self.terms.values() if t.status == "unavailable"]

    @property
    def dynamic(self) -> float | None:
        """Joules per inference without the static term (what the ANN references count); None when no
        per-operation figure was used. For an all-in target static energy is inside it."""
        charged = [t for n, t in self.terms.items() if n != "static" and t.status == "charged"]
        if not any(t.energy_per_op is not None for t in charged):
            return None
        return float(sum(t.joules for t in charged if t.joules is not None))

    @property
    def dynamic_unavailable(self) -> list[str]:
        return [n for n in self.unavailable if n != "static"]


@dataclass
class Reference:
    """A CMOS reference energy (joules per inference) and the numbers behind it: parts[name] = (count, J per op)."""

    name: str
    target: Target
    joules: float
    parts: dict[str, tuple[float, float]]
    formula: str


def _charged(name: str, count: float, e: float, note: str = "") -> Term:
    return Term(name, "charged", count, e, count * e, note)


def _missing(name: str, count: float, label: str, what: str) -> Term:
    if count == 0:
        return Term(name, "charged", 0.0, None, 0.0, "no operations")
    return Term(name, "unavailable", count, None, None, f"{label} publishes no {what} figure")


def _neuron_term(w: Workload, t: Target) -> Term:
    all_updates, driven = w.total("neuron_updates"), w.total("neuron_updates_driven")
    e_active, e_idle = t.e("neuron_update"), t.e("neuron_update_idle")
    if t.update_model == "event-driven":
        if e_active is None:
            return _missing("neuron_update", driven, t.label, "per-neuron-update")
        return _charged("neuron_update", driven, e_active, "event-driven: only neurons whose input was non-zero")
    if e_active is None:
        return _missing("neuron_update", all_updates, t.label, "per-neuron-update")
    if e_idle is None:
        return _charged("neuron_update", all_updates, e_active, "clock-driven: every neuron every step")
    idle = max(all_updates - driven, 0.0)
    joules = driven * e_active + idle * e_idle
    return Term("neuron_update", "charged", all_updates, joules / all_updates if all_updates else e_active, joules,
                f"clock-driven: {units.count(driven)} active x {units.joules(e_active)} + "
                f"{units.count(idle)} idle x {units.joules(e_idle)}")


def _static_term(w: Workload, t: Target, chips: int | None, assumptions: list[str]) -> Term:
    power = t.e("static_power")
    if power is None:
        return Term("static", "unavailable", 0.0, None, None, f"{t.label} publishes no static power figure")
    if w.dt is None:
        return Term("static", "unavailable", 0.0, power, None, "the workload has no dt: inference duration unknown")
    n_chips = chips if chips is not None else 1
    if chips is None:
        assumptions.append(f"static power on {t.label} charged for 1 chip (chips needed not known)")
    seconds = w.steps * w.dt
    assumptions.append(f"static power on {t.label} assumes real time: {w.steps} steps x {w.dt:g} s = "
                       f"{seconds:g} s per inference")
    return _charged("static", n_chips * seconds, power,
                    f"{units.si(power, 'W')} x {n_chips} chip(s) x {seconds:g} s")


def estimate(workload: Workload, target: Target) -> TargetEstimate:
    """Energy per inference (joules) on `target`, split by term, with cores/chips needed and capacity violations."""
    placement = place(workload, target)
    assumptions: list[str] = []
    sops, macs = workload.total("sops"), workload.total("macs")
    spikes = workload.total("spikes")
    e_sop, e_mac = target.e("sop"), target.e("mac")
    terms: dict[str, Term] = {}

    terms["sop"] = _charged("sop", sops, e_sop) if e_sop is not None else _missing("sop", sops, target.label, "per-SOP")
    if e_mac is not None:
        terms["mac"] = _charged("mac", macs, e_mac)
    elif e_sop is not None and macs > 0:
        where = ", ".join(n.name for n in workload.nodes if n.macs > 0)
        terms["mac"] = _charged("mac", macs, e_sop, "charged at the per-SOP energy (no per-MAC figure)")
        assumptions.append(f"{units.count(macs)} MACs of real-valued input ({where}) have no per-MAC figure on "
                           f"{target.label}: charged at its per-SOP energy {units.joules(e_sop)}, as if each "
                           "non-zero input value were one spike (a lower bound)")
    else:
        terms["mac"] = _missing("mac", macs, target.label, "per-MAC or per-SOP")

    if target.all_in:
        note = f"included in the all-in per-SOP figure ({units.joules(e_sop)})"
        terms["neuron_update"] = Term("neuron_update", "included", workload.total("neuron_updates"), None, None, note)
        terms["spike_routed"] = Term("spike_routed", "included", spikes, None, None, note)
        terms["static"] = Term("static", "included", 0.0, None, None, note)
    else:
        terms["neuron_update"] = _neuron_term(workload, target)
        e_spike = target.e("spike_routed")
        terms["spike_routed"] = (_charged("spike_routed", spikes, e_spike) if e_spike is not None
                                 else _missing("spike_routed", spikes, target.label, "per-spike routing"))
        terms["static"] = _static_term(workload, target, placement.chips, assumptions)

    if not target.has_energy:
        return TargetEstimate(target, terms, None, False, placement, assumptions)
    charged = [t for t in terms.values() if t.status == "charged"]
    applied = any(t.energy_per_op is not None for t in charged)  # some published figure was used
    total = float(sum(t.joules for t in charged if t.joules is not None)) if applied else None
    complete = all(t.status != "unavailable" for t in terms.values())
    return TargetEstimate(target, terms, total, complete, placement, assumptions)


# --- CMOS references -----------------------------------------------------------------------------------------------


def _need(cmos: Target, term: str) -> float:
    e = cmos.e(term)
    if e is None:
        raise NeurostackError(f"target '{cmos.label}' has no energy.{term} figure; the ANN references need a CMOS "
                              "target with sop (accumulate) and mac figures, such as cmos45nm")
    return e


def ann_equivalent(workload: Workload, cmos: Target) -> Reference:
    """Joules per inference of the same network as an ANN on `cmos`: every connection (dense, zero weights included)
    every step the ANN runs (ann_steps) x E_MAC; pooling layers' additions x E_AC."""
    e_mac = _need(cmos, "mac")
    macs = sum(n.dense_per_step for n in workload.synaptic if n.type not in POOL_TYPES) * workload.ann_steps
    adds = sum(n.dense_per_step for n in workload.synaptic if n.type in POOL_TYPES) * workload.ann_steps
    parts = {"mac": (macs, e_mac)}
    joules = macs * e_mac
    if adds:
        e_ac = _need(cmos, "sop")
        parts["add"] = (adds, e_ac)
        joules += adds * e_ac
    return Reference("ann_equivalent", cmos, joules, parts,
                     f"dense connections per step x {workload.ann_steps} ANN step(s) x E_MAC"
                     + (" + pooling additions x E_AC" if adds else ""))


def spikformer_figure(workload: Workload, cmos: Target) -> Reference:
    """The figure papers report (Spikformer, Zhou et al. ICLR 2023): E_MAC x MACs of the real-valued first layer
    + E_AC x SOPs, in joules per inference on `cmos`."""
    e_mac, e_ac = _need(cmos, "mac"), _need(cmos, "sop")
    macs, sops = workload.first_layer_macs, workload.total("sops")
    return Reference("spikformer_style", cmos, macs * e_mac + sops * e_ac,
                     {"mac": (macs, e_mac), "sop": (sops, e_ac)}, "E_MAC x first-layer MACs + E_AC x SOPs")


def comparison_claim(snn: TargetEstimate, ann: Reference) -> str:
    """One sentence comparing the SNN on a target with the ANN on CMOS, with the numbers behind it.

    Compares dynamic energy (sop, mac, neuron_update, spike_routed terms), like for like with the ANN reference,
    which has no static term; static energy is stated after it. A figure missing terms is a lower bound: it can
    only support "at least N x more".
    """
    label, ref = snn.label, f"the ANN on {ann.target.title}"
    if ann.target.variant:
        ref += f" ({ann.target.variant.upper()})"
    tail = ""
    static = snn.terms.get("static")
    if snn.target.all_in:
        tail += f"; {label}'s all-in figure includes static power"
    elif static is not None and static.status == "charged" and static.joules:
        tail += f"; static power adds {units.joules(static.joules)} at real time"
    if snn.errors:
        tail += f"; but the network does not fit {label} as it is ({len(snn.errors)} violation(s))"
    e_snn, e_ann = snn.dynamic, ann.joules
    if e_snn is None:
        return f"SNN on {label}: no per-operation energy is published, so no energy comparison{tail}"
    missing = ", ".join(snn.dynamic_unavailable)
    if not missing:
        numbers = f"{units.joules(e_snn)} vs {units.joules(e_ann)} per inference"
        if e_snn <= 0 or e_ann <= 0:
            return f"SNN on {label}: {units.joules(e_snn)} vs {units.joules(e_ann)} for {ref} per inference{tail}"
        if e_snn <= e_ann:
            return f"SNN on {label} uses {units.ratio(e_ann / e_snn)} less energy than {ref} ({numbers}){tail}"
        return f"SNN on {label} uses {units.ratio(e_snn / e_ann)} more energy than {ref} ({numbers}){tail}"
    if e_ann > 0 and e_snn > e_ann:
        return (f"SNN on {label} uses at least {units.ratio(e_snn / e_ann)} more energy than {ref} "
                f"({units.joules(e_snn)} or more vs {units.joules(e_ann)} per inference; "
                f"no figure for {missing}){tail}")
    return (f"SNN on {label}: at least {units.joules(e_snn)} per inference (no figure for {missing}) vs "
            f"{units.joules(e_ann)} for {ref}: too incomplete to claim a saving{tail}")


def estimate_all(workload: Workload, targets: list[Target]) -> list[TargetEstimate]:
    """`estimate` for each target, in order."""
    return [estimate(workload, t) for t in targets]
