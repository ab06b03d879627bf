"""The tutorial notebooks in docs/notebooks/ run top to bottom (nbclient, a fresh kernel each), and
every cell tagged ``check-output`` prints what the saved notebook shows, numbers compared with a
tolerance that allows for another CPU's rounding. To refresh the saved outputs after editing a
notebook: ``python -m jupyter nbconvert --to notebook --execute --inplace docs/notebooks/NAME.ipynb``."""

from __future__ import annotations

import math
import os
import re
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")

REPO = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((REPO / "docs" / "notebooks").glob("*.ipynb"))
NUMBER = re.compile(r"[-+]?(?:\d[\d,]*\.?\d*(?:e[-+]?\d+)?|\.\d+)", re.I)
CELL_TIMEOUT = 300


def _text(cell) -> str:
    parts = []
    for out in cell.get("outputs", []):
        if out.get("output_type") == "stream" and out.get("name") == "stdout":
            parts.append(out["text"])
        elif out.get("output_type") in ("execute_result", "display_data"):
            parts.append(out.get("data", {}).get("text/plain", ""))
    return "".join(parts).strip()


def _close(a: str, b: str) -> bool:
    """Same text with the numbers equal up to 2e-3 (absolute or relative)."""
    if NUMBER.sub("#", a) != NUMBER.sub("#", b):
        return False
    for x, y in zip(NUMBER.findall(a), NUMBER.findall(b), strict=True):
        fx, fy = float(x.replace(",", "")), float(y.replace(",", ""))
        if not math.isclose(fx, fy, rel_tol=2e-3, abs_tol=2e-3):
            return False
    return True


def test_there_are_notebooks_and_they_carry_checks():
    assert len(NOTEBOOKS) >= 3
    for path in NOTEBOOKS:
        book = nbformat.read(path, as_version=4)
        checked = [c for c in book.cells if "check-output" in c.metadata.get("tags", [])]
        assert checked and all(_text(c) for c in checked), f"{path.name}: no saved output to check against"


def test_close_compares_numbers_with_tolerance():
    assert _close("p = 0.6321", "p = 0.6323") and not _close("p = 0.63", "p = 0.70")
    assert not _close("token '.'", "token ','") and _close("22,713,986 trainable", "22,713,986 trainable")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs_and_matches_its_saved_output(path, tmp_path, monkeypatch):
    saved = nbformat.read(path, as_version=4)
    book = nbformat.read(path, as_version=4)
    monkeypatch.setenv("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")
    monkeypatch.setenv("TOKENIZERS_PARALLELISM", "false")
    monkeypatch.setenv("OMP_NUM_THREADS", os.environ.get("OMP_NUM_THREADS", "1"))
    client = nbclient.NotebookClient(book, timeout=CELL_TIMEOUT, kernel_name="python3",
                                     resources={"metadata": {"path": str(tmp_path)}})
    client.execute()
    for before, after in zip(saved.cells, book.cells, strict=True):
        if "check-output" in before.metadata.get("tags", []):
            assert _close(_text(before), _text(after)), (
                f"{path.name}: cell\n{before.source}\nsaved:\n{_text(before)}\nnow:\n{_text(after)}")
