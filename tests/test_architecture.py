"""The layer contracts in pyproject.toml hold, and they can fail: an upward import planted in a copy of the package
breaks them."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LINT = Path(sys.executable).with_name("lint-imports")


def _lint(root: Path) -> subprocess.CompletedProcess:
    return subprocess.run([str(LINT), "--config", str(root / "pyproject.toml"), "--no-cache"], cwd=root,
                          capture_output=True, text=True, timeout=300,
                          env={"PYTHONPATH": str(root), "PATH": "/usr/bin:/bin"})


def test_the_package_keeps_its_layer_contracts():
    done = _lint(ROOT)
    assert done.returncode == 0, done.stdout[-3000:]
    assert "Contracts: 3 kept, 0 broken." in done.stdout


def test_an_upward_import_or_a_cycle_breaks_the_contracts(tmp_path):
    """A runner importing the CLI (an upward edge) and two modules of one package importing each other each fail
    the check, naming the edge."""
    for planted, where, expected in (
            ("import export_kit.cli.app\n", "runners/base.py", "export_kit.runners.base -> export_kit.cli.app"),
            ("import export_kit.model.io\n", "model/axes.py", "No cycles are allowed in export_kit.model"),
            ("import typer\n", "folder/layout.py", "export_kit.folder.layout -> typer")):
        copy = tmp_path / where.replace("/", "_")
        shutil.copytree(ROOT / "export_kit", copy / "export_kit", ignore=shutil.ignore_patterns("__pycache__"))
        shutil.copy(ROOT / "pyproject.toml", copy)
        module = copy / "export_kit" / where
        module.write_text(module.read_text() + planted)
        done = _lint(copy)
        assert done.returncode == 1 and expected in done.stdout, (where, done.stdout[-3000:])
