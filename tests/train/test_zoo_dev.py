"""benchmarks/zoo.py's fsdd-dev rows: FSDD without the test speaker, to choose options without looking at it."""

import importlib.util
from pathlib import Path

ZOO = Path(__file__).resolve().parents[2] / "benchmarks" / "zoo.py"


def _zoo():
    spec = importlib.util.spec_from_file_location("zoo_bench", ZOO)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_dev_folder_links_every_speaker_but_the_test_one(tmp_path):
    src = tmp_path / "fsdd"
    src.mkdir()
    names = [f"{d}_{s}_{i}.wav" for d in (0, 1) for s in ("george", "lucas", "theo") for i in (0, 1)]
    for n in names + ["README.md"]:
        (src / n).write_bytes(b"x")
    folder = _zoo().dev_folder(src, "george", tmp_path / "runs")
    linked = sorted(p.name for p in folder.iterdir())
    assert linked == sorted(n for n in names if "_george_" not in n)
    assert all((folder / n).resolve() == (src / n).resolve() for n in linked)
    assert _zoo().dev_folder(src, "george", tmp_path / "runs") == folder  # idempotent


def test_seed_summary_means_each_model_over_the_same_seeds_as_the_mlp():
    def row(model, seed, acc, name=None):
        return {"name": name or f"fsdd-speaker-george-{model}-s{seed}", "data": "fsdd", "split": "speaker:george",
                "model": model, "seed": seed, "test_accuracy": acc}

    rows = [row("mlp", 0, 0.60), row("mlp", 1, 0.70), row("adlif", 0, 0.62), row("adlif", 1, 0.70),
            row("delay", 0, 0.70), row("delay", 1, 0.50), row("csnn", 0, 0.9),
            row("adlif", 0, 0.99, name="fsdd-speaker-george-adlif-s0~no-augment")]
    lines = _zoo().seed_summary(rows)
    table = {ln.split("|")[1].strip(): [c.strip() for c in ln.split("|")[2:-1]] for ln in lines if ln.startswith("| ")}
    assert table["mlp"] == ["0.600", "0.700", "0.650", "(baseline)"]
    assert table["adlif"] == ["0.620", "0.700", "0.660", "+0.010 (beats it)"]  # the ablation row is not counted
    assert table["delay"][2:] == ["0.600", "-0.050 (does not beat it)"]
    assert table["csnn"] == ["0.900", "-", "-", "-"]  # a missing seed: no mean
    assert _zoo().seed_summary([row("mlp", 0, 0.6)]) == []  # one seed: nothing to average
