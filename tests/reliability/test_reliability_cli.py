"""Bad command-line arguments: exit code 2 and a message naming the argument, never a traceback.

Values click itself rejects (types, ranges, paths, unknown options) and values neurostack checks both get one
`error:` line; click's usage errors also point at the command's --help.
"""

from __future__ import annotations

import pytest

from reliability_helpers import assert_clean_error, invoke, simulate


def assert_usage_error(result, option: str) -> None:
    exc = result.exception
    assert exc is None or isinstance(exc, SystemExit), f"raised {type(exc).__name__}: {exc}"
    assert result.exit_code == 2 and "Traceback" not in result.output, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.output
    assert option in lines[0] and "--help" in lines[0], result.output


@pytest.mark.parametrize("args,phrase", [
    (["--dt", "nan"], "dt must be a positive number"),
    (["--dt", "inf"], "dt must be a positive number"),
    (["--dt", "1e300"], "out of the range of float32"),
    (["--dt", "1e-300"], "out of the range of float32"),
    (["--convention", "brian2"], "unknown convention 'brian2'"),
    (["--target", "no-such-chip", "--report-sops"], "unknown target 'no-such-chip'"),
])
def test_simulate_values_neurostack_checks(graph_and_input, args, phrase):
    path, inputs = graph_and_input
    assert_clean_error(simulate(path, inputs, *args), contains=phrase)


@pytest.mark.parametrize("args,option", [
    (["--limit", "0"], "--limit"),
    (["--dt", "-1"], "--dt"),
    (["--dt", "fast"], "--dt"),
    (["--precision", "float16"], "--precision"),
    (["--reset", "soft"], "--reset"),
    (["--no-such-option"], "--no-such-option"),
])
def test_simulate_values_click_checks(graph_and_input, args, option):
    path, inputs = graph_and_input
    assert_usage_error(simulate(path, inputs, *args), option)


def test_simulate_input_that_is_a_folder_and_a_target_file_that_is_not_toml(graph_and_input, tmp_path):
    path, inputs = graph_and_input
    assert_usage_error(invoke("simulate", path, "--input", tmp_path), "--input")
    assert_clean_error(simulate(path, inputs, "--target", inputs), inputs)


def test_simulate_without_any_input(graph_and_input):
    path, _ = graph_and_input
    assert_clean_error(invoke("simulate", path), path, contains="pass --data or --input")


@pytest.mark.parametrize("args,phrase", [
    (["--hidden", "0"], "--hidden '0'"),
    (["--hidden", "a,b"], "--hidden 'a,b'"),
    (["--split", "speaker:nobody"], "nobody"),
    (["--data", "fsdd:"], "unknown dataset"),
    (["--data", "shd:/no/such/folder"], "/no/such/folder"),
    (["--surrogate", "magic"], "magic"),
])
def test_train_values_neurostack_checks(tmp_path, trained_run, args, phrase):
    _, cache = trained_run
    data = ["--data", f"fsdd:{tmp_path / 'nothing'}"] if "--data" not in args else []
    if "--split" in args or "--hidden" in args or "--surrogate" in args:
        from reliability_helpers import fsdd_folder

        data = ["--data", f"fsdd:{fsdd_folder(tmp_path / 'fsdd')}"]
    result = invoke("train", *data, *args, "--epochs", "1", "--out", tmp_path / "run", "--cache-dir", cache)
    assert_clean_error(result, contains=phrase)
    assert not (tmp_path / "run" / "config.json").exists()


@pytest.mark.parametrize("args,option", [
    (["--epochs", "0"], "--epochs"),
    (["--batch-size", "-3"], "--batch-size"),
    (["--lr", "0"], "--lr"),
    (["--n-bins", "1000"], "--n-bins"),
    (["--dropout", "1.5"], "--dropout"),
    (["--view", "hologram"], "--view"),
])
def test_train_values_click_checks(tmp_path, args, option):
    assert_usage_error(invoke("train", *args, "--out", tmp_path / "run"), option)


def test_resume_and_export_of_missing_runs(tmp_path):
    assert_clean_error(invoke("train", "--out", tmp_path / "none", "--resume"), tmp_path / "none")
    assert_clean_error(invoke("export", tmp_path / "none", "-o", tmp_path / "m.nir"), tmp_path / "none")
    (tmp_path / "empty").mkdir()
    assert_clean_error(invoke("export", tmp_path / "empty", "-o", tmp_path / "m.nir"), tmp_path / "empty",
                       contains="no config.json")
