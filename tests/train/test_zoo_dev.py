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
