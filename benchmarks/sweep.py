"""Parameter-efficiency study on SST-2 with minilm-l6: LoRA rank x target layers, plus baselines.

Runs ``attnlab.experiments.sweep`` (the same code as ``attnlab sweep``): LoRA at ranks 1, 4, 16, 64
on three target sets (attention; attention + MLP; all linear layers), and the head-only and BitFit
baselines, every run with the same training subset, seed and budget. Reports test accuracy,
trainable parameters and seconds per epoch for each, and writes ``benchmarks/results/sweep.json``
(the table, plots and run directories stay in ``--runs-dir``).

The default subset, 4,000 stratified training rows and 1 epoch (validation 872 and test 1,821 rows
in full), aims at roughly 15-25 minutes for the 14 runs on 2 CPU cores (an estimate from tiny
runs; the JSON records the measured times); finished runs are reused,
so an interrupted study continues where it stopped:

    python benchmarks/sweep.py --data-dir ../shared/datasets/sst2
    python benchmarks/sweep.py --max-train-samples 0 --epochs 2   # the whole training set (GPU)
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from _common import add_budget_args, sst2_config, write_results

from attnlab.evaluation.tables import column_table

COLUMNS = [("name", "run", ""), ("trainable_params", "trainable params", ","),
           ("trainable_percent", "trainable %", ".3f"), ("test_accuracy", "test acc", ".4f"),
           ("validation_accuracy", "val acc", ".4f"), ("epoch_seconds", "s / epoch", ".1f")]


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_budget_args(p, "runs/bench-sweep")
    p.add_argument("--model", default="minilm-l6")
    p.add_argument("--ranks", default="1,4,16,64")
    p.add_argument("--targets", default="attention,attention+mlp,all-linear")
    p.add_argument("--baselines", default="head,bitfit")
    p.add_argument("--adapter", default="lora", choices=["lora", "qlora"])
    p.add_argument("--learning-rate", type=float, default=None, help="for the adapters (default: the method's)")
    p.add_argument("--overwrite", action="store_true", help="retrain runs that already finished")
    a = p.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")

    from attnlab.experiments import sweep

    cfg = sst2_config(a.data_dir, model=a.model, epochs=a.epochs, batch_size=a.batch_size, seed=a.seed,
                      precision=a.precision, learning_rate=a.learning_rate,
                      max_train_samples=a.max_train_samples or None, max_eval_samples=a.max_eval_samples or None,
                      output_dir=a.runs_dir, logging_steps=50)
    res = sweep(cfg, a.ranks, a.targets, a.runs_dir, baselines=a.baselines, adapter=a.adapter,
                overwrite=a.overwrite, progress=False)
    print(column_table(res["rows"], COLUMNS))
    settings = {"model": a.model, "adapter": a.adapter, "epochs": a.epochs, "batch_size": a.batch_size,
                "seed": a.seed, "precision": a.precision, "learning_rate": a.learning_rate,
                "lora_alpha": "2 * r", **res["budget"], "selection": "best epoch by validation accuracy"}
    path = write_results("sweep", {"settings": settings, "ranks": res["ranks"], "targets": res["targets"],
                                   "baselines": res["baselines"], "runs": res["rows"],
                                   "table_md": str(Path(a.runs_dir) / "sweep.md")})
    print(f"wrote {path}  (plots: {Path(a.runs_dir) / 'accuracy_vs_params.png'}, "
          f"{Path(a.runs_dir) / 'epoch_time_vs_params.png'})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
