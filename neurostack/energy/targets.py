"""Neuromorphic targets: one chip's published energy figures and capacity limits, read from a TOML file.

The built-in targets are `targets/*.toml` at the repository root (shipped inside the wheel as
`neurostack/targets/`); a user passes their own file as a path. `targets/README.md` documents the format; in short:

    [target]                       name (required), title, description, main_source, notes,
                                   update_model = "clock-driven" | "event-driven", default_variant
    [energy.<term>]                sop, mac, neuron_update, neuron_update_idle, spike_routed (joules),
                                   static_power (watts)
    [capacity.<limit>]             neurons_per_core, cores_per_chip, max_fan_in, weight_bits, ... (see CAPACITY_KEYS)
    [support]                      neuron_types, approximate_neuron_types (+ approximation), layer_types (NIR type
                                   names), linear_as_conv, source, confidence, note
    [published.<name>]             figures kept for reference and never used in an estimate (e.g. a whole-task energy)
    [variants.<name>]              title, description and [variants.<name>.energy/capacity] overriding the base figures

Every figure is a table `{value, unit, basis, confidence, source, note}`. A figure that is not published is left
out, never written as 0 (the loader rejects 0). Energies are stored in joules, power in watts, memory in bytes:
`unit` may carry a prefix ("pJ", "mW", "KiB") and the loader converts it.
"""

from __future__ import annotations

import difflib
import math
from decimal import Decimal
import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from neurostack.energy.workload import NEURON_TYPES, SYNAPTIC_TYPES

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib  # type: ignore[no-redef]
from neurostack.errors import NeurostackError

# --- the vocabulary of a target file -------------------------------------------------------------------------------

ENERGY_KEYS: dict[str, tuple[str, str]] = {
    "sop": ("J", "per synaptic operation (one event reaching one non-zero synapse)"),
    "mac": ("J", "per multiply-accumulate of a real-valued input"),
    "neuron_update": ("J", "per neuron update (per active update where the chip tells active from idle)"),
    "neuron_update_idle": ("J", "per update of a neuron that received no input (clock-driven chips)"),
    "spike_routed": ("J", "per spike sent through the chip's routing network"),
    "static_power": ("W", "static (idle) power of one chip"),
}

CAPACITY_KEYS: dict[str, tuple[str, str]] = {
    "neurons_per_core": ("neurons", "neurons one core holds"),
    "cores_per_chip": ("cores", "cores on one chip"),
    "synapses_per_chip": ("synapses", "synapses one chip stores"),
    "max_fan_in": ("synapses", "most non-zero synapses into one neuron"),
    "max_fan_out": ("synapses", "most synapses one neuron's spike can reach"),
    "synapse_memory_per_core": ("B", "storage of one core for explicit synapses (convolutions expanded)"),
    "memory_per_chip": ("B", "on-chip memory for stored weights (kernels stored once)"),
    "weight_bits": ("bits", "weight precision"),
    "state_bits": ("bits", "membrane / synaptic state precision"),
    "max_layers": ("layers", "most layers a chip runs (one per core)"),
    "max_inputs": ("channels", "most input channels"),
    "max_hidden_neurons": ("neurons", "most hidden neurons (all hidden layers together)"),
    "max_output_neurons": ("neurons", "most output neurons"),
    "max_channels": ("channels", "most channels of one convolutional layer"),
    "max_destinations": ("layers", "most layers one layer's output can feed"),
    "max_input_size": ("pixels", "largest input (height, width)"),
    "max_kernel_size": ("pixels", "largest convolution kernel (height, width)"),
    "neuron_memory_per_layer": ("entries", "neuron state memory of each layer-core, in order"),
    "kernel_memory_per_layer": ("entries", "kernel memory of each layer-core, in order"),
}
LIST_CAPACITY_KEYS = ("max_input_size", "max_kernel_size", "neuron_memory_per_layer", "kernel_memory_per_layer")

BASES: dict[str, str] = {
    "measured": "measured on silicon",
    "simulated": "pre-silicon circuit simulation",
    "estimated": "a published estimate from process data or a model, not a chip measurement",
    "derived": "computed from other published numbers (the note says how)",
    "all-in": "total chip power divided by an event rate at one operating point: includes every other cost",
    "spec": "a design limit from a paper, datasheet or the vendor's software",
}
CONFIDENCES: dict[str, str] = {"H": "primary source", "M": "careful secondary source", "L": "single weak source"}
UPDATE_MODELS: dict[str, str] = {
    "clock-driven": "every neuron is updated every time step",
    "event-driven": "a neuron is updated only in steps where it receives input",
}

UNIT_SCALES: dict[str, dict[str, float]] = {
    "J": {"J": 1.0, "mJ": 1e-3, "uJ": 1e-6, "µJ": 1e-6, "nJ": 1e-9, "pJ": 1e-12, "fJ": 1e-15},
    "W": {"W": 1.0, "mW": 1e-3, "uW": 1e-6, "µW": 1e-6, "nW": 1e-9},
    "B": {"B": 1, "KiB": 1024, "MiB": 1024**2, "GiB": 1024**3, "kB": 1000, "MB": 1000**2},
}

FIGURE_KEYS = ("value", "unit", "basis", "confidence", "source", "note")
TARGET_KEYS = ("name", "title", "description", "main_source", "notes", "update_model", "default_variant")
SUPPORT_KEYS = ("neuron_types", "approximate_neuron_types", "approximation", "layer_types",
                "linear_as_conv", "source", "confidence", "note")
VARIANT_KEYS = ("title", "description", "energy", "capacity")
TOP_KEYS = ("schema", "target", "energy", "capacity", "support", "published", "variants")
KNOWN_NEURON_TYPES = (*NEURON_TYPES, "Threshold")
_NAME = re.compile(r"^[a-z0-9][a-z0-9_.-]*$")


# --- what a loaded target is ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Figure:
    """One published number. `value` is in the base unit `unit` (J, W, B or a count such as "neurons");
    list-valued limits (per-layer memories, sizes) are tuples. `given` is the number as written in the file."""

    value: float | int | tuple[float, ...] | tuple[int, ...]
    unit: str
    basis: str
    confidence: str
    source: str
    note: str = ""
    given: str = ""


@dataclass(frozen=True)
class Support:
    """Which NIR node types a chip runs. None means not restricted (or not known): nothing is checked.
    `approximate_neuron_types` run only approximately (e.g. an exponential leak done as a linear one)."""

    neuron_types: tuple[str, ...] | None
    approximate_neuron_types: tuple[str, ...]
    layer_types: tuple[str, ...] | None
    source: str
    confidence: str
    note: str = ""
    approximation: str = ""  # how the approximate types are approximated
    linear_as_conv: bool = False  # Affine/Linear layers after a (C, H, W) map run as a Conv2d covering it (sinabs)


@dataclass(frozen=True)
class Target:
    """A chip (or the 45 nm CMOS reference): its energy figures, limits and supported node types.

    energy: {term: Figure} with terms from ENERGY_KEYS (J per operation, W for static_power);
    capacity: {limit: Figure} with limits from CAPACITY_KEYS; published: reference figures never used in estimates.
    """

    name: str
    title: str
    description: str = ""
    main_source: str = ""
    notes: tuple[str, ...] = ()
    update_model: str | None = None
    energy: dict[str, Figure] = field(default_factory=dict)
    capacity: dict[str, Figure] = field(default_factory=dict)
    support: Support | None = None
    published: dict[str, Figure] = field(default_factory=dict)
    variant: str | None = None
    variants: tuple[str, ...] = ()
    default_variant: str | None = None
    path: Path | None = None

    @property
    def label(self) -> str:
        """`name`, or `name:variant` for a variant other than the default: the key used in reports."""
        if self.variant is None or self.variant == self.default_variant:
            return self.name
        return f"{self.name}:{self.variant}"

    def e(self, term: str) -> float | None:
        """An energy figure's value in joules (watts for static_power), None when not published."""
        f = self.energy.get(term)
        return None if f is None else float(f.value)  # type: ignore[arg-type]

    def limit(self, key: str) -> Any:
        """A capacity figure's value (an int, or a tuple for per-layer limits), None when not published."""
        f = self.capacity.get(key)
        if f is None:
            return None
        return tuple(int(v) for v in f.value) if isinstance(f.value, tuple) else int(f.value)

    @property
    def all_in(self) -> bool:
        """True when the per-SOP figure already includes everything (neurons, routing, static power)."""
        sop = self.energy.get("sop")
        return sop is not None and sop.basis == "all-in"

    @property
    def weight_bits(self) -> int | None:
        """Weight precision in bits (what `--quantize` rounds to), None when not published."""
        return self.limit("weight_bits")

    @property
    def has_energy(self) -> bool:
        return bool(self.energy)


# --- loading -------------------------------------------------------------------------------------------------------


def targets_dir() -> Path:
    """The folder of built-in target files: `neurostack/targets` in an installed wheel, else `targets/` at the
    root of the source checkout (an editable install or a plain checkout)."""
    package = Path(__file__).resolve().parents[1]
    for candidate in (package / "targets", package.parent / "targets"):
        if candidate.is_dir() and any(candidate.glob("*.toml")):
            return candidate
    raise NeurostackError(f"no built-in target files found in {package / 'targets'} or {package.parent / 'targets'}")


def builtin_target_names() -> list[str]:
    """Names of the built-in targets, sorted (a variant is chosen as `name:variant`, e.g. `cmos45nm:int8`)."""
    return sorted(p.stem for p in targets_dir().glob("*.toml"))


def list_targets() -> list[Target]:
    """Every built-in target in its default variant, sorted by name."""
    return [load_target(name) for name in builtin_target_names()]


def load_targets(spec: str) -> list[Target]:
    """What `--target` names: "all" (every built-in target), a name, a path, or a comma-separated list of those."""
    if spec.strip() == "all":
        return list_targets()
    parts = [p.strip() for p in spec.split(",") if p.strip()]
    if not parts:
        raise NeurostackError("--target is empty; give a target name, a .toml file or 'all'")
    return [load_target(p) for p in parts]


def load_target(name_or_path: str | Path) -> Target:
    """A built-in target by name (`loihi`, `cmos45nm:int8`) or a target file by path (`my_chip.toml[:variant]`)."""
    text = str(name_or_path)
    variant = None
    head, sep, tail = text.rpartition(":")
    if sep and tail and "/" not in tail and "\\" not in tail and (head.endswith(".toml") or "/" not in head):
        text, variant = head, tail
    if text.endswith(".toml") or "/" in text or "\\" in text or Path(text).suffix:
        path = Path(text).expanduser()
        if not path.is_file():
            raise NeurostackError(f"target file not found: {path}")
        return _load_file(path, variant)
    known = builtin_target_names()
    if text not in known:
        hint = difflib.get_close_matches(text, known, n=1)
        did = f" (did you mean '{hint[0]}'?)" if hint else ""
        raise NeurostackError(f"unknown target '{text}'{did}; known targets: {', '.join(known)}; "
                              "or give the path of a .toml target file")
    return _load_file(targets_dir() / f"{text}.toml", variant)


def _load_file(path: Path, variant: str | None) -> Target:
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise NeurostackError(f"{path}: not valid TOML: {exc}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise NeurostackError(f"{path}: cannot read target file: {exc}") from None
    return parse_target(raw, path, variant)


# --- validation ----------------------------------------------------------------------------------------------------


def _fail(where: str, message: str) -> NeurostackError:
    """'file.toml: energy.sop has no source' / 'file.toml: energy.sop: value must be > 0, got -1'."""
    joint = " " if message.startswith(("has ", "must ")) else ": "
    return NeurostackError(f"{where}{joint}{message}")


def _check_keys(where: str, table: dict, allowed: tuple[str, ...], what: str) -> None:
    for key in table:
        if key not in allowed:
            hint = difflib.get_close_matches(key, allowed, n=1)
            did = f" (did you mean '{hint[0]}'?)" if hint else ""
            raise _fail(where, f"unknown {what} '{key}'{did}; known: {', '.join(allowed)}")


def _table(where: str, value: Any, what: str = "a table") -> dict:
    if not isinstance(value, dict):
        raise _fail(where, f"must be {what}, got {type(value).__name__} {value!r}")
    return value


def _text(where: str, value: Any, key: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise _fail(where, f"{key} must be a non-empty string, got {value!r}")
    return value.strip()


def _number(where: str, value: Any, key: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise _fail(where, f"{key} must be a number, got {type(value).__name__} {value!r}")
    if not math.isfinite(value):
        raise _fail(where, f"{key} must be finite, got {value!r}")
    if value <= 0:
        raise _fail(where, f"{key} must be > 0, got {value!r} (leave a figure out when it is not published; never 0)")
    return float(value)


def _figure(where: str, raw: Any, unit_family: str | None, *, is_list: bool = False, whole: bool = False) -> Figure:
    """One figure table. unit_family: "J", "W", "B" (prefixes converted), a count word (must match), or None (free)."""
    raw = _table(where, raw, "a table {value, unit, basis, confidence, source}")
    _check_keys(where, raw, FIGURE_KEYS, "field")
    if "value" not in raw:
        raise _fail(where, "has no value")
    if "source" not in raw:
        raise _fail(where, "has a value but no source (every number needs one)")
    for key in ("unit", "basis", "confidence"):
        if key not in raw:
            raise _fail(where, f"has no {key}")
    unit = _text(where, raw["unit"], "unit")
    basis = _text(where, raw["basis"], "basis")
    confidence = _text(where, raw["confidence"], "confidence")
    source = _text(where, raw["source"], "source")
    note = _text(where, raw["note"], "note") if "note" in raw else ""
    if basis not in BASES:
        raise _fail(where, f"basis '{basis}' is not one of {', '.join(BASES)}")
    if confidence not in CONFIDENCES:
        raise _fail(where, f"confidence '{confidence}' is not one of {', '.join(CONFIDENCES)}")
    scale, base_unit = 1.0, unit
    if unit_family in UNIT_SCALES:
        if unit not in UNIT_SCALES[unit_family]:
            raise _fail(where, f"unit '{unit}' is not one of {', '.join(UNIT_SCALES[unit_family])}")
        scale, base_unit = UNIT_SCALES[unit_family][unit], unit_family
    elif unit_family is not None and unit != unit_family:
        raise _fail(where, f"unit must be \"{unit_family}\", got \"{unit}\"")
    value = raw["value"]
    if is_list:
        if not isinstance(value, list) or not value:
            raise _fail(where, f"value must be a non-empty list of numbers, got {value!r}")
        values = tuple(_scaled(_number(where, v, "each value"), scale) for v in value)
    else:
        values = (_scaled(_number(where, value, "value"), scale),)
    if whole and any(abs(v - round(v)) > 1e-9 for v in values):
        raise _fail(where, f"value must be a whole number of {base_unit}, got {value!r} {unit}")
    stored = tuple(int(round(v)) if whole else v for v in values)
    return Figure(value=stored if is_list else stored[0], unit=base_unit, basis=basis, confidence=confidence,
                  source=source, note=note, given=f"{value} {unit}")


def _scaled(value: float, scale: float) -> float:
    """value * scale rounded once (so 1.7 pJ is exactly the float 1.7e-12)."""
    return float(Decimal(repr(value)) * Decimal(repr(scale)))


def _energy(where: str, raw: Any) -> dict[str, Figure]:
    raw = _table(where, raw)
    _check_keys(where, raw, tuple(ENERGY_KEYS), "energy term")
    figures = {k: _figure(f"{where}.{k}", v, ENERGY_KEYS[k][0]) for k, v in raw.items()}
    for key, fig in figures.items():
        if fig.basis == "all-in" and key != "sop":
            raise _fail(f"{where}.{key}", "only energy.sop can be all-in")
    return figures


def _capacity(where: str, raw: Any) -> dict[str, Figure]:
    raw = _table(where, raw)
    _check_keys(where, raw, tuple(CAPACITY_KEYS), "capacity limit")
    figures = {}
    for key, value in raw.items():
        fig = _figure(f"{where}.{key}", value, CAPACITY_KEYS[key][0], is_list=key in LIST_CAPACITY_KEYS, whole=True)
        if fig.basis == "all-in":
            raise _fail(f"{where}.{key}", "a capacity limit cannot be all-in")
        figures[key] = fig
    for key in ("max_input_size", "max_kernel_size"):
        if key in figures and len(figures[key].value) != 2:  # type: ignore[arg-type]
            raise _fail(f"{where}.{key}", "value must be [height, width]")
    mem = [figures.get(k) for k in ("neuron_memory_per_layer", "kernel_memory_per_layer")]
    if all(mem) and len(mem[0].value) != len(mem[1].value):  # type: ignore[union-attr, arg-type]
        raise _fail(where, "neuron_memory_per_layer and kernel_memory_per_layer must list the same number of cores")
    return figures


def _type_list(where: str, value: Any, key: str, known: tuple[str, ...]) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise _fail(where, f"{key} must be a list of NIR type names, got {value!r}")
    for v in value:
        if v not in known:
            raise _fail(where, f"{key}: '{v}' is not a NIR type neurostack knows; known: {', '.join(known)}")
    return tuple(value)


def _flag(where: str, value: Any, key: str) -> bool:
    if not isinstance(value, bool):
        raise _fail(where, f"{key} must be true or false, got {value!r}")
    return value


def _support(where: str, raw: Any) -> Support:
    raw = _table(where, raw)
    _check_keys(where, raw, SUPPORT_KEYS, "field")
    for key in ("source", "confidence"):
        if key not in raw:
            raise _fail(where, f"has no {key}")
    confidence = _text(where, raw["confidence"], "confidence")
    if confidence not in CONFIDENCES:
        raise _fail(where, f"confidence '{confidence}' is not one of {', '.join(CONFIDENCES)}")
    neuron = (_type_list(where, raw["neuron_types"], "neuron_types", KNOWN_NEURON_TYPES)
              if "neuron_types" in raw else None)
    approx = (_type_list(where, raw["approximate_neuron_types"], "approximate_neuron_types", KNOWN_NEURON_TYPES)
              if "approximate_neuron_types" in raw else ())
    if approx and neuron is None:
        raise _fail(where, "approximate_neuron_types needs neuron_types (the exactly supported ones)")
    if approx and "approximation" not in raw:
        raise _fail(where, "approximate_neuron_types needs approximation = \"how they are approximated\"")
    layer = _type_list(where, raw["layer_types"], "layer_types", SYNAPTIC_TYPES) if "layer_types" in raw else None
    return Support(neuron_types=neuron, approximate_neuron_types=approx, layer_types=layer,
                   source=_text(where, raw["source"], "source"), confidence=confidence,
                   note=_text(where, raw["note"], "note") if "note" in raw else "",
                   approximation=_text(where, raw["approximation"], "approximation") if "approximation" in raw else "",
                   linear_as_conv=_flag(where, raw.get("linear_as_conv", False), "linear_as_conv"))


def _check_energy_rules(where: str, energy: dict[str, Figure], update_model: str | None) -> None:
    if "sop" in energy and energy["sop"].basis == "all-in" and len(energy) > 1:
        others = ", ".join(k for k in energy if k != "sop")
        raise _fail(where, f"energy.sop is all-in (it already includes neuron, routing and static energy), so the "
                           f"file cannot also give {others}; move them under [published]")
    if ("neuron_update" in energy or "neuron_update_idle" in energy) and update_model is None:
        raise _fail(where, "a neuron update energy needs target.update_model = \"clock-driven\" or \"event-driven\"")
    if "neuron_update_idle" in energy and ("neuron_update" not in energy or update_model != "clock-driven"):
        raise _fail(where, "energy.neuron_update_idle needs energy.neuron_update and update_model = \"clock-driven\"")


def parse_target(raw: dict, path: Path | str = "<target>", variant: str | None = None) -> Target:
    """Validate a parsed target file and build the Target (in `variant`, or the file's default variant)."""
    where = str(path)
    _check_keys(where, raw, TOP_KEYS, "top-level key")
    if "schema" in raw and raw["schema"] != 1:
        raise _fail(where, f"schema {raw['schema']!r} is not supported (this neurostack reads schema 1)")
    if "target" not in raw:
        raise _fail(where, "has no [target] table (with at least name = \"...\")")
    head = _table(f"{where}: target", raw["target"])
    _check_keys(f"{where}: target", head, TARGET_KEYS, "key")
    if "name" not in head:
        raise _fail(where, "target.name is missing")
    name = _text(where, head["name"], "target.name")
    if not _NAME.match(name):
        raise _fail(where, f"target.name '{name}' must be lower-case letters, digits, '_', '-' or '.'")
    update_model = head.get("update_model")
    if update_model is not None and update_model not in UPDATE_MODELS:
        raise _fail(where, f"target.update_model '{update_model}' is not one of {', '.join(UPDATE_MODELS)}")
    notes = head.get("notes", [])
    if not isinstance(notes, list) or not all(isinstance(n, str) for n in notes):
        raise _fail(where, f"target.notes must be a list of strings, got {notes!r}")

    energy = _energy(f"{where}: energy", raw.get("energy", {}))
    capacity = _capacity(f"{where}: capacity", raw.get("capacity", {}))
    support = _support(f"{where}: support", raw["support"]) if "support" in raw else None
    published_raw = _table(f"{where}: published", raw.get("published", {}))
    published = {k: _figure(f"{where}: published.{k}", v, None) for k, v in published_raw.items()}
    _check_energy_rules(where, energy, update_model)

    variants_raw = _table(f"{where}: variants", raw.get("variants", {}))
    default_variant = head.get("default_variant")
    if default_variant is not None:
        default_variant = _text(where, default_variant, "target.default_variant")
        if default_variant in variants_raw:
            raise _fail(where, f"default_variant '{default_variant}' is the base figures; do not repeat it "
                               "under [variants]")
    elif variants_raw:
        raise _fail(where, "a file with [variants] needs target.default_variant (the name of the base figures)")
    variant_names = ((default_variant,) if default_variant else ()) + tuple(variants_raw)

    title = _text(where, head["title"], "target.title") if "title" in head else name
    description = _text(where, head["description"], "target.description") if "description" in head else ""
    main_source = (_text(where, head["main_source"], "target.main_source") if "main_source" in head
                   else next((f.source for f in energy.values()), ""))
    target = Target(name=name, title=title, description=description, main_source=main_source, notes=tuple(notes),
                    update_model=update_model, energy=energy, capacity=capacity, support=support,
                    published=published, variant=default_variant, variants=variant_names,
                    default_variant=default_variant, path=path if isinstance(path, Path) else None)
    for vname, vraw in variants_raw.items():  # validate every variant, not only the one asked for
        _variant(target, vname, vraw, where)
    if variant is None or variant == default_variant:
        return target
    if variant not in variants_raw:
        known = ", ".join(variant_names) if variant_names else "none"
        raise NeurostackError(f"target '{name}' has no variant '{variant}'; its variants: {known}")
    return _variant(target, variant, variants_raw[variant], where)


def _variant(base: Target, vname: str, vraw: Any, where: str) -> Target:
    vwhere = f"{where}: variants.{vname}"
    vraw = _table(vwhere, vraw)
    _check_keys(vwhere, vraw, VARIANT_KEYS, "key")
    energy = {**base.energy, **_energy(f"{vwhere}.energy", vraw.get("energy", {}))}
    capacity = {**base.capacity, **_capacity(f"{vwhere}.capacity", vraw.get("capacity", {}))}
    _check_energy_rules(vwhere, energy, base.update_model)
    title = _text(vwhere, vraw["title"], "title") if "title" in vraw else f"{base.title} ({vname})"
    description = _text(vwhere, vraw["description"], "description") if "description" in vraw else base.description
    return replace(base, title=title, description=description, energy=energy, capacity=capacity, variant=vname)
