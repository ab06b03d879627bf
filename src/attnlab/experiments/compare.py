"""``compare``: the same data, seed and budget for every (model, method), plus classic baselines
(:mod:`attnlab.experiments.baselines`) fitted on the same split; measured numbers only.

Writes ``comparison.{md,csv,json}``, ``accuracy_vs_time.png`` (validation accuracy over training
wall time, per run; a baseline is one point at its fit time) and ``accuracy_vs_params.png`` (test
accuracy against trainable parameters). A finished run (or fitted baseline) whose settings match is
reused, so an interrupted comparison continues where it stopped; ``overwrite`` retrains everything.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from attnlab.errors import UserError
from attnlab.evaluation.plots import plt, save_figure
from attnlab.experiments.baselines import check_baselines, get_baseline, run_baseline
from attnlab.experiments.report import (
    Column,
    budget,
    markdown_table,
    parse_list,
    run_row,
    train_or_reuse,
    write_tables,
)
from attnlab.inference.predictor import Predictor
from attnlab.training.build import load_config_data
from attnlab.training.config import TrainConfig
from attnlab.training.methods import get_method
from attnlab.training.rundir import HISTORY, hardware
from attnlab.training.tasks import require_classes

log = logging.getLogger(__name__)

COLUMNS: list[Column] = [
    ("model", "model", ""), ("method", "method", ""), ("test_accuracy", "test acc", "%"),
    ("test_macro_f1", "test macro-F1", "%"), ("validation_accuracy", "val acc", "%"),
    ("total_params", "total params", ","), ("trainable_params", "trainable params", ","),
    ("trainable_percent", "trainable %", ".2f"), ("train_seconds", "train wall s", ""),
    ("epoch_seconds", "s / epoch", ""), ("speedup_vs_full", "epoch speedup vs full", ".2fx"),
    ("peak_rss_mib", "peak RSS MiB", ""), ("checkpoint_mib", "size on disk MiB", ""),
    ("inference_sentences_per_second", "infer sent/s", ""),
]


def _inference_speeds(runs: list[Any], texts: list[str], rounds: int = 3) -> list[float]:
    """Sentences per second of each run as ``attnlab predict`` gives them: merged adapters, the
    default batch, the same texts for every run, warm (one untimed pass first), timed after all
    training has finished, in ``rounds`` interleaved passes; each run's best pass counts."""
    predictors = [Predictor.from_run(run) for run in runs]
    for predictor in predictors:
        predictor.predict_proba(texts)  # warm-up: kernels chosen, memory allocated
    best = [float("inf")] * len(predictors)
    for _ in range(rounds):
        for i, predictor in enumerate(predictors):
            start = time.perf_counter()
            predictor.predict_proba(texts)
            best[i] = min(best[i], time.perf_counter() - start)
    return [len(texts) / seconds for seconds in best]


def _run_names(models: list[str], methods: list[str]) -> dict[tuple[str, str], str]:
    """A folder name per (model, method): ``<model folder name>-<method>``, numbered where two
    models share a folder name (``a/bert`` and ``b/bert``)."""
    names, seen = {}, {}
    for model in models:
        stem = Path(model.rstrip("/")).name or "model"
        seen[stem] = seen.get(stem, 0) + 1
        stem = stem if seen[stem] == 1 else f"{stem}{seen[stem]}"
        names.update({(model, method): f"{stem}-{method}" for method in methods})
    return names


def _plots(rows: list[dict[str, Any]], out: Path) -> None:
    baselines = [r for r in rows if r["method"] == "baseline"]
    fig, ax = plt.subplots(figsize=(6.5, 4))
    for r in rows:
        if r in baselines:
            ax.scatter(r["train_seconds"], r["validation_accuracy"], marker="s", s=40, label=f"{r['model']}")
            continue
        hist = [json.loads(line) for line in (Path(r["run_dir"]) / HISTORY).read_text().splitlines() if line]
        evals = [h for h in hist if "eval_accuracy" in h]
        last_step = max((h.get("step", 0) for h in hist), default=0) or 1
        # an evaluation's wall time where the history has it, else its share of the steps times the run's
        pts = [(h["wall_seconds"] if "wall_seconds" in h else r["train_seconds"] * h.get("step", last_step) / last_step,
                h["eval_accuracy"]) for h in evals]
        if pts:
            ax.plot([p[0] for p in pts], [p[1] for p in pts], "o-", label=f"{r['model']} / {r['method']}")
    if baselines:  # fits take seconds, training minutes: a log scale shows both
        ax.set_xscale("log")
    ax.set_xlabel("training wall time (s)" + (", log scale" if baselines else ""))
    ax.set_ylabel("validation accuracy")
    ax.set_title("validation accuracy over wall time")
    ax.legend(fontsize=8)
    save_figure(fig, out / "accuracy_vs_time.png")
    fig, ax = plt.subplots(figsize=(6.5, 4))
    for r in rows:
        ax.scatter(r["trainable_params"], r["test_accuracy"], s=40, marker="s" if r in baselines else "o")
        ax.annotate(r["model"] if r in baselines else f"{r['model']}/{r['method']}",
                    (r["trainable_params"], r["test_accuracy"]), fontsize=8, xytext=(4, 4), textcoords="offset points")
    if any(r["trainable_params"] <= 0 for r in rows):  # a lexicon trains nothing: linear around 0, log above
        ax.set_xscale("symlog", linthresh=1)
        ax.set_xlim(left=-0.5)
        ax.set_xlabel("trainable parameters (0, then log scale)")
    else:
        ax.set_xscale("log")
        ax.set_xlabel("trainable parameters (log scale)")
    ax.set_ylabel("test accuracy")
    ax.set_title("accuracy vs trainable parameters")
    save_figure(fig, out / "accuracy_vs_params.png")


def _plan(base: TrainConfig, models: list[str], methods: list[str], out: Path,
          learning_rates: dict[str, float] | None = None) -> list[TrainConfig]:
    """One validated config per (model, method); several methods each get their own rate:
    ``learning_rates[method]`` where given, else the method's default."""
    names = _run_names(models, methods)
    plan = []
    for model in models:
        for method in methods:
            cfg = replace(base, model=model, method=method, output_dir=str(out / names[model, method]),
                          learning_rate=(learning_rates or {}).get(method) or (
                              None if len(methods) > 1 else base.learning_rate))
            cfg.validate()
            plan.append(cfg)
    return plan


def _with_speedups(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each row's epoch speedup over the ``full`` run of its model, best test accuracy first."""
    full_epoch = {r["model"]: r["epoch_seconds"] for r in rows if r["method"] == "full"}
    for r in rows:
        f = full_epoch.get(r["model"])
        r["speedup_vs_full"] = f / r["epoch_seconds"] if f and r["epoch_seconds"] else None
    return sorted(rows, key=lambda r: -r["test_accuracy"])


def compare(base: TrainConfig, methods: str | list[str], models: str | list[str], output_dir: str | Path, *,
            baselines: str | list[str] | None = None, overwrite: bool = False, progress: bool = True,
            learning_rates: dict[str, float] | None = None) -> dict[str, Any]:
    """Train every (model, method) pair with ``base``'s data, seed and budget, fit each of
    ``baselines`` (``tfidf-lr``, ``vader``) on the same split, and write the table.

    ``models`` may be empty (or ``none``) when baselines are given. A finished run or fitted
    baseline with the same settings is reused unless ``overwrite``; anything else in its folder is
    replaced. ``learning_rates``: a rate per method name (the quickstart's recipe), else each
    method's default.
    """
    require_classes(base, "attnlab compare")
    models = parse_list(models, "models")
    methods = parse_list(methods, "methods") if models else []
    baselines = parse_list(baselines, "baselines")
    if models and not methods:
        raise UserError("no methods given", where="--methods", fix="pass a comma-separated list, e.g. full,lora")
    if not models and not baselines:
        raise UserError("nothing to compare", where="attnlab compare",
                        fix="pass --models (with --methods) and/or --baselines tfidf-lr,vader")
    for m in methods:
        get_method(m)
    for b in baselines:
        get_baseline(b)
    out = Path(output_dir).expanduser()
    plan = _plan(base, models, methods, out, learning_rates)
    data = load_config_data(base)  # every row trains on the same split
    check_baselines(baselines, data)  # before hours of training, not after
    out.mkdir(parents=True, exist_ok=True)

    runs = [train_or_reuse(cfg, data, step=f"compare {i}/{len(plan)}", what=f"{cfg.model} with {cfg.method}",
                           overwrite=overwrite, progress=progress, log=log) for i, cfg in enumerate(plan, 1)]
    speeds = _inference_speeds(runs, list(data.splits["test"]["text"])) if runs else []
    rows = [{**run_row(run), "inference_sentences_per_second": speed} for run, speed in zip(runs, speeds, strict=True)]
    rows += [run_baseline(b, data, out, seed=base.seed, overwrite=overwrite) for b in baselines]
    rows = _with_speedups(rows)

    hw = hardware()
    result = {"data": data.name, "seed": base.seed, "budget": budget(base, data),
              "models": models, "methods": methods, "baselines": baselines, "rows": rows, "hardware": hw,
              "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")}
    table = markdown_table(rows, COLUMNS)
    notes = "".join(f"- **{r['model']}**: {r['notes']}\n" for r in rows if r.get("notes"))
    write_tables(out, "comparison", f"# Comparison on {data.name}\n\n{table}\n\n"
                 + (f"Baselines:\n\n{notes}\n" if notes else "")
                 + f"Same data split ({len(data.splits['train'])} training, {len(data.splits['validation'])} "
                 f"validation, {len(data.splits['test'])} test rows), seed {base.seed} and budget ({base.epochs:g} "
                 f"epochs, batch {base.batch_size}) for every row; measured {result['date']} on {hw['cpu']} "
                 f"({hw['cpu_cores']} cores){', GPU ' + hw['gpu'] if hw.get('gpu') else ''}.\n\n"
                 "![accuracy vs time](accuracy_vs_time.png) ![accuracy vs params](accuracy_vs_params.png)\n", result)
    _plots(rows, out)
    result["table"] = table
    return result
