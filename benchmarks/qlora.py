"""QLoRA vs LoRA on SST-2 with minilm-l6: the accuracy cost and the memory saving of a 4-bit base.

Trains ``lora`` and ``qlora`` with identical settings (same data subset, seed, rank, targets,
learning rate, epochs), each in its own process so that peak RSS is per method, and reports:

* validation and test accuracy of both, and their difference (qlora - lora);
* ``base_bytes_ratio``: bytes of the frozen base weights as stored in memory (4-bit NF4 storage
  plus quantization state, for qlora) over the same for lora (fp32), both measured from the
  loaded models (``metrics.json`` -> ``memory``);
* seconds per epoch, peak RSS and peak GPU memory of each.

Writes ``benchmarks/results/qlora.json``. The default subset (8,000 training rows, 2 epochs, full
validation 872 and test 1,821 rows) aims at about 10-15 minutes on 2 CPU cores (an estimate
from tiny runs; the JSON records the measured times):

    python benchmarks/qlora.py --data-dir ../shared/datasets/sst2
    python benchmarks/qlora.py --max-train-samples 0 --epochs 3   # the whole training set (GPU)
"""

from __future__ import annotations

import argparse
import json
import logging
import subprocess
import sys
from pathlib import Path

from _common import DEFAULT_SST2, write_results

from attnlab.evaluation.tables import column_table

COLUMNS = [("method", "method", ""), ("validation_accuracy", "val acc", ".4f"), ("test_accuracy", "test acc", ".4f"),
           ("base_weight_mib", "base weights MiB", ".1f"), ("peak_rss_mib", "peak RSS MiB", ".0f"),
           ("peak_gpu_mib", "peak GPU MiB", ".0f"), ("epoch_seconds", "s / epoch", ".1f"),
           ("trainable_params", "trainable params", ","), ("device", "device", ""), ("precision", "precision", "")]


def train_in_subprocess(method: str, a: argparse.Namespace) -> dict:
    out = Path(a.runs_dir) / method
    cmd = [sys.executable, "-m", "attnlab.cli", "train", "--data", "sst2", "--data-dir", a.data_dir,
           "--model", a.model, "--method", method, "--output-dir", str(out), "--overwrite", "--no-progress",
           "--epochs", str(a.epochs), "--batch-size", str(a.batch_size), "--seed", str(a.seed),
           "--precision", a.precision, "--lora-r", str(a.lora_r), "--learning-rate", str(a.learning_rate),
           "--no-early-stopping", "--logging-steps", "50"]
    if a.max_train_samples:
        cmd += ["--max-train-samples", str(a.max_train_samples)]
    if a.max_eval_samples:
        cmd += ["--max-eval-samples", str(a.max_eval_samples)]
    logging.info("training %s: %s", method, " ".join(cmd))
    subprocess.run(cmd, check=True)
    return json.loads((out / "metrics.json").read_text())


def row(m: dict) -> dict:
    tr, mem = m["training"], m["memory"]
    return {
        "method": m["method"], "validation_accuracy": m["validation"]["accuracy"],
        "test_accuracy": m["test"]["accuracy"], "test_macro_f1": m["test"]["macro_f1"],
        "base_weight_bytes": mem["base_weight_bytes"], "base_weight_fp32_bytes": mem["base_weight_fp32_bytes"],
        "base_weight_mib": mem["base_weight_bytes"] / 2**20, "quantized_params": mem["quantized_params"],
        "peak_rss_bytes": m["peak_rss_bytes"], "peak_rss_mib": m["peak_rss_bytes"] / 2**20,
        "peak_gpu_bytes": m["peak_gpu_bytes"],
        "peak_gpu_mib": m["peak_gpu_bytes"] / 2**20 if m["peak_gpu_bytes"] else None,
        "epoch_seconds": tr["mean_epoch_seconds"], "train_wall_seconds": tr["wall_seconds"],
        "tokens_per_second": tr["tokens_per_second"], "epochs": tr["epochs"],
        "trainable_params": m["params"]["trainable"], "total_params": m["params"]["total"],
        "checkpoint_bytes": m["checkpoint_bytes"], "learning_rate": tr["learning_rate"],
        "device": tr["device"], "precision": tr["precision"],
    }


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data-dir", default=DEFAULT_SST2)
    p.add_argument("--model", default="minilm-l6")
    p.add_argument("--epochs", type=float, default=2.0)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--max-train-samples", type=int, default=8000, help="stratified subset; 0 = all 67,349 rows")
    p.add_argument("--max-eval-samples", type=int, default=0, help="stratified validation/test subsets; 0 = all")
    p.add_argument("--lora-r", type=int, default=16)
    p.add_argument("--learning-rate", type=float, default=5e-4)
    p.add_argument("--precision", default="auto")
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--runs-dir", default="runs/bench-qlora")
    a = p.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")

    rows = [row(train_in_subprocess(method, a)) for method in ("lora", "qlora")]
    lora, qlora = rows
    print(column_table(rows, COLUMNS))
    summary = {
        "base_bytes_ratio": qlora["base_weight_bytes"] / lora["base_weight_bytes"],
        "lora_validation_accuracy": lora["validation_accuracy"],
        "qlora_validation_accuracy": qlora["validation_accuracy"],
        "validation_accuracy_difference": qlora["validation_accuracy"] - lora["validation_accuracy"],
        "lora_test_accuracy": lora["test_accuracy"], "qlora_test_accuracy": qlora["test_accuracy"],
        "test_accuracy_difference": qlora["test_accuracy"] - lora["test_accuracy"],
        "lora_base_weight_bytes": lora["base_weight_bytes"], "qlora_base_weight_bytes": qlora["base_weight_bytes"],
        "peak_rss_ratio": qlora["peak_rss_bytes"] / lora["peak_rss_bytes"],
        "epoch_time_ratio": (qlora["epoch_seconds"] / lora["epoch_seconds"]
                             if qlora["epoch_seconds"] and lora["epoch_seconds"] else None),
    }
    print(f"frozen base: {qlora['base_weight_mib']:.1f} MiB (qlora) vs {lora['base_weight_mib']:.1f} MiB (lora): "
          f"ratio {summary['base_bytes_ratio']:.3f}")
    print(f"validation accuracy: qlora - lora = {100 * summary['validation_accuracy_difference']:+.2f} points")
    settings = {"model": a.model, "epochs": a.epochs, "batch_size": a.batch_size, "seed": a.seed,
                "precision": a.precision, "lora_r": a.lora_r, "lora_alpha": 2 * a.lora_r,
                "learning_rate": a.learning_rate, "max_train_samples": a.max_train_samples or None,
                "max_eval_samples": a.max_eval_samples or None, "selection": "best epoch by validation accuracy",
                "process": "each method trained in its own process (peak RSS per method)"}
    path = write_results("qlora", {"settings": settings, **summary, "runs": rows})
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
