"""The model zoo benchmark: train every model on synth-digits and FSDD, write a markdown results table.

    python benchmarks/zoo.py --fsdd ../shared/data/fsdd/recordings --out results.md
    python benchmarks/zoo.py --fsdd PATH --models mlp,adlif --datasets fsdd --epochs 5 --out quick.md
    python benchmarks/zoo.py --fsdd PATH --ablation --out ablation.md     # also: with / without augmentation

For each data set (synth-digits; FSDD standard split; FSDD speaker split, test speaker `--speaker`) and each
model (`neurostack.frontend.models.MODELS`, each with its `train` defaults), it trains a run exactly as
`neurostack train` would (run directories under --runs), then reports test accuracy, parameters, spikes,
SOPs and dense MACs per inference (on the test set, `neurostack.train.activity`), seconds per epoch and
the whole training time. `--ablation` adds, on the FSDD speaker split, each model trained without
augmentation (`--no-augment`) and without any regularisation (no augmentation, dropout 0, weight decay 0).
`--datasets fsdd-dev` is the place to choose options for the speaker split without looking at its test speaker:
FSDD without the test speaker (a folder of links under --runs), each of `--dev-speakers` held out in turn and
trained on the rest (`neurostack train --data fsdd:THAT_FOLDER --split speaker:DEV`).
Everything is seeded from --seed (same numbers on the CPU for the same seed and torch version); `--seeds 0,1,2`
trains every run once per seed and adds, for the FSDD speaker split, each model's accuracy per seed and its mean
over the seeds, compared with the mlp's mean over the same seeds (one test voice is noisy: a seed-to-seed
spread of several points). The table is
rewritten after each run, so an interrupted benchmark keeps what it finished; finished runs are reused.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from neurostack.atomic import write_text  # noqa: E402
from neurostack.frontend.models import MODELS  # noqa: E402

# The baseline the speaker split must beat (issue 5): the default mlp, --split speaker:george, seed 0, with the
# current code (0.692 on seed 1: mean 0.681; benchmarks/zoo_results.md).
MLP_SPEAKER_BASELINE = 0.670

VARIANTS = {
    "default": {},
    "no-augment": {"augment": False},
    "no-regularisation": {"augment": False, "dropout": 0.0, "weight_decay": 0.0},
}


def _options(data: str, split: str, model: str, seed: int, epochs: int | None, device: str, cache_dir, variant: str):
    opts = dict(data=data, split=split, model_name=model, epochs=epochs, batch_size=64, lr=None, hidden=None,
                view=None, encoder="none", steps=None, steps_per_frame=1, feature_kind="mel", n_bins=40,
                surrogate="atan", device=device, seed=seed, cache_dir=cache_dir)
    opts.update(VARIANTS[variant])
    return opts


def dev_folder(fsdd: Path, exclude: str, runs: Path) -> Path:
    """A folder of links to the FSDD recordings of every speaker but `exclude` (for the fsdd-dev rows)."""
    folder = runs / f"_fsdd-without-{exclude}"
    folder.mkdir(parents=True, exist_ok=True)
    for f in sorted(Path(fsdd).iterdir()):
        parts = f.name.split("_")
        if f.suffix.lower() == ".wav" and len(parts) == 3 and parts[1] != exclude and not (folder / f.name).exists():
            (folder / f.name).symlink_to(f.resolve())
    return folder


def data_source(data: str) -> str:
    """The data set a --data value names in the table: fsdd-dev for a dev_folder, else the part before ':'."""
    return "fsdd-dev" if "_fsdd-without-" in data else data.split(":")[0]


def _activity(run_dir: Path, data, limit: int) -> dict:
    from neurostack.inputs import encode_for_eval
    from neurostack.train.activity import count_activity
    from neurostack.train.inputs import to_time_major
    from neurostack.train.rundir import load_trained_model

    cfg, model = load_trained_model(run_dir)
    x = data.x["test"][:limit]
    totals, n = {"spikes": 0.0, "sops": 0.0, "macs": 0.0}, 0
    for _, xb in encode_for_eval(x, cfg.input_spec(), cfg.seed, cfg.model.input_shape, batch_size=128):
        a = count_activity(model, to_time_major(xb, torch.device("cpu")))
        for k in totals:
            totals[k] += a[k] * len(xb)
        n += len(xb)
    return {k: v / max(n, 1) for k, v in totals.items()}


def run_one(name: str, opts: dict, runs: Path, limit: int | None, activity_limit: int) -> dict:
    """Train (or reuse a finished run) and measure it; returns the table row."""
    from rich.console import Console

    from neurostack.train.rundir import RunPaths, read_config
    from neurostack.train.session import load_data, run_training

    out = runs / name
    paths = RunPaths(out)
    t0 = time.perf_counter()
    if paths.metrics.is_file():
        metrics = json.loads(paths.metrics.read_text())
    elif paths.config.is_file():  # interrupted: continue it
        metrics = run_training(out=out, resume=True, limit=limit, console=Console(stderr=True), **opts)
    else:
        metrics = run_training(out=out, resume=False, limit=limit, console=Console(stderr=True), **opts)
    cfg = read_config(paths)
    data = load_data(cfg, limit=limit, progress=False)
    act = _activity(out, data, activity_limit)
    return {"name": name, "data": data_source(opts["data"]), "split": opts["split"], "model": opts["model_name"], "seed": opts["seed"],
            "test_accuracy": metrics["test_accuracy"], "val_accuracy": metrics["val_accuracy"],
            "params": metrics["params"], "epochs": len(metrics["history"]), "best_epoch": metrics["best_epoch"],
            "epoch_seconds": float(np.mean([h["seconds"] for h in metrics["history"]])),
            "train_seconds": metrics["train_seconds"], "view": cfg.view, "steps": cfg.steps,
            "augment": ",".join(cfg.augment.active()) or "none", "wall_seconds": round(time.perf_counter() - t0, 1),
            **act}


def _fmt_int(x: float) -> str:
    return f"{x:,.0f}" if x >= 100 else f"{x:.1f}"


def seed_summary(rows: list[dict]) -> list[str]:
    """Markdown lines: per (data, split) of the speaker split and model, the test accuracy per seed and its mean,
    and whether it beats the mlp's mean over the same seeds (default variants only; none without two seeds)."""
    groups: dict[tuple[str, str], dict[str, dict[int, float]]] = {}
    for r in rows:
        if r["split"].startswith("speaker") and "~" not in r["name"]:
            groups.setdefault((r["data"], r["split"]), {}).setdefault(r["model"], {})[r["seed"]] = r["test_accuracy"]
    lines: list[str] = []
    for (data, split), models in groups.items():
        seeds = sorted({s for acc in models.values() for s in acc})
        if len(seeds) < 2:
            continue
        mlp = models.get("mlp", {})
        mlp_mean = float(np.mean([mlp[s] for s in seeds])) if all(s in mlp for s in seeds) else None
        lines += ["", f"### {data} {split}: test accuracy per seed and mean", "",
                  "| model | " + " | ".join(f"seed {s}" for s in seeds) + " | mean | vs the mlp's mean |",
                  "|---|" + "---|" * (len(seeds) + 2)]
        for model, acc in models.items():
            cells = [f"{acc[s]:.3f}" if s in acc else "-" for s in seeds]
            full = all(s in acc for s in seeds)
            mean = float(np.mean([acc[s] for s in seeds])) if full else None
            if model == "mlp" or mean is None or mlp_mean is None:
                verdict = "(baseline)" if model == "mlp" else "-"
            else:
                verdict = f"{mean - mlp_mean:+.3f} ({'beats it' if mean > mlp_mean else 'does not beat it'})"
            lines.append(f"| {model} | " + " | ".join(cells) + f" | {'-' if mean is None else f'{mean:.3f}'} | {verdict} |")
    return lines


def write_table(rows: list[dict], path: Path, args) -> None:
    lines = [
        "# neurostack model zoo",
        "",
        f"Seeds {','.join(str(s) for s in args.seeds)}, epochs {args.epochs or 'model default (30)'}, device {args.device} "
        f"({torch.get_num_threads()} threads, {platform.processor() or platform.machine()}), torch {torch.__version__}. "
        f"Spikes, SOPs (synaptic accumulates triggered by events) and MACs (dense input/readout layers) are per "
        f"inference on the test set (`neurostack.train.activity`). Seconds per epoch include the validation pass.",
        "",
        "| data | split | model | seed | variant | test acc | val acc | params | spikes/inf | SOPs/inf | MACs/inf "
        "| s/epoch | epochs (best) | train s | view, steps | augmentation |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        variant = r["name"].rsplit("~", 1)[-1] if "~" in r["name"] else "default"
        lines.append(
            f"| {r['data']} | {r['split']} | {r['model']} | {r['seed']} | {variant} | {r['test_accuracy']:.3f} | {r['val_accuracy']:.3f} "
            f"| {r['params']:,} | {_fmt_int(r['spikes'])} | {_fmt_int(r['sops'])} | {_fmt_int(r['macs'])} "
            f"| {r['epoch_seconds']:.1f} | {r['epochs']} ({r['best_epoch']}) | {r['train_seconds']:.0f} "
            f"| {r['view']}, {r['steps'] if r['view'] == 'image' else 'frames'} | {r['augment']} |")
    speaker = [r for r in rows if r["data"] == "fsdd" and r["split"].startswith("speaker") and "~" not in r["name"]
               and r["seed"] == 0]
    if speaker:
        lines += ["", f"Speaker split: the mlp baseline of issue 5 is {MLP_SPEAKER_BASELINE:.3f} "
                      f"(the default mlp, speaker:george, seed 0). "
                  + ", ".join(f"{r['model']} {r['test_accuracy']:.3f}"
                              f"{' (beats it)' if r['test_accuracy'] > MLP_SPEAKER_BASELINE else ''}" for r in speaker)
                  + "."]
    lines += seed_summary(rows)
    ablation = [r for r in rows if "~" in r["name"]]
    if ablation:
        lines += ["", "## Ablation: regularisation on the FSDD speaker split (test accuracy)", "",
                  "| model | default (augmentation + dropout + weight decay) | no augmentation | "
                  "no augmentation, dropout or weight decay |", "|---|---|---|---|"]
        by_model: dict[str, dict[str, float]] = {}
        for r in rows:
            if r["data"] == "fsdd" and r["split"].startswith("speaker") and r["seed"] == args.seeds[0]:
                variant = r["name"].rsplit("~", 1)[-1] if "~" in r["name"] else "default"
                by_model.setdefault(r["model"], {})[variant] = r["test_accuracy"]
        for model, acc in by_model.items():
            cells = [f"{acc[v]:.3f}" if v in acc else "-" for v in VARIANTS]
            lines.append(f"| {model} | " + " | ".join(cells) + " |")
    write_text(path, "\n".join(lines) + "\n")  # atomically: an interrupted run never leaves half a table


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--fsdd", type=Path, default=None, help="FSDD recordings folder (FSDD rows are skipped without it)")
    p.add_argument("--speaker", default="george", help="test speaker of the FSDD speaker split")
    p.add_argument("--models", default=",".join(MODELS), help="comma separated subset of the models")
    p.add_argument("--datasets", default="synth-digits,fsdd,fsdd-speaker",
                   help="comma separated subset of synth-digits, fsdd, fsdd-speaker, fsdd-dev (see above)")
    p.add_argument("--dev-speakers", default="lucas,nicolas",
                   help="fsdd-dev: the speakers held out in turn (FSDD without --speaker)")
    p.add_argument("--epochs", type=int, default=None, help="epochs per run [default: each model's default, 30]")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--seeds", default=None, help="comma separated seeds, each run once per seed [default: --seed]")
    p.add_argument("--ablation", action="store_true", help="also train without augmentation / regularisation")
    p.add_argument("--limit", type=int, default=None, help="at most N samples per split (a quick smoke run)")
    p.add_argument("--activity-samples", type=int, default=256, help="test samples to count spikes and SOPs on")
    p.add_argument("--device", default="cpu")
    p.add_argument("--cache-dir", default=None)
    p.add_argument("--runs", type=Path, default=Path("runs/zoo"), help="where the run directories go")
    p.add_argument("--out", type=Path, default=Path("results.md"))
    args = p.parse_args(argv)

    args.seeds = [int(x) for x in args.seeds.split(",") if x.strip()] if args.seeds else [args.seed]
    models = [m.strip() for m in args.models.split(",") if m.strip()]
    unknown = [m for m in models if m not in MODELS]
    if unknown:
        p.error(f"unknown model(s) {', '.join(unknown)}; choose from {', '.join(MODELS)}")
    datasets = [d.strip() for d in args.datasets.split(",") if d.strip()]
    jobs: list[tuple[str, str, str, str]] = []  # (data, split, model, variant)
    for d in datasets:
        if d == "synth-digits":
            jobs += [("synth-digits", "standard", m, "default") for m in models]
        elif d == "fsdd-dev":
            if args.fsdd is None:
                print(f"skipping {d}: no --fsdd folder given", file=sys.stderr)
                continue
            folder = dev_folder(args.fsdd, args.speaker, args.runs)
            jobs += [(f"fsdd:{folder}", f"speaker:{dev.strip()}", m, "default")
                     for dev in args.dev_speakers.split(",") if dev.strip() for m in models]
        elif d in ("fsdd", "fsdd-speaker"):
            if args.fsdd is None:
                print(f"skipping {d}: no --fsdd folder given", file=sys.stderr)
                continue
            split = "standard" if d == "fsdd" else f"speaker:{args.speaker}"
            jobs += [(f"fsdd:{args.fsdd}", split, m, "default") for m in models]
            if d == "fsdd-speaker" and args.ablation:
                jobs += [(f"fsdd:{args.fsdd}", split, m, v) for m in models for v in VARIANTS if v != "default"]
        else:
            p.error(f"unknown data set {d}")
    torch.manual_seed(args.seeds[0])
    rows = []
    for seed, (data, split, model, variant) in [(s, job) for s in args.seeds for job in jobs]:
        tag = f"{data_source(data)}-{split.replace(':', '-')}-{model}-s{seed}"
        name = tag if variant == "default" else f"{tag}~{variant}"
        print(f"== {name}", file=sys.stderr, flush=True)
        opts = _options(data, split, model, seed, args.epochs, args.device, args.cache_dir, variant)
        rows.append(run_one(name, opts, args.runs, args.limit, args.activity_samples))
        write_table(rows, args.out, args)
        print(json.dumps({k: v for k, v in rows[-1].items() if k != "name"}), file=sys.stderr, flush=True)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
