"""Acceptance: every NIR graph another tool wrote (shared/nir-graphs/<tool>/<model>/) reproduces that tool's own
spikes exactly, key for key of expected.npz ("output" aside), with the tool's convention.

No NIR file records the reset mode or the spikes per step, so both come from meta.json, as a user would pass
--reset / --spikes. The spikes mode is needed because Sinabs and Rockpool write byte-for-byte the same graph for
a multi-spike and a single-spike model (test_single_and_multi_spike_files_are_the_same_graph); with the
convention's default (multi, the tools' own default) the multi-spike fixtures pass without it.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from neurostack.sim import load_graph, lower, run
from sim_helpers import shared_root

ROOT = shared_root() / "nir-graphs"
FOLDERS = sorted(p for p in ROOT.glob("*/*") if (p / "graph.nir").is_file()) if ROOT.is_dir() else []
needs_fixtures = pytest.mark.skipif(not FOLDERS, reason=f"no peer fixtures under {ROOT} (set NEUROSTACK_SHARED)")


def _settings(meta: dict) -> tuple[str, str, str]:
    convention = "spec" if meta["tool"].startswith("handwritten") else meta["tool"]
    reset = "subtract" if meta.get("reset_mode", "").startswith("subtract") else "zero"
    spikes = "multi" if meta.get("spikes_per_step", "").startswith("multi") else "single"
    return convention, reset, spikes


def _differences(folder: Path, **lower_kw) -> dict[str, int]:
    loaded = load_graph(folder / "graph.nir")
    result = run(lower(loaded.graph, **lower_kw), np.load(folder / "input.npy"))
    expected = np.load(folder / "expected.npz")
    return {key: int(np.count_nonzero(result.outputs[key].reshape(expected[key].shape) != expected[key]))
            for key in expected.files if key != "output"}


@needs_fixtures
def test_all_eighteen_fixtures_are_here():
    assert len(FOLDERS) == 18, [str(p.relative_to(ROOT)) for p in FOLDERS]


@needs_fixtures
@pytest.mark.parametrize("folder", FOLDERS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_fixture_reproduced_spike_for_spike(folder: Path):
    meta = json.loads((folder / "meta.json").read_text())
    convention, reset, spikes = _settings(meta)
    diffs = _differences(folder, convention=convention, reset=reset, spikes=spikes)
    assert diffs and all(n == 0 for n in diffs.values()), f"entries differing per node: {diffs}"


@needs_fixtures
@pytest.mark.parametrize("folder", [p for p in FOLDERS if p.name in ("lif_mlp", "iaf_mlp", "conv_iaf_sumpool")
                                    and p.parent.name in ("rockpool", "sinabs")], ids=lambda p: p.name)
def test_multi_spike_fixtures_pass_with_the_convention_default(folder: Path):
    meta = json.loads((folder / "meta.json").read_text())
    convention, reset, _ = _settings(meta)
    assert all(n == 0 for n in _differences(folder, convention=convention, reset=reset).values())


@needs_fixtures
@pytest.mark.parametrize("multi,single", [("rockpool/lif_mlp", "rockpool/lif_mlp_singlespike"),
                                          ("sinabs/iaf_mlp", "sinabs/iaf_mlp_singlespike")])
def test_single_and_multi_spike_files_are_the_same_graph(multi: str, single: str):
    """Same nodes, parameters and input, different expected spikes: only --spikes can tell them apart."""
    a, b = load_graph(ROOT / multi / "graph.nir").graph, load_graph(ROOT / single / "graph.nir").graph
    assert sorted(a.nodes) == sorted(b.nodes) and sorted(a.edges) == sorted(b.edges)
    for name, node in a.nodes.items():
        for key, value in vars(node).items():
            if isinstance(value, np.ndarray):
                assert np.array_equal(value, getattr(b.nodes[name], key)), (name, key)
    assert np.array_equal(np.load(ROOT / multi / "input.npy"), np.load(ROOT / single / "input.npy"))
    ea, eb = np.load(ROOT / multi / "expected.npz"), np.load(ROOT / single / "expected.npz")
    assert any(not np.array_equal(ea[k], eb[k]) for k in ea.files)


@needs_fixtures
def test_spec_reading_of_the_norse_file_is_wrong_without_its_convention():
    """Norse 1.1.0's tau bug: the spec convention (tau taken literally) fires far more than the model did."""
    folder = ROOT / "norse" / "lifbox_mlp"
    diffs = _differences(folder, convention="spec")
    assert sum(diffs.values()) > 100
    assert all(n == 0 for n in _differences(folder, convention="norse").values())
