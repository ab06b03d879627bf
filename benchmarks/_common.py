"""Helpers shared by the benchmark scripts: command-line flags, the quick run, JSON with machine facts, paths.

Tables are written by ``attnlab.evaluation.tables`` (which also reads the JSON back)."""

from __future__ import annotations

import argparse
import datetime as dt
import os
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results"
DEFAULT_SST2 = os.environ.get("ATTNLAB_SST2_DIR") or str(REPO.parent / "shared" / "datasets" / "sst2")


def add_budget_args(p: argparse.ArgumentParser, runs_dir: str, *, epochs: float = 1.0,
                    max_train_samples: int | None = 4000) -> None:
    """The SST-2 data and training-budget flags the study benchmarks share."""
    p.add_argument("--data-dir", default=DEFAULT_SST2)
    p.add_argument("--epochs", type=float, default=epochs)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--max-train-samples", type=int, default=max_train_samples,
                   help="stratified subset; 0 = all 67,349 rows")
    p.add_argument("--max-eval-samples", type=int, default=0, help="stratified validation/test subsets; 0 = all")
    p.add_argument("--precision", default="auto")
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--runs-dir", default=runs_dir)


def sst2_config(data_dir: str, **settings: Any):
    """A TrainConfig on SST-2 that runs its whole budget: early stopping off unless ``settings`` say."""
    from attnlab.training import TrainConfig

    return TrainConfig.from_sources(None, **({"data": "sst2", "data_dir": data_dir,
                                               "early_stopping_patience": None} | settings))


def add_quick_run_args(p: argparse.ArgumentParser, *, runs_dir: str, runs_dir_help: str, train_rows: int,
                       run_help: str = "a finished run directory") -> None:
    """``--run`` or, without it, the flags of the quick LoRA run trained in its place (``open_quick_run``)."""
    p.add_argument("--run", help=f"{run_help} (default: train a quick LoRA run)")
    p.add_argument("--data-dir", default=DEFAULT_SST2)
    p.add_argument("--runs-dir", default=runs_dir, help=runs_dir_help)
    p.add_argument("--train-rows", type=int, default=train_rows, help="rows for the quick run")
    p.add_argument("--retrain", action="store_true", help="retrain the quick run even if it exists")


def open_quick_run(a: argparse.Namespace):
    """The run ``--run`` names, or the quick LoRA run (trained now unless it already finished)."""
    from attnlab.training.rundir import open_run

    return open_run(a.run or quick_lora_run(a.runs_dir, a.data_dir, a.train_rows, a.retrain))


def quick_lora_run(runs_dir: str, data_dir: str, train_rows: int, retrain: bool = False) -> Path:
    """A LoRA run (attnlab's default method) on a slice of SST-2 in ``runs_dir/quick-lora``, reused when
    already finished; its own evaluation uses 200 rows (the benchmarks measure on their own data)."""
    from attnlab.rundir import is_finished_run
    from attnlab.training.train import train

    out = Path(runs_dir) / "quick-lora"
    if is_finished_run(out) and not retrain:
        return out
    cfg = sst2_config(data_dir, method="lora", epochs=1.0, max_train_samples=train_rows, max_eval_samples=200,
                      output_dir=str(out), logging_steps=100)
    return train(cfg, overwrite=True, progress=False).path


def write_results(name: str, payload: dict[str, Any], file_stem: str | None = None) -> Path:
    """Write ``benchmarks/results/<file_stem or name>.json`` (``ATTNLAB_RESULTS_DIR`` overrides the folder)."""
    from attnlab.io import write_json_atomic
    from attnlab.rundir import hardware, library_versions

    payload = {"benchmark": name, "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
               "command": " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]),
               "hardware": hardware(), "versions": library_versions(),
               # other work on the machine distorts timings: record how busy it was when the numbers were written
               "load_average": list(os.getloadavg()) if hasattr(os, "getloadavg") else None, **payload}
    path = Path(os.environ.get("ATTNLAB_RESULTS_DIR") or RESULTS) / f"{file_stem or name}.json"
    write_json_atomic(path, payload)
    return path
