"""How each producer discretises NIR's continuous-time neurons: one table, all tools side by side.

A NIR file stores ODE parameters (time constants in seconds, r, w_in, thresholds) but no time step, no
discretisation scheme and no reset mode. To reproduce a producer's spikes exactly, the simulator has to
discretise the file the way that producer does. Each row of `TABLE` says how:

  dt            default time step in seconds, used when neither the caller nor the file's neurostack metadata
                gives one (a warning says so); None would make such a graph an error
  decay         the per-step decay factor d of the membrane (and synaptic current):
                  "euler" d = 1 - dt/tau   (Norse/spec use the increment a = dt/tau instead, see `update`)
                  "exp"   d = exp(-dt/tau) (exact exponential)
  update        the floating-point form of one membrane step (x = summed input current of this step):
                  "increment"  Norse's op order: LIF  v' = v + a*((g*x + v_leak) - v)
                                                 LI, CubaLIF, CubaLI  v' = v + a*((v_leak - v) + g*x)
                  "product"    v' = d*v + g*x + (1-d)*v_leak     (snnTorch, Spyx, Rockpool, Sinabs)
  syn_order     the synaptic current of CubaLIF / CubaLI (x = input, u = current the membrane sees):
                  "jump_then_decay"  Norse LIFCell: u = i + gs*x; after the membrane step i = u - a_syn*u
                  "decay_then_add"   snnTorch Synaptic: i = d_syn*i + gs*x; u = i
                  "add_then_decay"   Rockpool LIFTorch: i = (i + gs*x)*d_syn; u = i
  reset         "value": v <- v_reset (snnTorch/Sinabs "zero") | "subtract": v <- v - n*v_threshold
  reset_timing  "same_step": integrate, threshold, reset within one step (NIR spec, Norse, Sinabs, Rockpool)
                "next_step": the reset of step t is the spike of step t-1, applied inside step t's update
                             (snnTorch reset_delay=True; Spyx decides the spike on the previous membrane)
  threshold     "strict" v > v_threshold | "inclusive" v >= v_threshold
  spikes        "single" (0/1 per step) | "multi" (floor(v/v_threshold) spikes per step)
  latency       0: a step emits its own spike | 1: it emits the previous step's decision (Spyx)
  v_gain        how the file's r becomes the gain g on the membrane input (see `input_gain`)
  syn_gain      how w_in becomes the gain gs on the synaptic input (see `syn_input_gain`)
  v_init        initial membrane: "zero" or "v_leak" (Norse modules start at v_leak); currents start at 0
  tau_fix       "norse_1_1": a tau below dt is read as Norse 1.1.0's bug (it wrote dt/tau_mem_inv, i.e.
                tau*dt), so tau/dt is used and a warning recorded | "none"
  zero_clears   with reset "value" and "next_step": "old" zeroes v before integrating (snnTorch Leaky),
                "new_for_cuba_and_recurrent" zeroes the whole new v (this step's input lost) for CubaLIF
                (snnTorch Synaptic) and for a LIF on a cycle (snnTorch RLeaky), "old" for other LIFs

IF and I (no leak) are forward Euler in every convention: v' = v + (dt*r)*x.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from neurostack.errors import NeurostackError


@dataclass(frozen=True)
class Convention:
    """One producer's discretisation (fields documented in the module docstring)."""

    name: str
    dt: float | None
    decay: str
    update: str
    syn_order: str
    reset: str
    reset_timing: str
    threshold: str
    spikes: str
    latency: int
    v_gain: str
    syn_gain: str
    v_init: str
    tau_fix: str
    zero_clears: str
    source: str


# One row per producer; columns are the Convention fields in order (documented in the module docstring).
# fmt: off
_ROWS = [
    # name        dt    decay    update       syn_order          reset       reset_timing  threshold    spikes    latency  v_gain                 syn_gain                v_init    tau_fix      zero_clears  # noqa: E501
    ("spec",     1e-3, "euler", "increment", "jump_then_decay", "value",    "same_step",  "strict",    "single", 0,       "r",                   "dt_w_in_over_tau_syn", "zero",   "none",      "old"),  # noqa: E501
    ("norse",    1e-3, "euler", "increment", "jump_then_decay", "value",    "same_step",  "strict",    "single", 0,       "r",                   "w_in",                 "v_leak", "norse_1_1", "old"),  # noqa: E501
    ("snntorch", 1e-4, "euler", "product",   "decay_then_add",  "subtract", "next_step",  "strict",    "single", 0,       "dt_r_over_tau",       "dt_w_in_over_tau_syn", "zero",   "none",      "new_for_cuba_and_recurrent"),  # noqa: E501
    ("sinabs",   1.0,  "exp",   "product",   "decay_then_add",  "subtract", "same_step",  "inclusive", "multi",  0,       "one_minus_decay_r",   "w_in",                 "zero",   "none",      "old"),  # noqa: E501
    ("rockpool", 1e-3, "exp",   "product",   "add_then_decay",  "subtract", "same_step",  "inclusive", "multi",  0,       "dt_r_over_tau_decay", "w_in",                 "zero",   "none",      "old"),  # noqa: E501
    ("spyx",     1.0,  "euler", "product",   "decay_then_add",  "subtract", "next_step",  "strict",    "single", 1,       "r_over_decay",        "dt_w_in_over_tau_syn", "zero",   "none",      "old"),  # noqa: E501
]
# fmt: on

_SOURCES = {
    "spec": "NIR spec read as forward Euler in Norse's operation order (neurostack's own models), dt 1 ms "
            "unless told; v starts at 0",
    "norse": "Norse 1.1.0 LIFBoxCell / LIBoxCell / LIFCell (forward Euler, dt 1 ms); LIFCell adds its input "
             "to the current unscaled (w_in = 1 in the file)",
    "snntorch": "snnTorch 1.0.0 Leaky / Synaptic / RLeaky: mem = beta*mem + x with beta = 1 - dt/tau, r = tau/dt, "
                "w_in = tau_syn/dt, exporter dt 1e-4 s, reset_delay=True; the file always says v_reset = 0",
    "sinabs": "Sinabs 3.1.3 IAF/LIF: dt = 1 step, MultiSpike, MembraneSubtract; LIF scales its input by "
              "(1 - alpha) although it exports r = 1 (LIF rows are not covered by a fixture)",
    "rockpool": "Rockpool 3.1.0 LIFTorch: exact exponential, isyn decayed before it reaches vmem, "
                "r = tau*exp(-dt/tau)/dt, w_in = 1, floor(v/thr) spikes, subtract",
    "spyx": "Spyx 1.0.0 LIF: V = beta*V + x - s*thr with s decided on the previous V (one step of latency per "
            "layer), tau = dt/(1-beta) with dt = 1 step, r = beta",
}

_FIELDS = ("name", "dt", "decay", "update", "syn_order", "reset", "reset_timing", "threshold", "spikes", "latency",
           "v_gain", "syn_gain", "v_init", "tau_fix", "zero_clears")

TABLE: dict[str, Convention] = {
    row[0]: Convention(**dict(zip(_FIELDS, row)), source=_SOURCES[row[0]]) for row in _ROWS
}
CONVENTIONS: tuple[str, ...] = tuple(TABLE)

RESET_MODES = {"zero": "value", "value": "value", "subtract": "subtract"}

# A gain within this distance of 1 is taken as exactly 1: producers write r (and w_in) so that the input enters
# unscaled, and the float32 rounding of r and tau in the file leaves the product a few ulps away from 1, which
# would otherwise change every membrane update in the last bit.
UNIT_GAIN_TOLERANCE = 1e-6


def get_convention(name: str, reset: str | None = None, spikes: str | None = None) -> Convention:
    """The table row for `name`, with the reset mode overridden by `reset` ("zero" | "subtract" | None) and
    the spikes per step by `spikes` ("single" | "multi" | None): no NIR file records either."""
    if name not in TABLE:
        raise NeurostackError(f"unknown convention '{name}': choose one of {', '.join(CONVENTIONS)}")
    conv = TABLE[name]
    if reset is not None:
        if reset not in RESET_MODES:
            raise NeurostackError(f"unknown reset mode '{reset}': choose zero or subtract")
        conv = replace(conv, reset=RESET_MODES[reset])
    if spikes is not None:
        if spikes not in ("single", "multi"):
            raise NeurostackError(f"unknown spikes mode '{spikes}': choose single or multi")
        conv = replace(conv, spikes=spikes)
    return conv


def decay_factor(conv: Convention, dt: float, tau: np.ndarray) -> np.ndarray:
    """Per-step decay d (float64) of a leaky variable with time constant `tau` (seconds)."""
    ratio = dt / np.asarray(tau, np.float64)
    if conv.decay == "exp":
        return np.exp(-ratio)
    return 1.0 - ratio


def snap_unit(g: np.ndarray) -> np.ndarray:
    """`g` with entries within UNIT_GAIN_TOLERANCE of 1 set to exactly 1."""
    g = np.asarray(g, np.float64)
    return np.where(np.abs(g - 1.0) <= UNIT_GAIN_TOLERANCE, 1.0, g)


def input_gain(conv: Convention, dt: float, tau: np.ndarray, r: np.ndarray, d: np.ndarray) -> np.ndarray:
    """Gain g on the membrane input (float64) for LIF/LI/CubaLIF/CubaLI, from the file's r.

    "r"                    g = r                  (inside the Euler increment: v += a*(... + r*x))
    "dt_r_over_tau"        g = dt*r/tau           (snnTorch writes r = tau/dt: g = 1)
    "dt_r_over_tau_decay"  g = dt*r/(tau*d)       (Rockpool writes r = tau*exp(-dt/tau)/dt: g = 1)
    "r_over_decay"         g = r/d                (Spyx writes r = beta: g = 1)
    "one_minus_decay_r"    g = (1-d)*r            (Sinabs LIF normalises its input by 1 - alpha)
    """
    tau = np.asarray(tau, np.float64)
    r = np.asarray(r, np.float64)
    rule = conv.v_gain
    if rule == "r":
        return r
    if rule == "dt_r_over_tau":
        return snap_unit(dt * r / tau)
    if rule == "dt_r_over_tau_decay":
        return snap_unit(dt * r / (tau * d))
    if rule == "r_over_decay":
        return snap_unit(r / d)
    if rule == "one_minus_decay_r":
        return (1.0 - d) * r
    raise ValueError(f"unknown v_gain rule {rule!r}")


def syn_input_gain(conv: Convention, dt: float, tau_syn: np.ndarray, w_in: np.ndarray) -> np.ndarray:
    """Gain gs on the synaptic-current input (float64) of CubaLIF/CubaLI, from the file's w_in.

    "dt_w_in_over_tau_syn"  gs = dt*w_in/tau_syn  (forward Euler of tau_syn dI/dt = -I + w_in S; snnTorch
                                                   writes w_in = tau_syn/dt: gs = 1)
    "w_in"                  gs = w_in             (the producer adds its input to the current unscaled)
    """
    w_in = np.asarray(w_in, np.float64)
    if conv.syn_gain == "w_in":
        return w_in
    if conv.syn_gain == "dt_w_in_over_tau_syn":
        return snap_unit(dt * w_in / np.asarray(tau_syn, np.float64))
    raise ValueError(f"unknown syn_gain rule {conv.syn_gain!r}")


def describe_table() -> str:
    """The table as aligned text (for docs and `--help`)."""
    cols = ("name", "dt", "decay", "update", "syn_order", "reset", "reset_timing", "threshold", "spikes",
            "latency", "v_gain", "syn_gain", "v_init")
    rows = [cols] + [tuple(str(getattr(c, k)) for k in cols) for c in TABLE.values()]
    widths = [max(len(r[i]) for r in rows) for i in range(len(cols))]
    return "\n".join("  ".join(v.ljust(w) for v, w in zip(r, widths)).rstrip() for r in rows)
