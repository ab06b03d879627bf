"""What ``compare`` and ``sweep`` share: parsing lists, reusing finished runs, one row per run, and the
Markdown/CSV/JSON tables. (Both load their data once with ``attnlab.training.build.load_config_data``,
as ``train`` does.)"""

from __future__ import annotations

import csv
import io
import logging
from pathlib import Path
from typing import Any

from attnlab.data import TextDataset
from attnlab.errors import UserError
from attnlab.evaluation import tables
from attnlab.io import write_json_atomic, write_text_atomic
from attnlab.rundir import Run, is_finished_run
from attnlab.training.config import TrainConfig
from attnlab.training.rundir import open_run

# a column: (row key, title, format); format "%" prints a fraction as a percentage with 2 decimals,
# a spec ending in "x" prints a ratio with a trailing x, "" prints floats with 1 decimal and the rest as is
Column = tuple[str, str, str]


def parse_list(value: str | list | tuple | None, what: str, cast=str) -> list:
    """``"1,4,16"`` (or a list) -> a de-duplicated list, each item through ``cast``; ``none`` and
    empty items are dropped."""
    if value is None:
        return []
    items = [v.strip() for v in value.split(",")] if isinstance(value, str) else [str(v).strip() for v in value]
    out = []
    for item in items:
        if not item or item == "none":
            continue
        try:
            out.append(cast(item))
        except ValueError:
            raise UserError(f"'{item}' is not a valid {what[:-1]}", where=f"--{what}",
                            fix=f"pass a comma-separated list of {what}") from None
    return list(dict.fromkeys(out))


def reusable_run(path: Path, cfg: TrainConfig) -> bool:
    """A finished run in ``path`` trained with these settings (the ones the caller fixed)."""
    if not is_finished_run(path):
        return False
    from attnlab.models import resolve_model
    from attnlab.runtime import resolve_precision
    from attnlab.training.build import resolved_pooling
    from attnlab.training.methods import get_method

    stored = open_run(path).config
    want = {k: v for k, v in cfg.to_dict().items() if v is not None and k not in ("output_dir", "run_name")}
    want["precision"] = resolve_precision(cfg.precision)  # config.yaml records the resolved ones
    want["pooling"] = resolved_pooling(cfg, resolve_model(cfg.model), get_method(cfg.method))
    return all(stored.get(k) == v for k, v in want.items())


def train_or_reuse(cfg: TrainConfig, data: TextDataset, *, step: str, what: str, overwrite: bool, progress: bool,
                   log: logging.Logger) -> Run:
    """The finished run in ``cfg.output_dir`` when it was trained with these settings (and not
    ``overwrite``), else a fresh one trained on ``data``; ``step`` ("sweep 2/9") and ``what`` name it
    in the caller's ``log``."""
    from attnlab.training.train import train

    path = Path(cfg.output_dir)
    if not overwrite and reusable_run(path, cfg):
        log.info("%s: %s already trained, reusing %s", step, what, path)
        return open_run(path)
    log.info("%s: training %s", step, what)
    return train(cfg, data=data, overwrite=True, progress=progress)


def budget(base: TrainConfig, data: TextDataset) -> dict[str, Any]:
    """The budget every row of a comparison shares, and the rows it trained and evaluated on."""
    return {"epochs": base.epochs, "max_steps": base.max_steps, "batch_size": base.batch_size,
            "max_train_samples": base.max_train_samples, "max_eval_samples": base.max_eval_samples,
            "train_rows": len(data.splits["train"]), "validation_rows": len(data.splits["validation"]),
            "test_rows": len(data.splits["test"])}


def run_row(run: Run) -> dict[str, Any]:
    """The measured numbers of one finished run, flat, in the units the tables use (MiB)."""
    m = run.metrics
    tr = m["training"]
    base_bytes = m.get("memory", {}).get("base_weight_bytes", 0)
    return {
        "model": m["model"], "method": m["method"], "run_dir": str(run.path),
        "test_accuracy": m["test"]["accuracy"], "test_macro_f1": m["test"]["macro_f1"],
        "validation_accuracy": m["validation"]["accuracy"],
        "trainable_params": m["params"]["trainable"], "total_params": m["params"]["total"],
        "trainable_percent": m["params"]["trainable_percent"],
        "train_seconds": tr["wall_seconds"], "epoch_seconds": tr["mean_epoch_seconds"],
        "step_seconds": tr["median_step_seconds"], "tokens_per_second": tr["tokens_per_second"],
        "learning_rate": tr["learning_rate"],
        # the process's peak so far: several rows trained by one process share it
        "peak_rss_mib": m["peak_rss_bytes"] / 2**20,
        "checkpoint_mib": m["checkpoint_bytes"] / 2**20,
        "base_weight_mib": base_bytes / 2**20 or None,
        "precision": tr["precision"], "device": tr["device"],
    }


def fmt(value: Any, spec: str, missing: str) -> str:
    """One cell, see :data:`Column`."""
    if value is None:
        return missing
    if spec == "%":
        return f"{100 * value:.2f}"
    if spec.endswith("x"):
        return format(value, spec[:-1]) + "x"
    if spec:
        return format(value, spec)
    return f"{value:.1f}" if isinstance(value, float) else str(value)


def markdown_table(rows: list[dict[str, Any]], columns: list[Column], missing: str = "n/a") -> str:
    body = [[fmt(r.get(k), spec, missing) for k, _, spec in columns] for r in rows]
    return tables.markdown_table([t for _, t, _ in columns], body).rstrip("\n")


def write_tables(out: Path, stem: str, markdown: str, result: dict[str, Any]) -> None:
    """``<stem>.md`` (the page), ``<stem>.csv`` (``result["rows"]``, every key any row has) and
    ``<stem>.json`` (``result``), each written atomically."""
    rows = result["rows"]
    write_text_atomic(out / f"{stem}.md", markdown)
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(dict.fromkeys(k for r in rows for k in r)), restval="")
    writer.writeheader()
    writer.writerows(rows)
    write_text_atomic(out / f"{stem}.csv", buf.getvalue())
    write_json_atomic(out / f"{stem}.json", result)
