"""SST-2 accuracy and speed of full fine-tuning vs LoRA on minilm-l6 (or other models).

Trains each method with attnlab's defaults on the GLUE SST-2 train set (or a stratified subset,
``--max-train-samples``), selects the best epoch on validation, and reports validation (872) and
test (1,821) accuracy, trainable parameters, time per epoch and LoRA's epoch speedup over full.
Writes ``benchmarks/results/sst2.json``.

    python benchmarks/sst2.py --data-dir ../shared/datasets/sst2 --epochs 2
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from _common import DEFAULT_SST2, sst2_config, write_results

from attnlab.evaluation.tables import column_table

COLUMNS = [("model", "model", ""), ("method", "method", ""), ("validation_accuracy", "val acc", ".4f"),
           ("test_accuracy", "test acc", ".4f"), ("test_macro_f1", "test macro-F1", ".4f"),
           ("trainable_percent", "trainable %", ".2f"), ("epoch_seconds", "s / epoch", ".1f"),
           ("epoch_speedup_vs_full", "epoch speedup vs full", ".2f"),
           ("step_time_speedup_vs_full", "step-time speedup vs full", ".2f"),
           ("tokens_per_second", "train tok/s", ".0f"),
           ("device", "device", ""), ("precision", "precision", "")]


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data-dir", default=DEFAULT_SST2)
    p.add_argument("--models", default="minilm-l6")
    p.add_argument("--methods", default="full,lora")
    p.add_argument("--epochs", type=float, default=2.0)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--max-train-samples", type=int, default=None)
    p.add_argument("--precision", default="auto")
    p.add_argument("--runs-dir", default="runs/bench-sst2")
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--eval-every-steps", type=int, default=None,
                   help="evaluate (and keep the best checkpoint) every N steps instead of every epoch")
    p.add_argument("--learning-rate", type=float, default=None, help="default: each method's (and model's) own")
    p.add_argument("--results-name", default="sst2",
                   help="results file name: benchmarks/results/<name>.json (e.g. sst2_scratch for another model)")
    a = p.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")

    from attnlab.data import load_data
    from attnlab.training.train import train

    data = load_data("sst2", data_dir=a.data_dir, seed=a.seed, max_train_samples=a.max_train_samples)
    rows = []
    for model in a.models.split(","):
        for method in a.methods.split(","):
            cfg = sst2_config(
                a.data_dir, model=model, method=method, epochs=a.epochs,
                batch_size=a.batch_size, seed=a.seed, precision=a.precision, max_train_samples=a.max_train_samples,
                output_dir=str(Path(a.runs_dir) / f"{Path(model).name}-{method}"), logging_steps=200,
                eval_every_steps=a.eval_every_steps, learning_rate=a.learning_rate)
            run = train(cfg, data=data, overwrite=True, progress=False)
            m = run.metrics
            rows.append({
                "model": m["model"], "method": method,
                "validation_accuracy": m["validation"]["accuracy"], "test_accuracy": m["test"]["accuracy"],
                "test_macro_f1": m["test"]["macro_f1"], "trainable_params": m["params"]["trainable"],
                "trainable_percent": m["params"]["trainable_percent"],
                "epoch_seconds": m["training"]["mean_epoch_seconds"], "epochs": m["training"]["epochs"],
                # optimiser steps only: the epoch's wall time minus in-epoch evaluation and checkpointing
                "epoch_step_seconds": m["training"]["mean_step_seconds"] * m["training"]["steps"]
                / max(m["training"]["epochs"], 1e-9),
                "train_wall_seconds": m["training"]["wall_seconds"],
                "tokens_per_second": m["training"]["tokens_per_second"],
                "learning_rate": m["training"]["learning_rate"], "batch_size": a.batch_size,
                "precision": m["training"]["precision"], "device": m["training"]["device"],
                "peak_rss_bytes": m["peak_rss_bytes"], "peak_gpu_bytes": m["peak_gpu_bytes"],
                "checkpoint_bytes": m["checkpoint_bytes"],
            })
    for r in rows:
        full = next((x for x in rows if x["model"] == r["model"] and x["method"] == "full"), None)
        r["epoch_speedup_vs_full"] = full["epoch_seconds"] / r["epoch_seconds"] if full else None
        r["step_time_speedup_vs_full"] = full["epoch_step_seconds"] / r["epoch_step_seconds"] if full else None
    print(column_table(rows, COLUMNS))
    for r in rows:
        if r["method"] != "full" and r["epoch_speedup_vs_full"]:
            print(f"{r['model']} {r['method']}: epoch {r['epoch_speedup_vs_full']:.2f}x the speed of full "
                  f"({r['epoch_seconds']:.1f} s vs {r['epoch_seconds'] * r['epoch_speedup_vs_full']:.1f} s)")
    settings = {"epochs": a.epochs, "batch_size": a.batch_size, "learning_rate": a.learning_rate or "method default",
                "seed": a.seed, "precision": a.precision,
                "train_rows": len(data.splits["train"]), "validation_rows": len(data.splits["validation"]),
                "test_rows": len(data.splits["test"]), "eval_every_steps": a.eval_every_steps,
                "selection": "best checkpoint by validation accuracy"
                + (f" (evaluated every {a.eval_every_steps} steps)" if a.eval_every_steps
                   else " (evaluated every epoch)")}
    path = write_results("sst2", {"settings": settings, "runs": rows}, file_stem=a.results_name)
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
