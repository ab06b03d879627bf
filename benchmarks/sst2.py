"""SST-2 dev accuracy as the field quotes it: mean ± std over seeds, per (model, method), resumable.

Each invocation trains the next ``--max-runs`` (model, method, seed) runs that the results file lacks,
appends one row per run and rewrites the per-(model, method) summary, so a study of hours can be spread
over several invocations and cut off at any time (a row lands only when its run has finished):

    python benchmarks/sst2.py                      # the next missing row of minilm-l6 full/lora/head x seeds 0,1,2
    python benchmarks/sst2.py --max-runs 0         # every missing row
    python benchmarks/sst2.py --models mpnet-base --methods lora --seeds 0

Nothing here looks at the reported sets while training: the checkpoint is chosen on a stratified
``--selection-rows`` split carved once (seed 0) from the GLUE *train* set, and the model trains on the
rest. Then the chosen checkpoint is scored on SST-2 dev (the 872-row GLUE validation set that papers and
model cards quote) and on the 1,821 labelled test sentences. The recipe is the quickstart's (the
checkpoint's own pooling, dropout off, batch 32, 2 epochs, its per-method learning rates; chosen on the
movie snippets' validation split, not tuned for SST-2), unless flags say otherwise: on SST-2's 4,000
steps LoRA at the quickstart's 2e-3 collapses to the majority class on the selection split, so its
rows use ``--learning-rates lora=5e-4`` (the method's own default). Each row records its recipe; rows
of different recipes are kept apart, never averaged together.

Results are kept per machine kind, ``benchmarks/results/sst2.<kind>.json``: one kind never overwrites
another's rows. Each row records its own date, wall time and the load average before and after it.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
from _common import DEFAULT_SST2, RESULTS, sst2_config, write_results

from attnlab.evaluation.tables import column_table

SELECTION_SEED = 0  # the carved selection split is the same for every run, whatever its training seed
ROW_COLUMNS = [("model", "model", ""), ("method", "method", ""), ("seed", "seed", ""),
               ("dev_accuracy", "dev acc", ".4f"), ("test_accuracy", "test acc", ".4f"),
               ("selection_accuracy", "selection acc", ".4f"), ("epoch_seconds", "s / epoch", ".0f"),
               ("precision", "precision", "")]
SUMMARY_COLUMNS = [("model", "model", ""), ("method", "method", ""), ("recipe", "recipe", ""), ("seeds", "seeds", ""),
                   ("dev_accuracy_mean", "dev mean", ".4f"), ("dev_accuracy_std", "dev std", ".4f"),
                   ("test_accuracy_mean", "test mean", ".4f"), ("epoch_seconds_mean", "s / epoch", ".0f")]


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data-dir", default=DEFAULT_SST2)
    p.add_argument("--models", default="minilm-l6")
    p.add_argument("--methods", default="full,lora,head")
    p.add_argument("--seeds", default="0,1,2")
    p.add_argument("--max-runs", type=int, default=1, help="runs to add in this invocation (0: every missing one)")
    p.add_argument("--epochs", type=float, default=None, help="default: the quickstart's")
    p.add_argument("--batch-size", type=int, default=None, help="default: the quickstart's")
    p.add_argument("--dropout", type=float, default=None, help="the model's dropout (default: the quickstart's, 0)")
    p.add_argument("--learning-rates", type=rates, default={},
                   help="METHOD=RATE,...: a method's rate (default: the quickstart's, else the method's own)")
    p.add_argument("--teacher", help="a finished run whose soft labels every student learns from as well "
                                     "(distillation: attnlab train --teacher)")
    p.add_argument("--selection-rows", type=int, default=2000, help="rows carved from train to choose the checkpoint")
    p.add_argument("--eval-every-steps", type=int, default=500, help="score the selection split every N steps")
    p.add_argument("--max-train-samples", type=int, default=None, help="a stratified slice of the rest (smoke runs)")
    p.add_argument("--precision", default="auto")
    p.add_argument("--runs-dir", default="runs/bench-sst2")
    p.add_argument("--results-name", default="sst2", help="results file: benchmarks/results/<name>.<kind>.json")
    return p.parse_args(argv)


def rates(text: str) -> dict[str, float]:
    """``lora=5e-4,full=1e-4`` -> {"lora": 0.0005, "full": 0.0001}."""
    try:
        return {m.strip(): float(r) for m, r in (pair.split("=") for pair in text.split(",") if pair.strip())}
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected METHOD=RATE,..., got {text!r}") from None


def recipe(a: argparse.Namespace, method: str) -> dict[str, Any]:
    """The training settings of one method: the quickstart's, overridden by the flags given."""
    from attnlab.cli import QUICKSTART, QUICKSTART_LEARNING_RATES

    rate = a.learning_rates.get(method) or QUICKSTART_LEARNING_RATES.get(method)
    return {"epochs": a.epochs or QUICKSTART["epochs"], "batch_size": a.batch_size or QUICKSTART["batch_size"],
            "dropout": QUICKSTART["dropout"] if a.dropout is None else a.dropout, "pooling": QUICKSTART["pooling"],
            **({"learning_rate": rate} if rate else {}), **({"teacher": a.teacher} if a.teacher else {})}


def carve_selection(data, rows: int):
    """``data`` with a stratified ``rows``-row selection split carved from train (validation), SST-2 dev as
    the test split the run reports, and the 1,821 labelled test sentences left out (scored afterwards)."""
    from datasets import DatasetDict
    from sklearn.model_selection import train_test_split

    train = data.splits["train"]
    labels = np.asarray(train.with_format("numpy")["label"])
    rest, held = train_test_split(np.arange(len(train)), test_size=rows, stratify=labels, random_state=SELECTION_SEED)
    splits = DatasetDict(train=train.select(np.sort(rest)), validation=train.select(np.sort(held)),
                         test=data.splits["validation"])
    return dataclasses.replace(data, splits=splits)


def train_row(a: argparse.Namespace, data, model: str, method: str, seed: int) -> dict[str, Any]:
    from attnlab.inference.evaluate import evaluate_run
    from attnlab.training.train import train

    settings = recipe(a, method)
    out = Path(a.runs_dir) / f"{Path(model).name}-{method}{'-distilled' if a.teacher else ''}-seed{seed}"
    cfg = sst2_config(a.data_dir, model=model, method=method, seed=seed, precision=a.precision,
                      output_dir=str(out), logging_steps=200, eval_every_steps=a.eval_every_steps, **settings)
    load_before, start = list(os.getloadavg()), time.perf_counter()
    run = train(cfg, data=data, overwrite=True, progress=False)
    m = run.metrics
    test = evaluate_run(run.path, "sst2", split="test", data_dir=a.data_dir)
    return {
        "model": m["model"], "method": method, "seed": seed,
        "dev_accuracy": m["test"]["accuracy"], "dev_macro_f1": m["test"]["macro_f1"],
        "test_accuracy": test["accuracy"], "test_macro_f1": test["macro_f1"],
        "selection_accuracy": m["validation"]["accuracy"],
        "trainable_params": m["params"]["trainable"], "trainable_percent": m["params"]["trainable_percent"],
        "epochs": m["training"]["epochs"], "steps": m["training"]["steps"],
        "epoch_seconds": m["training"]["mean_epoch_seconds"], "train_wall_seconds": m["training"]["wall_seconds"],
        "row_wall_seconds": time.perf_counter() - start, "tokens_per_second": m["training"]["tokens_per_second"],
        "learning_rate": m["training"]["learning_rate"], **{k: v for k, v in settings.items() if k != "learning_rate"},
        "recipe": settings, **({"distillation": m["distillation"]} if "distillation" in m else {}),
        "precision": m["training"]["precision"], "device": m["training"]["device"],
        "peak_rss_bytes": m["peak_rss_bytes"], "checkpoint_bytes": m["checkpoint_bytes"],
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "load_average_before": load_before, "load_average_after": list(os.getloadavg()),
    }


def summarize(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Mean and sample standard deviation over seeds of each (model, method, recipe)."""
    groups: dict[tuple[str, str, str], list[dict[str, Any]]] = {}
    for r in rows:
        groups.setdefault((r["model"], r["method"], recipe_text(r["recipe"])), []).append(r)
    out = []
    for (model, method, text), rs in groups.items():
        s: dict[str, Any] = {"model": model, "method": method, "recipe": text,
                             "seeds": ",".join(str(r["seed"]) for r in rs)}
        for metric in ("dev_accuracy", "test_accuracy", "epoch_seconds"):
            vals = [r[metric] for r in rs]
            s[f"{metric}_mean"] = statistics.fmean(vals)
            s[f"{metric}_std"] = statistics.stdev(vals) if len(vals) > 1 else None
        out.append(s)
    return out


def main(argv: list[str] | None = None) -> int:
    a = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    from attnlab import runtime
    from attnlab.data import load_data
    from attnlab.evaluation.tables import read_result

    stem = f"{a.results_name}.{runtime.cpu_kind()}"
    previous = read_result(Path(os.environ.get("ATTNLAB_RESULTS_DIR") or RESULTS) / f"{stem}.json")
    rows: list[dict[str, Any]] = list(previous.get("runs", [])) if previous else []
    # seed-major: an invocation cut short leaves every method with the same seeds done
    wanted = [(model, method, int(seed)) for model in a.models.split(",") for seed in a.seeds.split(",")
              for method in a.methods.split(",")]
    keys, done = {w: key(a, *w) for w in wanted}, {row_key(r) for r in rows}
    todo = [w for w in wanted if keys[w] not in done]
    todo = todo[:a.max_runs] if a.max_runs else todo
    if todo:
        data = carve_selection(load_data("sst2", data_dir=a.data_dir, seed=SELECTION_SEED,
                                         max_train_samples=a.max_train_samples), a.selection_rows)
    for model, method, seed in todo:
        print(f"training {model} {method} seed {seed} ...", flush=True)
        rows.append(train_row(a, data, model, method, seed))
        settings = {"selection": f"best checkpoint on {a.selection_rows} rows carved from SST-2 train (stratified, "
                                 f"seed {SELECTION_SEED}), scored every {a.eval_every_steps} steps; dev = the GLUE "
                                 "validation set (872), test = the 1,821 labelled test sentences",
                    "recipe": "the quickstart's (attnlab.cli.QUICKSTART) unless the row says otherwise",
                    "train_rows": len(data.splits["train"]), "selection_rows": len(data.splits["validation"])}
        path = write_results("sst2", {"cpu_kind": runtime.cpu_kind(), "settings": settings, "runs": rows,
                                      "summary": summarize(rows)}, file_stem=stem)
        print(f"wrote {path}", flush=True)
    print(column_table(rows, ROW_COLUMNS) if rows else "no rows yet")
    if rows:
        print("\n" + column_table(summarize(rows), SUMMARY_COLUMNS))
    done = {row_key(r) for r in rows}
    missing = [w for w in wanted if keys[w] not in done]
    print(f"\n{len(missing)} of the {len(wanted)} asked-for runs still missing" if missing
          else "\nevery asked-for run done")
    return 0


def recipe_text(settings: dict[str, Any]) -> str:
    return ", ".join(f"{k} {v:g}" if isinstance(v, float) else f"{k} {v}" for k, v in sorted(settings.items()))


def row_key(row: dict[str, Any]) -> tuple[str, str, int, str]:
    """What a row is the result of: (model, method, seed, recipe); a changed recipe makes new rows."""
    return row["model"], row["method"], row["seed"], recipe_text(row["recipe"])


def key(a: argparse.Namespace, model: str, method: str, seed: int) -> tuple[str, str, int, str]:
    """The key of the row that (model, method, seed) with the flags' recipe would make."""
    from attnlab.models import resolve_model

    return resolve_model(model).name, method, seed, recipe_text(recipe(a, method))


if __name__ == "__main__":
    sys.exit(main())
