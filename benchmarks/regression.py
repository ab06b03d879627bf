"""Regression on the movie snippets' own mean ratings: ``--task regression`` with minilm-l6 (full).

The 10,605 movie-review snippets of the vaderSentiment sdist (Hutto & Gilbert, ICWSM 2014) ship a
mean human rating (-4..4) beside each text; the classification data set (``movie-snippets``) keeps
only its sign. ``movie-snippet-ratings`` keeps the rating as the target. This script trains
minilm-l6 with ``--method full --task regression`` on the carved train split (80 %, stratified on
quantile bins of the rating, seed 42) and reports the test split's Pearson and Spearman correlations
(and MSE, MAE), as the run's own evaluation measured them; the best checkpoint is the one of lowest
validation MSE.

Prints a table and writes ``benchmarks/results/regression.<cpu-kind>.json``.

    python benchmarks/regression.py                     # every snippet, 3 epochs (the lead's row)
    python benchmarks/regression.py --smoke             # a handful of rows and steps: proves it runs
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from _common import write_results

from attnlab.evaluation.tables import column_table

COLUMNS = [("model", "model", ""), ("method", "method", ""), ("train_rows", "train rows", ","),
           ("test_rows", "test rows", ","), ("test_pearson", "test Pearson r", ".4f"),
           ("test_spearman", "test Spearman rho", ".4f"), ("test_mse", "test MSE", ".4f"),
           ("test_mae", "test MAE", ".4f"), ("validation_pearson", "val Pearson r", ".4f"),
           ("train_seconds", "train s", ".0f")]
SMOKE = {"max_train_samples": 32, "max_eval_samples": 16, "max_steps": 2, "batch_size": 8}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="minilm-l6")
    p.add_argument("--method", default="full")
    p.add_argument("--epochs", type=float, default=3.0)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--learning-rate", type=float, help="default: the method's")
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--runs-dir", default="runs/bench-regression")
    p.add_argument("--smoke", action="store_true", help=f"a tiny budget ({SMOKE}): checks the script, measures nothing")
    p.add_argument("--note", default="", help="added to the result's notes")
    a = p.parse_args(argv)
    from attnlab import runtime
    from attnlab.training import TrainConfig
    from attnlab.training.train import train

    settings = {"data": "movie-snippet-ratings", "task": "regression", "model": a.model, "method": a.method,
                "epochs": a.epochs, "batch_size": a.batch_size, "learning_rate": a.learning_rate, "seed": a.seed,
                "output_dir": str(Path(a.runs_dir) / f"{a.model}-{a.method}{'-smoke' if a.smoke else ''}")}
    if a.smoke:
        settings |= SMOKE
    run = train(TrainConfig.from_sources(None, **settings), overwrite=True, progress=not a.smoke)
    m = run.metrics
    splits = m["data_summary"]["splits"]
    row = {"model": a.model, "method": a.method, "train_rows": splits["train"]["rows"],
           "test_rows": splits["test"]["rows"], "train_seconds": m["training"]["wall_seconds"],
           **{f"test_{k}": m["test"][k] for k in ("pearson", "spearman", "mse", "mae", "r2")},
           **{f"validation_{k}": m["validation"][k] for k in ("pearson", "spearman", "mse")}}
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    notes = ("SMOKE RUN: a tiny budget that proves the script works; its numbers measure nothing. " if a.smoke
             else "") + f"trained on {cores} core(s); test = the carved 10 % test split" + (
        f"; {a.note}" if a.note else "")
    stem = f"regression.{runtime.cpu_kind()}" + (".smoke" if a.smoke else "")
    path = write_results("regression", {"cpu_kind": runtime.cpu_kind(), "cores": cores, "notes": notes,
                                        "settings": {k: v for k, v in settings.items() if k != "output_dir"},
                                        "run": str(run.path), "rows": [row]}, file_stem=stem)
    print(column_table([row], COLUMNS))
    print(f"\nwritten: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
