"""Where LoRA's adapters go, and what it costs: full fine-tuning and LoRA variants on the quickstart's recipe.

Every row trains minilm-l6 on the movie snippets with the quickstart's settings (``attnlab.cli.QUICKSTART``:
every training snippet, 2 epochs of batch 32, mean pooling, no dropout, early stopping as the quickstart
has it), one after another in this process, so their times compare. A LoRA variant is
``LAYERS@RATE``: ``all`` (adapters in every layer, the default) or ``topN`` (``--lora-top-layers N``:
the layers below train nothing, so backward stops at the lowest adapted one), at learning rate RATE.
The variant to use is picked on **validation** accuracy (test is reported, never chosen on); the
speed of each is its epoch time against full fine-tuning's in the same invocation. Results per machine
kind in ``benchmarks/results/lora_layers.<kind>.json``; run it on a quiet machine (the load average
is recorded):

    python benchmarks/lora_layers.py
    python benchmarks/lora_layers.py --variants all@2e-3,top3@2e-3 --seed 1
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path
from typing import Any

from _common import write_results

from attnlab.evaluation.tables import column_table

COLUMNS = [("variant", "run", ""), ("validation_accuracy", "val acc", ".4f"), ("test_accuracy", "test acc", ".4f"),
           ("trainable_params", "trainable", ","), ("epoch_seconds", "s / epoch", ".1f"),
           ("step_seconds", "s / step (median)", ".3f"), ("speedup_vs_full", "epoch speedup vs full", ".2f"),
           ("test_vs_full_points", "test - full (pt)", "+.2f")]


def parse_variant(text: str) -> tuple[int | None, float]:
    """``all@2e-3`` -> (None, 0.002); ``top3@1e-3`` -> (3, 0.001)."""
    layers, sep, rate = text.partition("@")
    if not sep or not (layers == "all" or (layers.startswith("top") and layers[3:].isdigit())):
        raise SystemExit(f"'{text}' is not LAYERS@RATE with LAYERS all or topN (e.g. top3@2e-3)")
    return (None if layers == "all" else int(layers[3:])), float(rate)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--variants", default="all@2e-3,top3@2e-3,top4@2e-3,all@1e-3",
                   help="comma-separated LoRA variants LAYERS@RATE (default: %(default)s)")
    p.add_argument("--no-full", action="store_true", help="skip the full fine-tuning row (no speed ratios then)")
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--model", help="registry name or folder (default: the quickstart's)")
    p.add_argument("--runs-dir", help="keep the runs here (default: a temp folder)")
    p.add_argument("--smoke", action="store_true", help="2 steps on 32 rows: checks the script, measures nothing")
    a = p.parse_args(argv)

    from attnlab import runtime
    from attnlab.cli import QUICKSTART, QUICKSTART_LEARNING_RATES
    from attnlab.experiments.report import run_row
    from attnlab.training.config import TrainConfig
    from attnlab.training.train import train

    kind = runtime.cpu_kind()
    budget = {"max_train_samples": 32, "max_eval_samples": 32, "max_steps": 2} if a.smoke else {}
    plan: list[tuple[str, dict[str, Any]]] = [] if a.no_full else [
        ("full", {"method": "full", "learning_rate": QUICKSTART_LEARNING_RATES["full"]})]
    for text in a.variants.split(","):
        layers, rate = parse_variant(text.strip())
        plan.append((f"lora {text.strip()}", {"method": "lora", "learning_rate": rate, "lora_top_layers": layers}))
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(a.runs_dir or tmp)
        for name, settings in plan:
            print(f"training {name} ...", flush=True)
            cfg = TrainConfig.from_sources(None, **(QUICKSTART | ({"model": a.model} if a.model else {})), **settings,
                                           **budget, seed=a.seed,
                                           output_dir=str(root / name.replace(" ", "-").replace("@", "-lr")))
            row = run_row(train(cfg, overwrite=True, progress=False))
            rows.append({"variant": name, "lora_top_layers": settings.get("lora_top_layers"), **row})
    full = next((r for r in rows if r["method"] == "full"), None)
    for r in rows:
        r["speedup_vs_full"] = full["epoch_seconds"] / r["epoch_seconds"] if full and r["epoch_seconds"] else None
        r["test_vs_full_points"] = 100 * (r["test_accuracy"] - full["test_accuracy"]) if full else None
    lora = [r for r in rows if r["method"] == "lora"]
    chosen = max(lora, key=lambda r: r["validation_accuracy"])["variant"] if lora else None
    print(column_table(rows, COLUMNS))
    print(f"\nchosen on validation accuracy: {chosen} ({kind} kind)")
    path = write_results("lora_layers", {
        "cpu_kind": kind, "seed": a.seed, "recipe": "the quickstart's (attnlab.cli.QUICKSTART), every training snippet",
        "selection": "the LoRA variant with the best validation accuracy; test is reported, never chosen on",
        "chosen": chosen, "rows": [{k: v for k, v in r.items() if k != "run_dir"} for r in rows]},
        file_stem=f"lora_layers.{kind}" + (f".seed{a.seed}" if a.seed != 42 else "") + (".smoke" if a.smoke else ""))
    print(f"results: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
