"""Every file neurostack writes goes through neurostack.atomic (temporary file + rename), so a kill leaves the old
file or the new one, never a half-written file that a later run trusts."""

from __future__ import annotations

import ast
import os
import signal
import time
from pathlib import Path

import numpy as np
import pytest

import neurostack
from neurostack.atomic import write_bytes, write_with
from reliability_helpers import simulate

PACKAGE = Path(neurostack.__file__).parent
WRITERS = {"save", "savez", "savez_compressed", "tofile", "savefig", "write", "save_file", "dump", "write_text",
           "write_bytes", "to_csv", "to_netcdf"}


def _mentions_tmp(call: ast.Call) -> bool:
    return any(isinstance(n, ast.Name) and n.id == "tmp" for a in [*call.args, *call.keywords] for n in ast.walk(a))


def test_every_writer_in_the_package_writes_to_an_atomic_temporary():
    offenders = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if path.name == "atomic.py":
            continue
        tree = ast.parse(path.read_text(), str(path))
        own = {n.name for n in ast.walk(tree) if isinstance(n, ast.FunctionDef)}  # e.g. cache.save: atomic inside
        atomic = {a.asname or a.name for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)
                  and n.module == "neurostack.atomic" for a in n.names}
        # calls to neurostack.atomic's writers, and what is computed for them (e.g. the bytes of safetensors' save)
        exempt = {id(inner) for n in ast.walk(tree) if isinstance(n, ast.Call) and isinstance(n.func, ast.Name)
                  and n.func.id in atomic for inner in ast.walk(n)}
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call) or id(node) in exempt:
                continue
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
            if isinstance(func, ast.Name) and name in own:
                continue
            if name == "open":
                mode = node.args[1] if len(node.args) > 1 else next((k.value for k in node.keywords if k.arg == "mode"),
                                                                     None)
                if isinstance(mode, ast.Constant) and any(c in str(mode.value) for c in "wax+"):
                    offenders.append(f"{path.relative_to(PACKAGE)}:{node.lineno} open(..., {mode.value!r})")
            elif name in WRITERS and not _mentions_tmp(node):
                if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name) and func.value.id in ("h5py",):
                    continue
                if name == "write" and not (isinstance(func, ast.Attribute) and getattr(func.value, "id", "") == "nir"):
                    continue  # file.write / os.write on a handle: only the writers above create files
                offenders.append(f"{path.relative_to(PACKAGE)}:{node.lineno} {ast.unparse(node)[:80]}")
    assert not offenders, "writes that bypass neurostack.atomic:\n" + "\n".join(offenders)


def test_a_failing_writer_leaves_the_old_file_and_no_temporary(tmp_path):
    target = tmp_path / "report.json"
    target.write_text("old")

    def half_then_fail(tmp: Path) -> None:
        tmp.write_text("half a rep")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        write_with(target, half_then_fail)
    assert target.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["report.json"]


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_a_kill_in_the_middle_of_a_write_leaves_the_old_file(tmp_path):
    target = tmp_path / "weights.bin"
    write_bytes(target, b"old" * 1000)
    pid = os.fork()
    if pid == 0:  # the writer: half the data, then it hangs until killed
        def slow(tmp: Path) -> None:
            with open(tmp, "wb") as fh:
                fh.write(b"new" * 500)
                fh.flush()
                time.sleep(60)

        try:
            write_with(target, slow)
        finally:
            os._exit(0)
    deadline = time.monotonic() + 20
    while not any(p.name.startswith(".weights.bin.tmp-") and p.stat().st_size for p in tmp_path.iterdir()):
        assert time.monotonic() < deadline
        time.sleep(0.01)
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    assert target.read_bytes() == b"old" * 1000


def test_simulate_outputs_are_whole_files_with_the_names_given(tmp_path):
    import json

    import nir

    from reliability_helpers import lif

    path = tmp_path / "g.nir"
    nir.write(str(path), nir.NIRGraph.from_list(nir.Affine(np.ones((3, 2)), np.zeros(3)), lif(3)))
    np.save(tmp_path / "x.npy", np.ones((5, 2)))
    result = simulate(path, tmp_path / "x.npy", "--json", tmp_path / "out" / "r.json", "--save-spikes",
                      tmp_path / "out" / "s.npz", "--save-voltages", tmp_path / "out" / "v.npz")
    assert result.exit_code == 0, result.output
    assert json.loads((tmp_path / "out" / "r.json").read_text())["samples"] == 1
    with np.load(tmp_path / "out" / "s.npz") as z:
        assert z[sorted(z.files)[0]].shape[0] == 5
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["r.json", "s.npz", "v.npz"]


@pytest.mark.parametrize("option,name,phrase", [
    ("--save-spikes", "spikes.dat", "must end in .npz"),  # numpy would add .npz to the temporary: an empty file
    ("--save-voltages", "v", "must end in .npz"),
    ("--raster", "r.dat", "must end in .png"),
    ("--plot", "p.txt", "must end in .png"),
    ("--json", "x.npy/r.json", "is not a folder"),
])
def test_output_names_that_could_not_be_written_are_refused_before_the_run(tmp_path, option, name, phrase):
    import nir

    from reliability_helpers import assert_clean_error, lif

    path = tmp_path / "g.nir"
    nir.write(str(path), nir.NIRGraph.from_list(nir.Affine(np.ones((3, 2)), np.zeros(3)), lif(3)))
    np.save(tmp_path / "x.npy", np.ones((5, 2)))
    assert_clean_error(simulate(path, tmp_path / "x.npy", option, tmp_path / name), option, contains=phrase)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["g.nir", "x.npy"]
