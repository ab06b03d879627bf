"""Model comparison on SST-2: three encoders x full fine-tuning and LoRA, against two classic baselines.

Runs ``attnlab.experiments.compare`` (the same code as ``attnlab compare --baselines ...``):
minilm-l6 (22.7M parameters), mpnet-base (109.5M) and the from-scratch encoder (11M, random
init), each trained with full fine-tuning and with LoRA, plus TF-IDF + logistic regression and the
VADER lexicon fitted on the same training rows. Every row has the same split, seed and budget, and
reports test accuracy and macro-F1, total and trainable parameters, training wall time, inference
sentences per second on the test set, and the size on disk of what it saved. Writes
``benchmarks/results/models.json`` (the table, plots and run directories stay in ``--runs-dir``).

The default budget, 4,000 stratified training rows and 1 epoch (validation 872 and test 1,821 rows
in full), aims at roughly 20-35 minutes on 2 CPU cores: about 1.5 minutes per minilm-l6 run (the
4,000-row sweep runs on the same machine), 1 per scratch-encoder run, 7-9 per mpnet-base run (6 to 8
times minilm-l6's work per token, evaluation and the throughput measurement included), and under a
minute for both baselines. An estimate: the JSON records the measured times. Finished runs are
reused, so an interrupted comparison continues where it stopped:

    python benchmarks/models.py --data-dir ../shared/datasets/sst2
    python benchmarks/models.py --max-train-samples 0 --epochs 2      # the whole training set (GPU)
    python benchmarks/models.py --models minilm-l6,bert-base-uncased  # any hub id, where a hub is reachable
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from _common import add_budget_args, sst2_config, write_results

from attnlab.evaluation.tables import column_table

COLUMNS = [("model", "model", ""), ("method", "method", ""), ("test_accuracy", "test acc", ".4f"),
           ("test_macro_f1", "test macro-F1", ".4f"), ("validation_accuracy", "val acc", ".4f"),
           ("total_params", "total params", ","), ("trainable_params", "trainable params", ","),
           ("train_wall_seconds", "train s", ".1f"), ("inference_sentences_per_second", "infer sent/s", ".0f"),
           ("checkpoint_mib", "size on disk MiB", ".2f")]


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_budget_args(p, "runs/bench-models")
    p.add_argument("--models", default="minilm-l6,mpnet-base,scratch-encoder")
    p.add_argument("--methods", default="full,lora")
    p.add_argument("--baselines", default="tfidf-lr,vader")
    p.add_argument("--overwrite", action="store_true", help="retrain runs and refit baselines that already finished")
    a = p.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")

    from attnlab.experiments import compare

    cfg = sst2_config(a.data_dir, epochs=a.epochs, batch_size=a.batch_size, seed=a.seed, precision=a.precision,
                      max_train_samples=a.max_train_samples or None, max_eval_samples=a.max_eval_samples or None,
                      output_dir=a.runs_dir, logging_steps=50)
    res = compare(cfg, a.methods, a.models, a.runs_dir, baselines=a.baselines, overwrite=a.overwrite, progress=False)
    rows = []
    for r in res["rows"]:
        # no machine-local paths in the JSON, and no peak RSS: one process trains every row, so it only grows
        row = {k: v for k, v in r.items() if k not in ("run_dir", "peak_rss_mib")}
        row["train_wall_seconds"] = row.pop("train_seconds")
        rows.append(row)
    print(column_table(rows, COLUMNS))
    for r in rows:
        if r.get("notes"):
            print(f"{r['model']}: {r['notes']}")
    settings = {"epochs": a.epochs, "batch_size": a.batch_size, "seed": a.seed, "precision": a.precision,
                **res["budget"], "learning_rate": "each method's default (per model where the registry sets one)",
                "selection": "best epoch by validation accuracy; tfidf-lr: C on validation; vader: threshold on train"}
    notes = "\n\n".join(f"{r['model']}: {r['notes']}." for r in rows if r.get("notes"))  # a paragraph each
    path = write_results("models", {"settings": settings, "models": res["models"], "methods": res["methods"],
                                    "baselines": res["baselines"], "notes": notes, "rows": rows,
                                    "table_md": str(Path(a.runs_dir) / "comparison.md")})
    print(f"wrote {path}  (table and plots: {Path(a.runs_dir) / 'comparison.md'})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
