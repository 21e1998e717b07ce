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

    Returns (outputs, voltages, scores): per stage name (N, T, *shape) arrays, and class scores (N, C).
    """
    from neurostack.train.rundir import load_trained_model

    _, model = load_trained_model(run_dir)
    dtype = torch.float64 if precision == "float64" else torch.float32
    model = model.to(dtype)
    outs: dict[str, list[np.ndarray]] = {}
    volts: dict[str, list[np.ndarray]] = {}
    scores = []
    for start in range(0, len(inputs), batch_size):
        x = torch.from_numpy(np.ascontiguousarray(np.swapaxes(inputs[start:start + batch_size], 0, 1))).to(dtype)
        v_out, o, v = model.run(x, record=True, record_voltages=True)
        scores.append(v_out.max(dim=0).values.numpy())
        for k, t in o.items():
            outs.setdefault(k, []).append(np.swapaxes(t.numpy(), 0, 1))
        for k, t in v.items():
            volts.setdefault(k, []).append(np.swapaxes(t.numpy(), 0, 1))
    kinds = {name: type(stage).__name__ for name, stage in zip(model.stage_names, model.stages)}
    return ({k: np.concatenate(v) for k, v in outs.items()}, {k: np.concatenate(v) for k, v in volts.items()},
            np.concatenate(scores), kinds)


def compare(sim_outputs: dict[str, np.ndarray], sim_voltages: dict[str, np.ndarray], run_dir: str | Path,
            inputs: np.ndarray, labels: np.ndarray | None, precision: str = "float32") -> dict:
    """The parity report: spikes compared and differing per spiking node, max |voltage difference|, accuracies."""
    outs, volts, scores, kinds = pytorch_outputs(run_dir, inputs, precision)
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
              "pytorch_predictions": scores.argmax(axis=1).tolist()}
    if labels is not None and len(labels):
        report["pytorch_accuracy"] = float((scores.argmax(axis=1) == labels).mean())
    return report
