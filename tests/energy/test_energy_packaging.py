"""The built-in targets ship in the wheel: pyproject lists every package and maps targets/ into neurostack."""

from __future__ import annotations

from pathlib import Path

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[2]


def test_pyproject_lists_every_package_and_maps_targets():
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    on_disk = {".".join(p.parent.relative_to(ROOT).parts) for p in (ROOT / "neurostack").rglob("__init__.py")}
    listed = set(config["packages"])
    assert on_disk <= listed, f"add {sorted(on_disk - listed)} to [tool.setuptools] packages in pyproject.toml"
    assert config["package-dir"]["neurostack.targets"] == "targets"
    assert "*.toml" in config["package-data"]["neurostack.targets"]
    assert sorted((ROOT / "targets").glob("*.toml"))
