"""`neurostack simulate`: load a NIR graph, build its inputs, run the simulator, report (and compare).

Torch is imported only for `--parity`, so simulating a NIR file works where PyTorch is not installed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np

from neurostack.atomic import write_json, write_with
from neurostack.errors import NeurostackError
from neurostack.sim.memory import check_run


def _load_npy(path: Path) -> np.ndarray:
    """The .npy file at `path` memory-mapped (read-only, nothing read yet), checked to hold numbers."""
    if not path.is_file():
        raise NeurostackError(f"{path}: no such input file")
    try:  # the header alone: shape and dtype, nothing read yet (a truncated file fails here too)
        x = np.load(path, mmap_mode="r", allow_pickle=False)
    except Exception as exc:
        raise NeurostackError(f"{path}: not a readable .npy array ({_first_line(exc)})") from None
    if not isinstance(x, np.ndarray):  # an .npz archive
        raise NeurostackError(f"{path}: expected a .npy array, got an .npz archive")
    if not np.issubdtype(x.dtype, np.number) and x.dtype != np.bool_:
        raise NeurostackError(f"{path}: expected a numeric array, got dtype {x.dtype}")
    return x


def _first_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text[:100]


def _inputs_from_file(path: Path, input_shape: tuple[int, ...], graph_path: Path,
                      limit: int | None = None) -> tuple[np.ndarray, bool]:
    """(inputs (N, T, *input_shape) float64, whether the file held a single sample); at most `limit` samples."""
    from neurostack.memory import check_memory, nbytes

    x = _load_npy(path)
    k = len(input_shape)
    if x.ndim == k + 1 and tuple(x.shape[1:]) == tuple(input_shape):
        x, single = x[None], True
    elif x.ndim == k + 2 and tuple(x.shape[2:]) == tuple(input_shape):
        x, single = (x[:limit] if limit else x), False
    else:
        raise NeurostackError(f"{path}: shape {x.shape} does not fit the input {tuple(input_shape)} of {graph_path}: "
                              f"expected (T, {', '.join(map(str, input_shape))}) or (N, T, ...)")
    check_memory(nbytes(x.shape, 8), f"{path}: reading its {x.shape} array", "; simulate fewer samples with --limit")
    try:
        x = np.array(x, dtype=np.float64)  # reads the (first `limit`) samples from disk
    except Exception as exc:
        raise NeurostackError(f"{path}: not a readable .npy array ({_first_line(exc)})") from None
    if x.shape[0] == 0 or x.shape[1] == 0:
        raise NeurostackError(f"{path}: shape {x.shape}: no samples or no time steps")
    if not np.all(np.isfinite(x)):
        raise NeurostackError(f"{path}: input holds NaN or infinite values")
    if x.shape[1] > 1 and np.array_equal(x, np.broadcast_to(x[:, :1], x.shape)):
        x = np.broadcast_to(x[:, :1].copy(), x.shape)  # the same row at every step: held (see sim.run)
    return x, single


def _inputs_from_data(spec: str, split: str | None, meta: dict, input_shape: tuple[int, ...],
                      limit: int | None, cache_dir, graph_path: Path) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Test-split inputs rebuilt as at training time from the graph's input description."""
    from neurostack.data import ENCODERS, FeatureConfig, load_dataset
    from neurostack.inputs import InputSpec, concatenate, encode_for_eval
    from neurostack.memory import check_memory, nbytes

    info = meta.get("input", {})
    try:
        features = FeatureConfig.from_dict(info["features"]) if info.get("features") else FeatureConfig()
        input_spec = InputSpec(info.get("view", "sequence"), info.get("encoder", "none"), info.get("steps", 1),
                               info.get("steps_per_frame", 1)).check()
    except NeurostackError as exc:
        raise NeurostackError(f"{graph_path}: the input description in its metadata: {exc}") from None
    if input_spec.encoder not in ENCODERS:
        raise NeurostackError(f"{graph_path}: its metadata names the unknown encoder {input_spec.encoder!r}")
    if input_spec.steps < 1 or input_spec.steps_per_frame < 1:
        raise NeurostackError(f"{graph_path}: the input description in its metadata asks for steps "
                              f"{input_spec.steps}, steps_per_frame {input_spec.steps_per_frame}: must be >= 1")
    data = load_dataset(spec, split=split or info.get("split", "standard"), cache_dir=cache_dir,
                        seed=info.get("data_seed", 0), features=features, progress=True)
    x, y = data.x["test"], data.y["test"]
    if limit:
        x, y = x[:limit], y[:limit]
    if len(x) == 0:
        raise NeurostackError(f"{spec}: the test split is empty")
    steps, width = input_spec.feature_shape(x.shape[1], x.shape[2])
    if width != nbytes(input_shape, 1):
        raise NeurostackError(f"{graph_path}: its input {tuple(input_shape)} does not take the {width} values per "
                              f"step that {spec} gives with the input description in its metadata")
    # the encoded batches and their concatenation, float32 (N, T, *input_shape) twice; held (the image view as a
    # constant current): one row per sample, passed to the simulator without repeating it T times
    rows = 1 if input_spec.held else steps
    check_memory(2 * nbytes((len(x), rows, *input_shape), 4), f"{graph_path}: encoding {len(x)} samples of {spec}",
                 "; simulate fewer samples with --limit")
    batches = [b for _, b in encode_for_eval(x, input_spec, info.get("encoder_seed", 0), tuple(input_shape),
                                             held=True)]
    return concatenate(batches), y, list(data.classes)


IMAGE_SUFFIXES = ("", ".png", ".pdf", ".svg", ".svgz", ".eps", ".ps", ".jpg", ".jpeg", ".tif", ".tiff", ".webp",
                  ".gif", ".pgf", ".raw", ".rgba", ".avif")  # what matplotlib writes ("": png)


def _check_outputs(outputs: dict[str, tuple[Path | None, tuple[str, ...] | None]]) -> None:
    """Refuse output paths that could not be written before the (long) run rather than after it."""
    import os

    for option, (path, suffixes) in outputs.items():
        if path is None:
            continue
        path = Path(path)
        if suffixes is not None and path.suffix.lower() not in suffixes:
            shown = ", ".join(x for x in suffixes if x)
            raise NeurostackError(f"{option} {path}: the file name must end in {shown}")
        if path.is_dir():
            raise NeurostackError(f"{option} {path}: is a folder")
        parent = path.parent
        while not parent.exists() and parent != parent.parent:
            parent = parent.parent
        if not parent.is_dir():
            raise NeurostackError(f"{option} {path}: {parent} is not a folder")
        if not os.access(parent, os.W_OK | os.X_OK):
            raise NeurostackError(f"{option} {path}: cannot write in {parent}")


_META_TYPES = {"input": dict, "readout": dict, "classes": list}
_INPUT_TYPES = {"data": str, "split": str, "features": dict, "view": str, "encoder": str, "steps": int,
                "steps_per_frame": int, "data_seed": int, "encoder_seed": int}


def _checked_metadata(meta: dict, graph_path: Path) -> dict:
    """The graph's neurostack metadata with every part simulate reads of the type it must be, else a clean error."""
    def bad(key, value, want):
        shown = repr(value)
        raise NeurostackError(f"{graph_path}: its neurostack metadata has {key} = {shown[:40]}, not a {want.__name__}")

    for key, want in _META_TYPES.items():
        if meta.get(key) is not None and not isinstance(meta[key], want):
            bad(key, meta[key], want)
    for key, want in _INPUT_TYPES.items():
        value = meta.get("input", {}).get(key)
        if value is not None and (not isinstance(value, want) or (want is int and isinstance(value, bool))):
            bad(f"input.{key}", value, want)
    readout = meta.get("readout", {})
    for key in ("node", "rule"):
        if readout.get(key) is not None and not isinstance(readout[key], str):
            bad(f"readout.{key}", readout[key], str)
    return meta


def _metadata_dt(meta: dict, graph_path: Path) -> float | None:
    """The dt neurostack's metadata records, if any; a value that is not a number is the file's fault."""
    dt = meta.get("dt")
    if dt is None:
        return None
    try:
        return float(dt)
    except (TypeError, ValueError):
        raise NeurostackError(f"{graph_path}: its metadata gives dt {str(dt)[:40]!r}, not a number") from None


def _predictions(result, meta: dict) -> np.ndarray:
    """Class decisions: the metadata's readout rule, else spike counts (spiking output) or max voltage."""
    readout = meta.get("readout", {})
    trace = result.outputs.get(readout.get("node", ""), result.output)
    trace = trace.reshape(trace.shape[0], trace.shape[1], -1)
    if readout.get("rule") == "mean_over_time":
        return trace.mean(axis=1).argmax(axis=1)
    if readout.get("rule") == "max_over_time" or not np.all((trace == 0) | (trace == 1)):
        return trace.max(axis=1).argmax(axis=1)
    return trace.sum(axis=1).argmax(axis=1)


def _ann_steps(inputs: np.ndarray) -> int:
    """Steps an ANN of the same shape needs per inference: 1 when every step shows the same input (the image
    view), else one per step."""
    if inputs.strides[1] == 0:  # held
        return 1
    return 1 if np.all(inputs == inputs[:, :1]) else int(inputs.shape[1])


def run_simulate(*, graph_path: Path, data: str | None, split: str | None, input_path: Path | None,
                 dt: float | None, convention: str, reset: str | None, spikes: str | None, precision: str, limit: int | None,
                 parity_run: Path | None, json_path: Path | None, save_spikes: Path | None,
                 save_voltages: Path | None, raster: Path | None, cache_dir, echo: Callable[..., None],
                 report_sops: bool = False, target: str | None = None, plot: Path | None = None,
                 quantize: bool = False) -> dict:
    from neurostack import sim

    if convention not in sim.CONVENTIONS:
        raise NeurostackError(f"unknown convention '{convention}': choose one of {', '.join(sim.CONVENTIONS)}")
    _check_outputs({"--json": (json_path, None), "--save-spikes": (save_spikes, (".npz",)),
                    "--save-voltages": (save_voltages, (".npz",)), "--raster": (raster, IMAGE_SUFFIXES),
                    "--plot": (plot, IMAGE_SUFFIXES)})
    loaded = sim.load_graph(graph_path)
    for w in loaded.warnings:
        echo(f"warning: {w}", err=True)
    meta = _checked_metadata(loaded.metadata, graph_path)
    try:
        plan = sim.lower(loaded.graph, dt=dt if dt is not None else _metadata_dt(meta, graph_path),
                         convention=convention, reset=reset, spikes=spikes, precision=precision)
    except NeurostackError as exc:  # name the file: lowering only knows the graph's nodes
        raise NeurostackError(f"{graph_path}: {exc}") from None
    for w in plan.warnings:
        echo(f"warning: {w}", err=True)
    input_shape = tuple(plan.input_shape)

    labels, classes, single = None, None, False
    if input_path is not None:
        inputs, single = _inputs_from_file(input_path, input_shape, graph_path, limit)
    else:
        spec = data or meta.get("input", {}).get("data")
        if not spec:
            raise NeurostackError(f"{graph_path}: the graph names no data set: pass --data or --input")
        inputs, labels, classes = _inputs_from_data(spec, split, meta, input_shape, limit, cache_dir,
                                                     graph_path)

    energy = report_sops or target is not None or plot is not None or quantize
    targets = None
    if energy:  # load (and validate) the target files before the long run
        from neurostack.energy.targets import load_targets

        targets = load_targets(target or "all")
    record_v = save_voltages is not None or parity_run is not None
    check_run(plan, inputs.shape[0], inputs.shape[1], record_voltages=record_v, count_per_step=energy,
              what=f"{graph_path}: simulating")
    result = sim.run(plan, inputs, record_voltages=record_v, count_per_step=energy)
    preds = _predictions(result, meta)
    accuracy = float((preds == labels).mean()) if labels is not None else None

    report: dict = {"samples": int(len(inputs)), "accuracy": accuracy, "dt": plan.dt, "convention": plan.convention,
                    "precision": precision,
                    "nodes": {name: {"type": plan.node_types[name], "shape": list(plan.shapes[name]),
                                     "spikes": int(result.spike_counts.get(name, 0))}
                              for name in plan.node_names}}
    if parity_run is not None:
        from neurostack.parity import compare

        report["parity"] = compare(result.outputs, result.voltages, parity_run, inputs, labels, precision)
        report["parity"]["simulator_predictions_agree"] = int(
            np.count_nonzero(np.asarray(report["parity"].pop("pytorch_predictions")) == preds))

    _print_summary(report, graph_path, echo)
    if energy:
        report.update(_energy_report(result.workload(plan, ann_steps=_ann_steps(inputs)), targets, plot))
    if quantize:
        report["quantized"] = _quantized_accuracy(loaded.graph, plan, targets, inputs, labels, meta, accuracy, echo)
    if json_path:
        write_json(json_path, report)
    squeeze = (lambda a: a[0]) if single else (lambda a: a)
    if save_spikes:
        arrays = {k: squeeze(v) for k, v in result.outputs.items()}
        write_with(save_spikes, lambda tmp: np.savez_compressed(tmp, **arrays))
    if save_voltages:
        arrays = {k: squeeze(v) for k, v in result.voltages.items()}
        write_with(save_voltages, lambda tmp: np.savez_compressed(tmp, **arrays))
    if raster:
        from neurostack.plots import plot_raster

        plot_raster({k: result.outputs[k][0] for k in plan.node_names if k in result.spike_counts}, raster, plan.dt)
    return report


def _print_summary(report: dict, graph_path: Path, echo) -> None:
    acc = f", accuracy {report['accuracy']:.2%}" if report["accuracy"] is not None else ""
    echo(f"{graph_path}: {report['samples']} samples, dt {report['dt']:g} s, convention {report['convention']}, "
         f"{report['precision']}{acc}")
    for name, n in report["nodes"].items():
        if name in ("input", "output"):
            continue
        spikes = f"spikes {n['spikes']}" if n["type"] in ("LIF", "CubaLIF", "IF", "Threshold") else ""
        echo(f"  {name:<16} {n['type']:<10} {str(tuple(n['shape'])):<14} {spikes}".rstrip())
    if "parity" in report:
        p = report["parity"]
        line = (f"parity vs PyTorch ({p['precision']}): {p['spikes_differing']} of {p['spikes_total']} spikes differ, "
                f"max |dv| {p['max_abs_voltage_diff']:.3g}")
        if "pytorch_accuracy" in p:
            line += f", PyTorch accuracy {p['pytorch_accuracy']:.2%}"
        echo(line)
        e = p["explained"]
        if p["spikes_differing"]:
            echo(f"  differing spikes: {e['near_threshold']} with a voltage within {e['tolerance']:.3g} of the "
                 f"threshold (rounding), {e['downstream']} downstream of an earlier difference, "
                 f"{e['unexplained']} unexplained")


def _energy_report(workload, targets, plot: Path | None) -> dict:
    """Per-layer counts and per-target energy printed as tables; returns the JSON part (see energy.report)."""
    from rich.console import Console

    from neurostack.energy.estimate import estimate_all
    from neurostack.energy.report import render, to_json

    estimates = estimate_all(workload, targets)
    render(workload, estimates, Console(width=160))
    if plot:
        from neurostack.energy.plot import plot_energy

        plot_energy(workload, estimates, plot)
    return to_json(workload, estimates)


def _quantized_accuracy(graph, plan, targets, inputs, labels, meta: dict, accuracy, echo) -> dict:
    """Accuracy with the weights rounded to each target's weight precision (one run per distinct precision)."""
    from neurostack import sim
    from neurostack.sim.quantize import quantize_graph

    by_bits: dict[int, list[str]] = {}
    for t in targets:
        if t.weight_bits is not None:
            by_bits.setdefault(int(t.weight_bits), []).append(t.label)
    skipped = [t.label for t in targets if t.weight_bits is None]
    out: dict = {"accuracy_before": accuracy, "by_bits": {}, "targets_without_weight_bits": skipped}
    for bits, names in sorted(by_bits.items()):
        q_graph, nodes = quantize_graph(graph, bits)
        q_plan = sim.lower(q_graph, dt=plan.dt, convention=plan.convention, reset=plan.reset, spikes=plan.spikes,
                           precision=plan.precision)
        check_run(q_plan, inputs.shape[0], inputs.shape[1], what=f"simulating with {bits}-bit weights")
        q_result = sim.run(q_plan, inputs)
        q_acc = float((_predictions(q_result, meta) == labels).mean()) if labels is not None else None
        spikes = sum(int(q_result.spike_counts.get(n, 0)) for n in q_plan.spiking_nodes)
        out["by_bits"][str(bits)] = {"targets": names, "accuracy": q_acc, "spikes": spikes,
                                     "weights_zeroed": sum(n.zeroed for n in nodes)}
        before = f"{accuracy:.2%}" if accuracy is not None else "n/a"
        after = f"{q_acc:.2%}" if q_acc is not None else "n/a (no labels)"
        echo(f"quantised to {bits}-bit weights ({', '.join(names)}): accuracy {before} -> {after}, "
             f"{sum(n.zeroed for n in nodes)} weights rounded to zero")
    if skipped:
        echo(f"not quantised (the target file gives no weight precision): {', '.join(skipped)}")
    return out
