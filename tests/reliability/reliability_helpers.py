"""Helpers for the bad-input tests (imported as `reliability_helpers`; pytest puts this folder on sys.path).

Every bad input must end the same way: exit code 2, exactly one line starting with ``error:`` that names the
file, no traceback, and nothing raised out of the command (CliRunner catches any exception, which would show
up as ``result.exception`` other than SystemExit).
"""

from __future__ import annotations

from pathlib import Path

import nir
import numpy as np
import soundfile as sf
from click.testing import CliRunner

from neurostack.cli import main


def invoke(*args, env: dict | None = None):
    """Run `neurostack ARGS` in-process; exceptions are caught (and then fail `assert_clean_error`)."""
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=True, env=env)


def error_lines(result) -> list[str]:
    return [line for line in result.output.splitlines() if line.startswith("error:")]


def assert_clean_error(result, *names: str | Path, contains: str | None = None) -> str:
    """Exit 2 with one `error:` line naming each of `names` (and `contains`); returns that line."""
    exc = result.exception
    assert exc is None or isinstance(exc, SystemExit), f"raised {type(exc).__name__}: {exc}\n{result.output}"
    assert "Traceback" not in result.output, result.output
    assert result.exit_code == 2, f"exit code {result.exit_code}\n{result.output}"
    lines = error_lines(result)
    assert len(lines) == 1, result.output
    for name in names:
        assert str(name) in lines[0], f"{name} not named in: {lines[0]}"
    if contains is not None:
        assert contains in lines[0], f"{contains!r} not in: {lines[0]}"
    return lines[0]


def assert_ok_or_clean_error(result, *names: str | Path) -> None:
    """Either the command worked (exit 0) or it failed cleanly naming the file (fuzzed files may still be valid)."""
    exc = result.exception
    assert exc is None or isinstance(exc, SystemExit), f"raised {type(exc).__name__}: {exc}\n{result.output}"
    assert "Traceback" not in result.output, result.output
    if result.exit_code != 0:
        assert_clean_error(result, *names)


# ------------------------------------------------------------------------------------------------ NIR graphs
def lif(shape, tau=0.01, th=0.5) -> nir.LIF:
    full = lambda v: np.full(shape, v, np.float32)
    return nir.LIF(tau=np.full(shape, tau), r=full(1.0), v_leak=full(0.0), v_threshold=full(th), v_reset=full(0.0))


def rich_graph() -> nir.NIRGraph:
    """A small valid graph touching most node kinds: conv, pool, flatten, affine, LIF, CubaLIF, scale, LI."""
    rng = np.random.default_rng(0)
    n = 5
    nodes = {
        "input": nir.Input(input_type={"input": np.array([1, 6, 6])}),
        "conv": nir.Conv2d(input_shape=(6, 6), weight=rng.normal(0.5, 1, (2, 1, 3, 3)).astype(np.float32),
                           stride=1, padding=1, dilation=1, groups=1, bias=np.zeros(2, np.float32)),
        "lif1": lif((2, 6, 6)),
        "pool": nir.SumPool2d(kernel_size=np.array([2, 2]), stride=np.array([2, 2]), padding=np.array([0, 0])),
        "flat": nir.Flatten(input_type={"input": np.array([2, 3, 3])}, start_dim=0, end_dim=-1),
        "fc": nir.Affine(rng.normal(0.3, 1, (n, 18)).astype(np.float32), np.zeros(n, np.float32)),
        "cuba": nir.CubaLIF(tau_mem=np.full(n, 0.02), tau_syn=np.full(n, 0.005), r=np.ones(n), v_leak=np.zeros(n),
                            v_threshold=np.full(n, 0.3), v_reset=np.zeros(n), w_in=np.ones(n)),
        "scale": nir.Scale(scale=np.full(n, 0.5, np.float32)),
        "fc_out": nir.Linear(rng.normal(0, 1, (3, n)).astype(np.float32)),
        "li": nir.LI(tau=np.full(3, 0.02), r=np.ones(3), v_leak=np.zeros(3)),
        "output": nir.Output(output_type={"output": np.array([3])}),
    }
    names = list(nodes)
    return nir.NIRGraph(nodes=nodes, edges=list(zip(names, names[1:])), metadata={})


def write_graph(path: Path, graph: nir.NIRGraph | None = None) -> Path:
    nir.write(str(path), graph if graph is not None else rich_graph())
    return path


def rich_input(path: Path, n: int = 2, steps: int = 6) -> Path:
    x = (np.random.default_rng(1).random((n, steps, 1, 6, 6)) < 0.4).astype(np.float32)
    np.save(path, x)
    return path


def simulate(graph: Path, inputs: Path, *extra, env: dict | None = None):
    return invoke("simulate", graph, "--input", inputs, "--dt", "1e-3", *extra, env=env)


# ------------------------------------------------------------------------------------------------ audio
def tone(seconds: float = 0.4, sr: int = 8000, freq: float = 440.0, amp: float = 0.5, seed: int = 0) -> np.ndarray:
    t = np.arange(int(seconds * sr)) / sr
    noise = np.random.default_rng(seed).normal(0, 0.01, t.size)
    return (amp * np.sin(2 * np.pi * freq * t) + noise).astype(np.float32)


def fsdd_folder(root: Path, digits=(0, 1), indices=(0, 5, 10, 11)) -> Path:
    """A minimal FSDD folder with every split populated (index 0-4 test, 5-9 val, 10+ train)."""
    root.mkdir(parents=True, exist_ok=True)
    for d in digits:
        for i in indices:
            sf.write(root / f"{d}_ann_{i}.wav", tone(freq=300 + 400 * d, seed=i), 8000)
    return root
