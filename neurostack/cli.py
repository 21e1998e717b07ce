"""The `neurostack` command line: train, export, inspect, simulate, targets.

User errors (`NeurostackError`) print one line, `error: ...`, and exit with code 2; nothing else is caught.
Heavy libraries are imported inside the commands so `neurostack --help` stays quick.
"""

from __future__ import annotations

import functools
import sys
from datetime import datetime
from pathlib import Path

import click

from neurostack.errors import NeurostackError


def _user_errors(fn):
    """Turn NeurostackError into a one-line message and exit code 2."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except NeurostackError as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(exc.exit_code)

    return wrapper


class _OneLineErrors(click.Group):
    """A click group whose usage errors (bad option values, unknown options, missing arguments) are one line,
    `error: ...` with a pointer to --help, exit code 2, like every other user error."""

    def main(self, args=None, prog_name=None, **extra):
        try:
            extra.pop("standalone_mode", None)
            return super().main(args=args, prog_name=prog_name, standalone_mode=False, **extra)
        except click.UsageError as exc:
            ctx = exc.ctx
            where = f" (see '{ctx.command_path} --help')" if ctx is not None else ""
            click.echo(f"error: {exc.format_message()}{where}", err=True)
            sys.exit(2)
        except click.ClickException as exc:  # e.g. a file click itself could not open
            click.echo(f"error: {exc.format_message()}", err=True)
            sys.exit(exc.exit_code or 2)
        except click.Abort:  # Ctrl-C at a prompt
            click.echo("error: aborted", err=True)
            sys.exit(130)


@click.group(cls=_OneLineErrors, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="neurostack")
def main() -> None:
    """Train spiking audio classifiers, export them to NIR, and simulate NIR graphs event by event."""


# --------------------------------------------------------------------------------------------- train
@main.command()
@click.option("--data", default="synth-digits", show_default=True,
              help="synth-digits (embedded, synthesised offline), fsdd:PATH, shd:PATH or ssc:PATH.")
@click.option("--split", default="standard", show_default=True,
              help="standard | speaker:NAME[,NAME] (FSDD: those speakers are the test set) | all.")
@click.option("--model", "model_name", default="mlp", show_default=True,
              help="mlp | csnn | spikformer | adlif (recurrent adaptive LIF) | delay (learnable synaptic delays).")
@click.option("--epochs", type=click.IntRange(1), default=None, help="Training epochs  [default: 30].")
@click.option("--batch-size", type=click.IntRange(1), default=64, show_default=True)
@click.option("--lr", type=click.FloatRange(min=0, min_open=True), default=None,
              help="Learning rate  [default: 2e-3; delay 5e-3].")
@click.option("--hidden", default=None,
              help="Hidden layer sizes, comma separated  [default: 512; delay 256,128].")
@click.option("--view", type=click.Choice(["image", "sequence"]), default=None,
              help="image: the whole feature matrix is the input at every step (the reports' set-up); "
                   "sequence: one frame per step (streaming)  [default: image; delay: sequence].")
@click.option("--encoder", default="none", show_default=True,
              help="How features become input: none (real-valued current), rate, latency or delta spikes.")
@click.option("--steps", type=click.IntRange(1), default=None,
              help="Time steps per sample (image view)  [default: 25; spikformer 4].")
@click.option("--steps-per-frame", type=click.IntRange(1), default=1, show_default=True,
              help="Time steps per feature frame (sequence view; rate and latency encoders).")
@click.option("--features", "feature_kind", type=click.Choice(["mel", "mfcc"]), default="mel", show_default=True)
@click.option("--n-bins", type=click.IntRange(4, 256), default=40, show_default=True, help="Mel bands or MFCCs.")
@click.option("--surrogate", default="atan", show_default=True,
              help="Surrogate gradient: superspike, atan, triangle, tanh, circ, erfc.")
@click.option("--dim", type=click.IntRange(1), default=None, help="spikformer: embedding dimension  [default: 64].")
@click.option("--depth", type=click.IntRange(1), default=None, help="spikformer: encoder blocks  [default: 2].")
@click.option("--heads", type=click.IntRange(1), default=None, help="spikformer: attention heads  [default: 4].")
@click.option("--max-delay", type=click.IntRange(1), default=None,
              help="delay: synaptic delays run from 0 to N-1 time steps (frames)  [default: 13].")
@click.option("--dropout", type=click.FloatRange(0, 1, max_open=True), default=None,
              help="Dropout on hidden spikes  [default: 0.3; spikformer 0.1; adlif, delay 0.2].")
@click.option("--weight-decay", type=click.FloatRange(min=0), default=1e-4, show_default=True, help="AdamW weight decay.")
@click.option("--label-smoothing", type=click.FloatRange(0, 1, max_open=True), default=0.0, show_default=True)
@click.option("--patience", type=click.IntRange(0), default=0, show_default=True,
              help="Early stopping: stop after N epochs without a better validation accuracy (0: off).")
@click.option("--ema", type=click.FloatRange(0, 1, max_open=True), default=None,
              help="Weight averaging: validate, keep and export an exponential moving average of the weights "
                   "with this decay per step, e.g. 0.99 (0: off)  [default: 0; csnn 0.99].")
@click.option("--augment/--no-augment", default=True, show_default=True,
              help="Training-time augmentation, the model's default set: mlp, csnn: --time-shift 4; spikformer, "
                   "adlif, delay: also --time-stretch 0.1 --freq-shift 1 --tilt 0.3 --time-mask 1 --freq-mask 1. "
                   "--no-augment switches all of it off (the options below still switch single kinds on).")
@click.option("--time-shift", type=click.IntRange(0), default=None, help="Max random time shift, frames (0: off).")
@click.option("--time-stretch", type=click.FloatRange(0, 1, max_open=True), default=None,
              help="Max relative time stretch, e.g. 0.1 (0: off).")
@click.option("--freq-shift", type=click.FloatRange(min=0), default=None,
              help="Max random shift of the mel bands, in bands (a different voice), e.g. 1 (0: off).")
@click.option("--vtlp", type=click.FloatRange(0, 1, max_open=True), default=None,
              help="Vocal-tract-length perturbation: max relative warp of the frequency axis, e.g. 0.1 "
                   "(frequencies scaled by 0.9-1.1; another voice; mel features) (0: off).")
@click.option("--tilt", type=click.FloatRange(0, 1), default=None,
              help="Max random spectral tilt (band gains 1 +- t from bottom to top), e.g. 0.3 (0: off).")
@click.option("--time-mask", type=click.IntRange(0), default=None, help="SpecAugment time masks per sample (0: off).")
@click.option("--freq-mask", type=click.IntRange(0), default=None, help="SpecAugment frequency masks per sample (0: off).")
@click.option("--noise", type=click.FloatRange(min=0), default=None, help="Max std of additive Gaussian noise (0: off).")
@click.option("--mixup", type=click.FloatRange(min=0), default=None, help="Mixup with weights ~ Beta(a, a) (0: off).")
@click.option("--cutmix", type=click.FloatRange(min=0), default=None,
              help="CutMix of frame spans, weights ~ Beta(a, a) (0: off).")
@click.option("--device", default="auto", show_default=True, help="auto | cpu | cuda.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Run directory  [default: runs/DATA-MODEL-TIME].")
@click.option("--resume", is_flag=True, help="Continue the interrupted run in --out from its last checkpoint.")
@click.option("--cache-dir", type=click.Path(file_okay=False), default=None,
              help="Where computed features are cached  [default: the user's cache dir, or $NEUROSTACK_CACHE].")
@click.option("--limit", type=click.IntRange(1), default=None, help="Use at most N samples per split (quick runs).")
@_user_errors
def train(data, split, model_name, epochs, batch_size, lr, hidden, view, encoder, steps, steps_per_frame, feature_kind,
          n_bins, surrogate, dim, depth, heads, max_delay, dropout, weight_decay, label_smoothing, patience, ema,
          augment, time_shift, time_stretch, freq_shift, vtlp, tilt, time_mask, freq_mask, noise, mixup, cutmix, device, seed, out, resume,
          cache_dir, limit):
    """Train a spiking classifier with surrogate gradients (BPTT).

    Writes config.json, a checkpoint each epoch, best.safetensors, metrics.json and PNG plots into the run
    directory. Example: neurostack train --data fsdd:recordings --model csnn --epochs 10
    """
    from neurostack.train.session import run_training

    run_training(data=data, split=split, model_name=model_name, epochs=epochs, batch_size=batch_size, lr=lr,
                 hidden=hidden, view=view, encoder=encoder, steps=steps, steps_per_frame=steps_per_frame,
                 feature_kind=feature_kind,
                 n_bins=n_bins, surrogate=surrogate, device=device, seed=seed,
                 dropout=dropout, weight_decay=weight_decay, label_smoothing=label_smoothing, patience=patience,
                 ema=ema, augment=augment,
                 augment_kinds={"time_shift": time_shift, "time_stretch": time_stretch, "freq_shift": freq_shift, "vtlp": vtlp,
                                "tilt": tilt,
                                "time_mask": time_mask, "freq_mask": freq_mask, "noise": noise, "mixup": mixup,
                                "cutmix": cutmix},
                 model_options={"dim": dim, "depth": depth, "heads": heads, "max_delay": max_delay},
                 out=out or Path("runs") / f"{data.split(':')[0]}-{model_name}-{datetime.now():%Y%m%d-%H%M%S}",
                 resume=resume, cache_dir=cache_dir, limit=limit)


# -------------------------------------------------------------------------------------------- export
@main.command()
@click.argument("run_dir", type=click.Path(path_type=Path))
@click.option("--to", "fmt", type=click.Choice(["nir"]), default="nir", show_default=True)
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="The file to write (e.g. model.nir).")
@_user_errors
def export(run_dir, fmt, output):
    """Export a trained run to a NIR graph (written atomically).

    Example: neurostack export runs/fsdd-mlp --to nir -o model.nir
    """
    from neurostack.frontend.nir_export import export_run

    summary = export_run(run_dir, output)
    click.echo(f"wrote {output}: {summary}")


# ------------------------------------------------------------------------------------------- inspect
@main.command()
@click.argument("graph_path", type=click.Path(path_type=Path))
@_user_errors
def inspect(graph_path):
    """Print a NIR graph's nodes, edges, and whether the simulator supports each node.

    Exit code 0 when the simulator can run every node; 2, after the description, when it cannot.
    """
    from neurostack.inspect import inspect_graph, unsupported_error

    text, problems = inspect_graph(graph_path)
    click.echo(text)
    if problems:
        raise unsupported_error(graph_path, problems)


# ------------------------------------------------------------------------------------------ simulate
@main.command()
@click.argument("graph_path", type=click.Path(path_type=Path))
@click.option("--data", default=None, help="Dataset to run on (as for train); default: the one in the graph's metadata.")
@click.option("--split", default=None, help="Split of --data; the test split is used  [default: the training split].")
@click.option("--input", "input_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="A .npy input: one sample (T, *input_shape) or many (N, T, *input_shape).")
@click.option("--dt", type=click.FloatRange(min=0, min_open=True), default=None,
              help="Time step in seconds (overrides the graph's or the convention's).")
@click.option("--convention", default="spec", show_default=True,
              help="How the producer discretised time: spec, norse, snntorch, sinabs, rockpool, spyx.")
@click.option("--reset", type=click.Choice(["zero", "subtract"]), default=None,
              help="Reset mode, which no NIR file records  [default: the convention's].")
@click.option("--spikes", type=click.Choice(["single", "multi"]), default=None,
              help="Spikes per neuron per step, which no NIR file records  [default: the convention's].")
@click.option("--precision", type=click.Choice(["float32", "float64"]), default="float32", show_default=True)
@click.option("--limit", type=click.IntRange(1), default=None, help="Simulate at most N samples.")
@click.option("--parity", "parity_run", type=click.Path(path_type=Path), default=None,
              help="A run directory: also run the trained PyTorch model and compare spikes layer by layer.")
@click.option("--json", "json_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write results as JSON.")
@click.option("--save-spikes", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write every node's output over time to an .npz keyed by node name.")
@click.option("--save-voltages", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write neuron nodes' membrane voltages to an .npz keyed by node name.")
@click.option("--raster", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Plot the first sample's spikes per layer to a PNG.")
@click.option("--report-sops", is_flag=True,
              help="Print SOPs, MACs, neuron updates and spikes per layer, and energy on the targets.")
@click.option("--target", default=None,
              help="Targets for the energy estimate: a name (see `neurostack targets`), a .toml file, a comma "
                   "separated list, or all  [default with --report-sops: all].")
@click.option("--plot", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Draw SOPs per layer and energy per target to a PNG.")
@click.option("--quantize", is_flag=True,
              help="Also run with the weights rounded to each target's weight precision and report the accuracy.")
@click.option("--cache-dir", type=click.Path(file_okay=False), default=None)
@_user_errors
def simulate(graph_path, data, split, input_path, dt, convention, reset, spikes, precision, limit, parity_run, json_path,
             save_spikes, save_voltages, raster, report_sops, target, plot, quantize, cache_dir):
    """Run a NIR graph in the event-driven Numba simulator.

    Example: neurostack simulate model.nir --data fsdd:recordings --json out.json
    """
    from neurostack.simulate_cmd import run_simulate

    run_simulate(graph_path=graph_path, data=data, split=split, input_path=input_path, dt=dt,
                 convention=convention, reset=reset, spikes=spikes, precision=precision, limit=limit, parity_run=parity_run,
                 json_path=json_path, save_spikes=save_spikes, save_voltages=save_voltages, raster=raster,
                 cache_dir=cache_dir, echo=click.echo, report_sops=report_sops, target=target, plot=plot,
                 quantize=quantize)


# ------------------------------------------------------------------------------------------- targets
@main.command()
@click.argument("name", required=False)
@_user_errors
def targets(name):
    """List the neuromorphic targets with their key figures and sources, or show one (a name or .toml file)
    with every figure, its basis, confidence and source."""
    from rich.console import Console

    from neurostack.energy.listing import target_details, targets_table
    from neurostack.energy.targets import list_targets, load_target

    console = Console(width=160)
    console.print(target_details(load_target(name)) if name else targets_table(list_targets()))


if __name__ == "__main__":
    main()
