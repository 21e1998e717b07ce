"""Parity: run the trained PyTorch model and the simulator on the same inputs and compare layer by layer.

Lives outside `neurostack.sim` because it needs both PyTorch and the simulator. Node names match because
the exporter names each NIR node after the model stage it came from.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch


@torch.no_grad()
def pytorch_outputs(run_dir: str | Path, inputs: np.ndarray, precision: str = "float32", batch_size: int = 128):
    """Run the run's best model on inputs (N, T, *input_shape).

    Returns (outputs, voltages, scores, kinds, thresholds): per node name (N, T, *shape) arrays in the exported
    graph's layout, class scores (N, C) by the model's readout rule (max or mean over time), each neuron node's
    kind ("LIF" or "LI", inner nodes of composite stages included) and each LIF node's thresholds.
    """
    from neurostack.frontend.nir_export import neuron_nodes, to_graph_layout
    from neurostack.train.rundir import load_trained_model

    _, model = load_trained_model(run_dir)
    want = tuple(model.config.input_shape)
    given = tuple(inputs.shape[2:])
    if given != want and _squeezed(given) == _squeezed(want):  # e.g. the spikformer graph's (1, frames, bins)
        inputs = inputs.reshape(*inputs.shape[:2], *want)
    elif given != want:
        from neurostack.errors import NeurostackError

        raise NeurostackError(f"{run_dir}: the run's model takes inputs shaped {want}, the graph's are "
                              f"{given}: --parity needs the run the graph was exported from")
    dtype = torch.float64 if precision == "float64" else torch.float32
    model = model.to(dtype)
    outs: dict[str, list[np.ndarray]] = {}
    volts: dict[str, list[np.ndarray]] = {}
    scores = []
    for start in range(0, len(inputs), batch_size):
        x = torch.from_numpy(np.ascontiguousarray(np.swapaxes(inputs[start:start + batch_size], 0, 1))).to(dtype)
        v_out, o, v = model.run(x, record=True, record_voltages=True)
        scores.append((v_out.mean(dim=0) if model.readout == "mean" else v_out.max(dim=0).values).numpy())
        for k, t in o.items():
            outs.setdefault(k, []).append(to_graph_layout(model, k, np.swapaxes(t.numpy(), 0, 1)))
        for k, t in v.items():
            volts.setdefault(k, []).append(to_graph_layout(model, k, np.swapaxes(t.numpy(), 0, 1)))
    neurons = neuron_nodes(model)
    kinds = {name: kind for name, (kind, _) in neurons.items()}
    thresholds = {name: th for name, (kind, th) in neurons.items() if kind == "LIF"}
    return ({k: np.concatenate(v) for k, v in outs.items()}, {k: np.concatenate(v) for k, v in volts.items()},
            np.concatenate(scores), kinds, thresholds)


def _squeezed(shape: tuple[int, ...]) -> tuple[int, ...]:
    return tuple(s for s in shape if s != 1)


def explain_differences(ref: dict[str, np.ndarray], got: dict[str, np.ndarray], ref_v: dict[str, np.ndarray],
                        got_v: dict[str, np.ndarray], thresholds: dict[str, np.ndarray], tolerance: float) -> dict:
    """Classify every differing spike of the spiking nodes (in execution order; arrays (N, T, *shape)).

    A difference is `near_threshold` when the run that did NOT spike there had a voltage within `tolerance` of
    the threshold (its recorded voltage is then the pre-reset one): float rounding decided the spike. It is
    `downstream` when the same sample already differed earlier (an earlier step, or the same step in an earlier
    node): the two runs had diverged, so it is a consequence. Anything else is `unexplained`.
    """
    names = list(ref)
    first: dict[int, tuple[int, int]] = {}  # sample -> (step, node position) of its first difference
    diffs = {}
    for pos, name in enumerate(names):
        idx = np.argwhere(ref[name] != got[name])  # (k, 2 + ndim): sample, step, neuron...
        diffs[name] = idx
        for s, t in idx[:, :2]:
            key = (int(t), pos)
            if int(s) not in first or key < first[int(s)]:
                first[int(s)] = key
    counts = {"near_threshold": 0, "downstream": 0, "unexplained": 0}
    examples = []
    for pos, name in enumerate(names):
        th = thresholds[name]
        for entry in diffs[name]:
            s, t, neuron = int(entry[0]), int(entry[1]), tuple(int(i) for i in entry[2:])
            quiet_v = got_v[name] if ref[name][(s, t, *neuron)] != 0 else ref_v[name]  # the side that did not spike
            gap = abs(float(quiet_v[(s, t, *neuron)]) - float(th[neuron]))
            if gap <= tolerance:
                counts["near_threshold"] += 1
            elif (t, pos) > first[s]:
                counts["downstream"] += 1
            else:
                counts["unexplained"] += 1
                if len(examples) < 5:
                    examples.append({"node": name, "sample": s, "step": t, "neuron": list(neuron),
                                     "distance_to_threshold": gap})
    return {**counts, "tolerance": tolerance, "unexplained_examples": examples}


def compare(sim_outputs: dict[str, np.ndarray], sim_voltages: dict[str, np.ndarray], run_dir: str | Path,
            inputs: np.ndarray, labels: np.ndarray | None, precision: str = "float32") -> dict:
    """The parity report: spikes compared and differing per spiking node, max |voltage difference|, accuracies."""
    outs, volts, scores, kinds, thresholds = pytorch_outputs(run_dir, inputs, precision)
    per_node: dict[str, dict] = {}
    spikes_total = spikes_differing = 0
    max_dv = 0.0
    for name, kind in kinds.items():
        if kind != "LIF" or name not in outs:
            continue
        ref = outs[name]
        got = sim_outputs[name].reshape(ref.shape)
        differing = int(np.count_nonzero(got != ref))
        total = int(np.count_nonzero(ref))
        entry = {"spikes": total, "spikes_differing": differing}
        if name in volts and name in sim_voltages:
            dv = float(np.max(np.abs(sim_voltages[name].reshape(volts[name].shape) - volts[name]), initial=0.0))
            entry["max_abs_voltage_diff"] = dv
            max_dv = max(max_dv, dv)
        per_node[name] = entry
        spikes_total += total
        spikes_differing += differing
    for name, kind in kinds.items():  # leaky-integrator readouts: voltage only
        if kind == "LI" and name in volts and name in sim_voltages:
            dv = float(np.max(np.abs(sim_voltages[name].reshape(volts[name].shape) - volts[name]), initial=0.0))
            per_node[name] = {"max_abs_voltage_diff": dv}
            max_dv = max(max_dv, dv)
    report = {"precision": precision, "spikes_total": spikes_total, "spikes_differing": spikes_differing,
              "max_abs_voltage_diff": max_dv, "per_node": per_node,
              "differing_fraction": spikes_differing / spikes_total if spikes_total else 0.0,
              "pytorch_predictions": scores.argmax(axis=1).tolist()}
    report["explained"] = (_explain(outs, volts, sim_outputs, sim_voltages, kinds, thresholds, precision)
                           if spikes_differing else
                           {"near_threshold": 0, "downstream": 0, "unexplained": 0, "tolerance": None,
                            "unexplained_examples": []})
    if labels is not None and len(labels):
        report["pytorch_accuracy"] = float((scores.argmax(axis=1) == labels).mean())
    return report


def _explain(outs, volts, sim_outputs, sim_voltages, kinds, thresholds, precision: str) -> dict:
    """explain_differences over the LIF nodes, with the rounding tolerance measured on the samples where the
    two runs agree on every spike (their largest voltage difference), and at least 4 units in the last place
    of the threshold."""
    names = [n for n, k in kinds.items() if k == "LIF" and n in outs and n in volts and n in sim_voltages]
    got = {n: sim_outputs[n].reshape(outs[n].shape) for n in names}
    got_v = {n: sim_voltages[n].reshape(volts[n].shape) for n in names}
    n_samples = len(outs[names[0]])
    clean = np.ones(n_samples, bool)
    for n in names:
        clean &= (got[n] == outs[n]).reshape(n_samples, -1).all(axis=1)
    measured = max((float(np.max(np.abs(got_v[n][clean] - volts[n][clean]), initial=0.0)) for n in names),
                   default=0.0)
    ulp = float(np.finfo(np.float32 if precision == "float32" else np.float64).eps)
    floor = 4 * ulp * max(max(float(np.max(np.abs(thresholds[n]))) for n in names), 1.0)
    return explain_differences({n: outs[n] for n in names}, got, {n: volts[n] for n in names}, got_v,
                               {n: thresholds[n] for n in names}, max(measured, floor))
