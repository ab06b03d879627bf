"""The layering of DESIGN.md holds: every import-linter contract in pyproject.toml is kept.

``lint-imports`` reads the contracts from ``[tool.importlinter]`` and checks every import, those
inside functions included. Run it by hand to see which arrow broke and where."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def _lint_imports() -> str | None:
    beside = Path(sys.executable).with_name("lint-imports")  # the one of this interpreter's environment
    return str(beside) if beside.is_file() else shutil.which("lint-imports")


def test_import_contracts_are_kept():
    exe = _lint_imports()
    if exe is None:
        pytest.skip("import-linter is not installed (pip install -e '.[dev]')")
    # --no-cache: nothing is written into the repository
    proc = subprocess.run([exe, "--no-cache", "--no-logo", str(REPO / "pyproject.toml")], cwd=REPO,
                          capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    assert "0 broken" in proc.stdout
