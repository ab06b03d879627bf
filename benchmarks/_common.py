"""Helpers shared by the benchmark scripts: tables, JSON with machine facts, paths."""

from __future__ import annotations

import datetime as dt
import json
import os
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results"
DEFAULT_SST2 = os.environ.get("ATTNLAB_SST2_DIR") or str(REPO.parent / "shared" / "datasets" / "sst2")


def table(rows: list[dict[str, Any]], columns: list[tuple[str, str, str]]) -> str:
    """Markdown table; columns are (key, title, format spec)."""
    head = "| " + " | ".join(t for _, t, _ in columns) + " |"
    sep = "|" + "|".join("---" for _ in columns) + "|"
    body = []
    for r in rows:
        cells = []
        for key, _, spec in columns:
            v = r.get(key)
            cells.append("n/a" if v is None else format(v, spec) if spec else str(v))
        body.append("| " + " | ".join(cells) + " |")
    return "\n".join([head, sep, *body])


def write_results(name: str, payload: dict[str, Any], file_stem: str | None = None) -> Path:
    """Write ``benchmarks/results/<file_stem or name>.json`` (``ATTNLAB_RESULTS_DIR`` overrides the folder)."""
    from attnlab.training.rundir import hardware, library_versions, write_json_atomic

    payload = {"benchmark": name, "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
               "command": " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]),
               "hardware": hardware(), "versions": library_versions(),
               # other work on the machine distorts timings: record how busy it was when the numbers were written
               "load_average": list(os.getloadavg()) if hasattr(os, "getloadavg") else None, **payload}
    path = Path(os.environ.get("ATTNLAB_RESULTS_DIR") or RESULTS) / f"{file_stem or name}.json"
    write_json_atomic(path, payload)
    return path


def load_results(name: str) -> dict[str, Any]:
    return json.loads((RESULTS / f"{name}.json").read_text())
