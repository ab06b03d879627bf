"""``compare``: the same data, seed and budget for every (model, method); measured numbers only.

Writes ``comparison.{md,csv,json}``, ``accuracy_vs_time.png`` (validation accuracy over training
wall time, per run) and ``accuracy_vs_params.png`` (test accuracy against trainable parameters).
"""

from __future__ import annotations

import csv
import io
import json
import logging
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from attnlab.data import load_data
from attnlab.errors import UserError
from attnlab.evaluation.plots import plt, save_figure
from attnlab.inference.predictor import Predictor
from attnlab.training.config import TrainConfig
from attnlab.training.methods import get_method
from attnlab.training.rundir import HISTORY, write_json_atomic, write_text_atomic

log = logging.getLogger(__name__)

COLUMNS = [
    ("model", "model"), ("method", "method"), ("test_accuracy", "test acc"), ("test_macro_f1", "test macro-F1"),
    ("validation_accuracy", "val acc"), ("trainable_params", "trainable params"),
    ("trainable_percent", "trainable %"), ("train_seconds", "train wall s"), ("epoch_seconds", "s / epoch"),
    ("speedup_vs_full", "epoch speedup vs full"), ("peak_rss_mib", "peak RSS MiB"),
    ("checkpoint_mib", "checkpoint MiB"), ("inference_sentences_per_second", "infer sent/s"),
]


def _split_list(value: str | list[str], what: str) -> list[str]:
    items = [v.strip() for v in (value.split(",") if isinstance(value, str) else value) if v.strip()]
    if not items:
        raise UserError(f"no {what} given", where=f"--{what}", fix=f"pass a comma-separated list of {what}")
    return list(dict.fromkeys(items))


def _inference_speed(run, texts: list[str]) -> float:
    predictor = Predictor.from_run(run)
    predictor.predict_proba(texts[: min(32, len(texts))])  # warm-up
    start = time.perf_counter()
    predictor.predict_proba(texts)
    return len(texts) / (time.perf_counter() - start)


def _row(run, infer_sps: float) -> dict[str, Any]:
    m = run.metrics
    tr = m["training"]
    return {
        "model": m["model"], "method": m["method"], "run_dir": str(run.path),
        "test_accuracy": m["test"]["accuracy"], "test_macro_f1": m["test"]["macro_f1"],
        "validation_accuracy": m["validation"]["accuracy"],
        "trainable_params": m["params"]["trainable"], "total_params": m["params"]["total"],
        "trainable_percent": m["params"]["trainable_percent"],
        "train_seconds": tr["wall_seconds"], "epoch_seconds": tr["mean_epoch_seconds"],
        "step_seconds": tr["median_step_seconds"], "tokens_per_second": tr["tokens_per_second"],
        "peak_rss_mib": m["peak_rss_bytes"] / 2**20, "checkpoint_mib": m["checkpoint_bytes"] / 2**20,
        "inference_sentences_per_second": infer_sps, "precision": tr["precision"], "device": tr["device"],
    }


def _fmt(key: str, v: Any) -> str:
    if v is None:
        return "n/a"
    if key in ("test_accuracy", "test_macro_f1", "validation_accuracy"):
        return f"{100 * v:.2f}"
    if key == "trainable_params":
        return f"{v:,}"
    if key == "trainable_percent":
        return f"{v:.2f}"
    if key == "speedup_vs_full":
        return f"{v:.2f}x"
    if isinstance(v, float):
        return f"{v:.1f}"
    return str(v)


def markdown_table(rows: list[dict[str, Any]]) -> str:
    head = "| " + " | ".join(t for _, t in COLUMNS) + " |"
    sep = "|" + "|".join("---" for _ in COLUMNS) + "|"
    body = ["| " + " | ".join(_fmt(k, r.get(k)) for k, _ in COLUMNS) + " |" for r in rows]
    return "\n".join([head, sep, *body])


def _plots(rows: list[dict[str, Any]], out: Path) -> None:
    fig, ax = plt.subplots(figsize=(6.5, 4))
    for r in rows:
        hist = [json.loads(line) for line in (Path(r["run_dir"]) / HISTORY).read_text().splitlines() if line]
        pts = [(h["wall_seconds"], h["eval_accuracy"]) for h in hist if "eval_accuracy" in h and "wall_seconds" in h]
        if pts:
            ax.plot(*zip(*pts), "o-", label=f"{r['model']} / {r['method']}")
    ax.set_xlabel("training wall time (s)")
    ax.set_ylabel("validation accuracy")
    ax.set_title("validation accuracy over wall time")
    ax.legend(fontsize=8)
    save_figure(fig, out / "accuracy_vs_time.png")
    fig, ax = plt.subplots(figsize=(6.5, 4))
    for r in rows:
        ax.scatter(r["trainable_params"], r["test_accuracy"], s=40)
        ax.annotate(f"{r['model']}/{r['method']}", (r["trainable_params"], r["test_accuracy"]), fontsize=8,
                    xytext=(4, 4), textcoords="offset points")
    ax.set_xscale("log")
    ax.set_xlabel("trainable parameters (log scale)")
    ax.set_ylabel("test accuracy")
    ax.set_title("accuracy vs trainable parameters")
    save_figure(fig, out / "accuracy_vs_params.png")


def compare(base: TrainConfig, methods: str | list[str], models: str | list[str], output_dir: str | Path, *,
            overwrite: bool = False, progress: bool = True) -> dict[str, Any]:
    """Train every (model, method) pair with ``base``'s data, seed and budget; write the table."""
    from attnlab.training.train import train

    methods, models = _split_list(methods, "methods"), _split_list(models, "models")
    for m in methods:
        get_method(m)
    out = Path(output_dir).expanduser()
    out.mkdir(parents=True, exist_ok=True)
    data = load_data(base.data, data_dir=base.data_dir, text_column=base.text_column,
                     label_column=base.label_column, val_fraction=base.val_fraction,
                     test_fraction=base.test_fraction, seed=base.seed, max_train_samples=base.max_train_samples,
                     max_eval_samples=base.max_eval_samples)
    test_texts = data.splits["test"]["text"]
    rows = []
    for model in models:
        for method in methods:
            cfg = replace(base, model=model, method=method, output_dir=str(out / f"{Path(model).name}-{method}"),
                          learning_rate=None if len(methods) > 1 else base.learning_rate)
            cfg.validate()
            log.info("compare: training %s with %s", model, method)
            run = train(cfg, data=data, overwrite=overwrite, progress=progress)
            rows.append(_row(run, _inference_speed(run, test_texts)))
    full_epoch = {r["model"]: r["epoch_seconds"] for r in rows if r["method"] == "full"}
    for r in rows:
        f = full_epoch.get(r["model"])
        r["speedup_vs_full"] = f / r["epoch_seconds"] if f and r["epoch_seconds"] else None
    rows.sort(key=lambda r: -r["test_accuracy"])
    result = {"data": data.name, "seed": base.seed, "budget": {"epochs": base.epochs, "max_steps": base.max_steps,
              "batch_size": base.batch_size, "max_train_samples": base.max_train_samples},
              "rows": rows, "hardware": None}
    from attnlab.training.rundir import hardware

    result["hardware"] = hardware()
    table = markdown_table(rows)
    write_text_atomic(out / "comparison.md", f"# Comparison on {data.name}\n\n{table}\n\n"
                      f"Same data split, seed {base.seed} and budget ({base.epochs} epochs, batch {base.batch_size}) "
                      f"for every row; hardware: {result['hardware']['cpu']} ({result['hardware']['cpu_cores']} cores)"
                      f"{', GPU ' + result['hardware']['gpu'] if result['hardware'].get('gpu') else ''}.\n\n"
                      "![accuracy vs time](accuracy_vs_time.png) ![accuracy vs params](accuracy_vs_params.png)\n")
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(rows[0]))
    writer.writeheader()
    writer.writerows(rows)
    write_text_atomic(out / "comparison.csv", buf.getvalue())
    write_json_atomic(out / "comparison.json", result)
    _plots(rows, out)
    result["table"] = table
    return result
