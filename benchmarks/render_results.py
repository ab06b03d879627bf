"""Render every benchmark result into the documentation: ``docs/results.md`` plus plots.

Reads each ``benchmarks/results/*.json`` written by a benchmark script (``_common.write_results``:
benchmark name, date, command, hardware, library versions, settings, and one or more lists of
rows), and writes one section per benchmark with the machine, the date and the command next to
the tables and plots. A benchmark with no JSON yet gets a section that says which script to run;
a JSON file from a benchmark this script does not know is rendered generically. Several files of
one benchmark (``sst2.json``, ``sst2_h200.json``: other machines) each get a subsection.

    python benchmarks/render_results.py            # write docs/results.md and docs/img/results/*.png
    python benchmarks/render_results.py --check    # exit 1 if docs/results.md is out of date
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from _common import REPO, RESULTS

from attnlab.evaluation.tables import load_results, markdown_table
from attnlab.io import atomic_path, write_text_atomic

OUT_MD = REPO / "docs" / "results.md"
IMG_DIR = REPO / "docs" / "img" / "results"
SCRIPT = "benchmarks/render_results.py"
META_KEYS = ("benchmark", "date", "command", "hardware", "versions", "settings", "note", "notes", "valid_rows",
             "source", "load_average")
LABEL_KEYS = ("model", "method", "name", "config", "variant", "backend", "precision_mode", "pooling", "rank", "r",
              "targets", "concurrency", "batch_size", "seed")
QUALITY_KEYS = ("dev_accuracy_mean", "test_accuracy_mean", "dev_accuracy", "test_accuracy", "validation_accuracy",
                "accuracy", "test_macro_f1", "macro_f1")
COST_KEYS = ("epoch_seconds", "train_wall_seconds", "tokens_per_second", "samples_per_second", "texts_per_second",
             "sentences_per_second", "requests_per_second", "latency_p50_ms", "p50_ms", "latency_ms", "peak_gpu_bytes",
             "peak_rss_bytes")
PLOT_WIDTH_IN, PLOT_DPI = 8.0, 100  # 800 px: the width the docs site shows a figure at, so text stays legible
OFF_SCALE = 8.0  # bars this many times above the next one down are drawn cut at the axis end, their value written


@dataclass(frozen=True)
class Benchmark:
    name: str
    title: str
    script: str
    about: str
    columns: tuple[str, ...] = ()  # the row columns shown, in order ("prefix*": every such column); empty: all
    list_columns: tuple[tuple[str, tuple[str, ...]], ...] = ()  # (row list, its columns): overrides ``columns``
    plot: tuple[str, ...] = ()  # the metrics plotted, where a row list has them; none of them: picked by kind
    prepare: Callable[[dict[str, list[dict[str, Any]]]], None] | None = None  # adjusts the row lists in place

    def columns_of(self, key: str) -> tuple[str, ...]:
        return dict(self.list_columns).get(key, self.columns)


def ablation_rows(lists: dict[str, list[dict[str, Any]]]) -> None:
    """``train_speed.py --ablation`` averages each variant's ``mean_step_seconds`` over the repeats but copies
    its other per-run numbers (median step, first steps, tokens/s, wall time) from repeat 0, so shown side by
    side they would mix two statistics. Both tables show one: the mean seconds per step after the warm-up
    steps, per repeat in ``raw`` (ordered by variant) and in ``variants`` as the mean of the repeats, with each
    repeat's value next to it (read from ``raw``)."""
    variants, raw = lists.get("variants") or [], lists.get("raw") or []
    order = {v.get("name"): i for i, v in enumerate(variants)}
    if raw:
        lists["raw"] = sorted(raw, key=lambda r: (order.get(r.get("name"), len(order)), r.get("repeat", 0)))
    for v in variants:
        reps = [r for r in lists.get("raw", []) if r.get("name") == v.get("name")]
        if reps:
            v["repeats"] = len(reps)
            v.update({f"repeat_{r.get('repeat', i)}_step_seconds": r.get("mean_step_seconds")
                      for i, r in enumerate(reps)})


BENCHMARKS = [
    Benchmark("sst2", "SST-2: dev accuracy over seeds", "benchmarks/sst2.py",
              "Each (model, method, seed) trained on the GLUE SST-2 training set less a 2,000-row selection split "
              "carved from it, which alone chooses the checkpoint; the chosen checkpoint is then scored on SST-2 dev "
              "(the 872-row GLUE validation set papers quote) and on the 1,821 labelled test sentences. **summary**: "
              "mean and standard deviation over the seeds done so far; **runs**: one row per run, with its own date "
              "and load average. Files without a kind in their name are older layouts, kept for the record.",
              list_columns=(
                  ("summary", ("model", "method", "recipe", "seeds", "dev_accuracy_mean", "dev_accuracy_std",
                               "test_accuracy_mean", "test_accuracy_std", "epoch_seconds_mean")),
                  ("runs", ("model", "method", "seed", "dev_accuracy", "test_accuracy", "selection_accuracy",
                            "validation_accuracy", "test_macro_f1", "trainable_params", "trainable_percent",
                            "learning_rate", "epochs", "epoch_seconds", "epoch_speedup_vs_full", "epoch_step_seconds",
                            "step_time_speedup_vs_full", "tokens_per_second", "precision", "device", "peak_gpu_bytes",
                            "peak_rss_bytes", "checkpoint_bytes", "date"))),
              plot=("dev_accuracy_mean", "test_accuracy_mean", "dev_accuracy", "test_accuracy", "validation_accuracy")),
    Benchmark("models", "Model comparison on SST-2", "benchmarks/models.py",
              "minilm-l6, mpnet-base and the from-scratch encoder, each with full fine-tuning and LoRA, against "
              "two classic baselines (TF-IDF + logistic regression; the VADER sentiment lexicon) fitted on the same "
              "training rows: test accuracy and macro-F1, total and trainable parameters, training wall time, "
              "inference sentences per second on the test set and the size on disk of what each saved (LoRA: the "
              "adapter, which needs its base model; VADER: its lexicon files, none of it trained).",
              ("model", "method", "test_accuracy", "test_macro_f1", "validation_accuracy", "total_params",
               "trainable_params", "train_wall_seconds", "epoch_seconds", "inference_sentences_per_second",
               "checkpoint_mib")),
    Benchmark("qlora", "QLoRA vs LoRA", "benchmarks/qlora.py",
              "LoRA on a frozen 4-bit NF4 base against LoRA on the fp32 base: accuracy, memory and speed."),
    Benchmark("sweep", "LoRA settings sweep", "benchmarks/sweep.py",
              "Accuracy and cost across LoRA ranks, learning rates and targets."),
    Benchmark("train_speed", "Training speed", "benchmarks/train_speed.py",
              "Training throughput per method and precision on the machine named."),
    Benchmark("train_ablation", "Training speed: what each choice buys", "benchmarks/train_speed.py --ablation",
              "Short training runs with one speed-related setting changed at a time. Both tables show one "
              "statistic, the mean seconds per training step after the warm-up steps (*warmup steps*, left "
              "out): **raw** gives it for each repeat, **variants** the mean over the repeats "
              "(each repeat's value next to it), and *default speedup* is that mean over the mean of its method's "
              "default. The JSON also holds each repeat's median step time, first-step time and token rate.",
              list_columns=(
                  ("variants", ("name", "method", "shows", "steps", "warmup_steps", "repeats", "mean_step_seconds",
                                "repeat_*", "default_speedup", "precision", "overrides.*")),
                  ("raw", ("name", "method", "repeat", "steps", "warmup_steps", "mean_step_seconds", "precision"))),
              plot=("mean_step_seconds",), prepare=ablation_rows),
    Benchmark("lora_step", "Training step: full vs LoRA, phase by phase", "benchmarks/lora_step.py",
              "Forward, backward and optimizer time of full fine-tuning, LoRA, attention-only LoRA and the frozen "
              "floor (no adapters, gradient to the first layer) on the same real SST-2 batches."),
    Benchmark("infer_speed", "Inference speed", "benchmarks/infer_speed.py",
              "Prediction throughput and latency of a finished run: torch and ONNX Runtime engines, fp32 and "
              "int8, against transformers.pipeline.",
              plot=("sentences_per_second", "p50_ms")),
    Benchmark("serve_load", "Serving under load", "benchmarks/serve_load.py",
              "The REST API under concurrent clients: requests per second and latency percentiles."),
    Benchmark("quickstart", "Quickstart", "benchmarks/quickstart.py",
              "The README's main job end to end (`attnlab quickstart`, a fresh process): test accuracy of "
              "full fine-tuning and LoRA against the seed's > 85 % bar, and wall time against 5 min (AMX) "
              "or 10 min (other kinds), one file per machine kind."),
    Benchmark("pooling", "Pooling", "benchmarks/pooling.py",
              "Which sentence vector the classifier reads (the checkpoint's BERT pooler, the [CLS] token, or "
              "the mean of the tokens), per method, on the quickstart's data and budget; one file per machine "
              "kind."),
    Benchmark("data_loading", "Loading big files", "benchmarks/data_loading.py",
              "`attnlab data` on generated CSV and JSON-lines files of millions of rows: wall and CPU seconds, "
              "rows per second and peak memory against the file's size; one file per machine kind."),
    Benchmark("faithfulness", "Faithfulness of explanations", "benchmarks/faithfulness.py",
              "ERASER comprehensiveness and sufficiency (AOPC over k = 1..50 % of tokens) of each attribution "
              "method against a random ranking, on SST-2 validation sentences, for a LoRA and a full run; "
              "read on [Is attention an explanation?](concepts/is-attention-an-explanation.md)."),
    Benchmark("lora_layers", "LoRA in the top layers only", "benchmarks/lora_layers.py",
              "Full fine-tuning and LoRA variants (adapters in every layer or only the top N, `--lora-top-layers`, "
              "at two learning rates) on the quickstart's data and recipe: epoch time against full's in the same "
              "invocation and accuracy; the variant is chosen on validation, test is only reported. One file per "
              "machine kind."),
    Benchmark("regression", "Regression", "benchmarks/regression.py",
              "`--task regression` on the movie snippets' own mean ratings (the score the data set ships beside "
              "each text): Pearson, Spearman, MSE, MAE and R² on the carved test split; one file per machine "
              "kind."),
]


# -- formatting ---------------------------------------------------------------------------------

def fmt(key: str, value: Any) -> str:
    """One table cell, formatted by what the key measures."""
    if value is None:
        return "n/a"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int | float) and not isinstance(value, bool):
        if isinstance(value, float) and not math.isfinite(value):
            return str(value)
        k = key.lower()
        if k.endswith("_bytes") or k == "bytes":
            return f"{value / 2**20:,.1f} MiB"
        if "accuracy" in k or "f1" in k or k.endswith(("precision", "recall")):
            return f"{value:.4f}"
        if "percent" in k:
            return f"{value:.2f}%"
        if "speedup" in k or k.endswith(("_ratio", "_x")):
            return f"{value:.2f}×"
        if isinstance(value, int):
            return f"{value:,}"
        if "seconds" in k or k.endswith(("_s", "_ms")):
            return f"{value:,.1f}" if abs(value) >= 10 else f"{value:.3g}"
        if "per_second" in k:
            return f"{value:,.0f}" if abs(value) >= 100 else f"{value:,.1f}"
        if value.is_integer():
            return f"{value:g}"
        return f"{value:.4g}"
    if isinstance(value, list | dict):
        text = json.dumps(value, separators=(", ", ": "))
        return text if len(text) <= 60 else text[:57] + "..."
    return str(value)


def header(key: str) -> str:
    names = {"validation_accuracy": "val acc", "test_accuracy": "test acc", "test_macro_f1": "test macro-F1",
             "trainable_params": "trainable", "trainable_percent": "trainable %", "epoch_seconds": "s / epoch",
             "epoch_speedup_vs_full": "epoch speedup vs full", "tokens_per_second": "train tok/s",
             "epoch_step_seconds": "step s / epoch", "step_time_speedup_vs_full": "step-time speedup vs full",
             "learning_rate": "lr", "total_params": "total params", "train_wall_seconds": "train wall s",
             "inference_sentences_per_second": "infer sent/s", "checkpoint_mib": "size on disk MiB",
             "peak_gpu_bytes": "peak GPU mem", "peak_rss_bytes": "peak RSS", "checkpoint_bytes": "checkpoint",
             "mean_step_seconds": "mean s / step", "sentences_per_second": "sentences / s"}
    repeat = re.fullmatch(r"repeat_(\d+)_step_seconds", key)
    if repeat:
        return f"repeat {repeat[1]}: s / step"
    return names.get(key, key.replace("_", " "))


def esc(text: str) -> str:
    """Free text safe in Markdown: no raw HTML (``<sst2>`` would vanish as an unknown tag)."""
    return str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def table(rows: list[dict[str, Any]], columns: list[str]) -> str:
    return markdown_table([header(c) for c in columns], [[esc(fmt(c, r.get(c))) for c in columns] for r in rows])


def flatten(row: dict[str, Any]) -> dict[str, Any]:
    """One level of nesting becomes dotted keys, so nested metrics still get a column."""
    out: dict[str, Any] = {}
    for k, v in row.items():
        if isinstance(v, dict) and all(not isinstance(x, dict | list) for x in v.values()):
            out.update({f"{k}.{kk}": vv for kk, vv in v.items()})
        else:
            out[k] = v
    return out


def columns_for(rows: list[dict[str, Any]], preferred: tuple[str, ...]) -> list[str]:
    seen: list[str] = []
    for r in rows:
        for k, v in r.items():
            if k not in seen and not isinstance(v, list | dict):
                seen.append(k)
    if not preferred:
        return seen
    out: list[str] = []
    for c in preferred:
        matches = [k for k in seen if k.startswith(c[:-1])] if c.endswith("*") else [c] if c in seen else []
        out += [k for k in matches if k not in out]
    return out


def machine(payload: dict[str, Any]) -> str:
    hw = payload.get("hardware") or {}
    if not isinstance(hw, dict):
        return str(hw)
    parts = []
    if hw.get("gpu"):
        parts.append(f"{hw.get('gpu_count', 1)}× {hw['gpu']}" if hw.get("gpu_count", 1) != 1 else hw["gpu"])
    cpu = hw.get("cpu")
    if cpu:
        extra = ", ".join(x for x in (f"{hw['cpu_cores']} cores" if hw.get("cpu_cores") else "",
                                      hw.get("cpu_capability") or "") if x)
        parts.append(f"{cpu} ({extra})" if extra else cpu)
    if hw.get("memory_gib"):
        parts.append(f"{hw['memory_gib']} GiB RAM")
    return "; ".join(parts) or "unknown machine"


def short_machine(payload: dict[str, Any]) -> str:
    hw = payload.get("hardware") or {}
    if isinstance(hw, dict) and hw.get("gpu"):
        return str(hw["gpu"])
    if isinstance(hw, dict) and hw.get("cpu"):  # the vendor and vector unit name the machine kind
        cpu = str(hw["cpu"]).replace("(R)", "").replace(" Processor", "")
        return f"{cpu}, {hw.get('cpu_capability', '?')}, {hw.get('cpu_cores', '?')} cores"
    return "unknown machine"


def versions(payload: dict[str, Any]) -> str:
    v = payload.get("versions") or {}
    return ", ".join(f"{k} {v[k]}" for k in ("torch", "transformers", "peft", "bitsandbytes", "accelerate") if k in v)


def row_lists(payload: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    """Every top-level list of objects (``runs``, ``rows``, ...): the tables of a result."""
    return {k: [flatten(r) for r in v] for k, v in payload.items()
            if k not in META_KEYS and isinstance(v, list) and v and all(isinstance(r, dict) for r in v)}


def row_labels(rows: list[dict[str, Any]]) -> list[str]:
    """A short name per row from the label keys whose values differ between rows (model, method, ...); one key
    alone where it tells the rows apart as well as all of them (a unique ``name``)."""
    present = [k for k in LABEL_KEYS if any(r.get(k) is not None for r in rows)]
    varying = [k for k in present if len({str(r.get(k)) for r in rows}) > 1] or present[:2]
    distinct = len({tuple(str(r.get(k)) for k in varying) for r in rows})
    alone = [k for k in varying if len({str(r.get(k)) for r in rows}) == distinct]
    keys = (alone[:1] if distinct > 1 else []) or varying[:3]
    return [" / ".join(str(r.get(k)) for k in keys) or f"row {i}" for i, r in enumerate(rows)]


# -- plots ----------------------------------------------------------------------------------------

def _numeric(rows: list[dict[str, Any]], k: str) -> bool:
    return all(isinstance(r.get(k), int | float) and not isinstance(r.get(k), bool) for r in rows)


def plot_panels(rows: list[dict[str, Any]], preferred: tuple[str, ...] = ()) -> list[tuple[str, list[str]]]:
    """The panels of a row list's plot, (title key, metric keys): the ``preferred`` metrics the rows have, else
    the headline quality metric(s) and one cost metric; quality metrics (0..1) share one panel."""
    keys = [k for k in preferred if _numeric(rows, k)] or (
        [k for k in QUALITY_KEYS if _numeric(rows, k)][:2] + [k for k in COST_KEYS if _numeric(rows, k)][:1])
    quality = [k for k in keys if k in QUALITY_KEYS]
    return ([("accuracy", quality)] if quality else []) + [(k, [k]) for k in keys if k not in QUALITY_KEYS]


def has_plot(rows: list[dict[str, Any]], preferred: tuple[str, ...] = ()) -> bool:
    return bool(plot_panels(rows, preferred))


def _better(key: str) -> str:
    k = key.lower()
    if key == "accuracy" or "per_second" in k or k.endswith("_speedup"):
        return "higher is better"
    if "seconds" in k or k.endswith(("_ms", "_bytes")):
        return "lower is better"
    return ""


def _on_scale_top(values: list[float]) -> float:
    """The largest value the axis shows in full: the maximum, unless at most a quarter of the bars sit more
    than ``OFF_SCALE`` times above the next one down (one 15 s bar among 0.4 s ones would flatten them all)."""
    ordered = sorted(v for v in values if v > 0)
    for i in range(max(1, len(ordered) - len(ordered) // 4), len(ordered)):
        if ordered[i] > OFF_SCALE * ordered[i - 1]:
            return ordered[i - 1]
    return ordered[-1] if ordered else 1.0


def _groups(rows: list[dict[str, Any]]) -> tuple[list[str], list[str], list[list[dict[str, Any] | None]]]:
    """(group labels, series names, rows[series][group]): one group per row, or, where the rows are repeats
    of the same settings (a ``repeat`` key), one group per setting with one bar per repeat."""
    labels = row_labels(rows)
    repeats = sorted({r["repeat"] for r in rows if "repeat" in r}, key=str)
    pairs = {(lab, str(r.get("repeat"))) for lab, r in zip(labels, rows, strict=True)}
    if len(repeats) < 2 or len(pairs) < len(rows):
        return labels, [""], [list(rows)]
    names = list(dict.fromkeys(labels))
    table_ = {(lab, str(r.get("repeat"))): r for lab, r in zip(labels, rows, strict=True)}
    return names, [f"repeat {x}" for x in repeats], [[table_.get((n, str(x))) for n in names] for x in repeats]


def plot_rows(rows: list[dict[str, Any]], path: Path, title: str, preferred: tuple[str, ...] = ()) -> Path | None:
    """Horizontal bars from 0, one bar per row (per repeat where rows repeat a setting) and one panel per
    metric, the row names once on the left; sized to be read at the site's width. None if nothing to plot."""
    panels = plot_panels(rows, preferred)
    if not panels:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels, series_names, grid = _groups(rows)
    if len(grid) > 1:  # bars per repeat: one series per repeat, one metric per panel
        panels = [(k, [k]) for _, keys in panels for k in keys]
    n_series = max(len(grid), max(len(keys) for _, keys in panels))
    height = max(2.2, 0.75 + len(labels) * max(0.26, 0.17 * n_series + 0.08))
    fig, axes = plt.subplots(1, len(panels), figsize=(PLOT_WIDTH_IN, height), sharey=True, squeeze=False)
    for ax, (name, keys) in zip(axes[0], panels, strict=True):
        bars_of = [(s, k, grid[s]) for s in range(len(grid)) for k in keys]  # (series, metric, row per group)
        scale = 2**20 if name.endswith("_bytes") else 1
        values = [float(r[k]) / scale for _, k, col in bars_of for r in col if r is not None]
        lo = min(0.0, *values)
        top = 1.0 if name == "accuracy" else _on_scale_top(values)
        clip = top * 1.3 if any(v > top for v in values) else None
        h = 0.8 / len(bars_of)
        for j, (s, k, col) in enumerate(bars_of):
            ys = [i + (j - (len(bars_of) - 1) / 2) * h for i in range(len(labels))]
            vals = [float(r[k]) / scale if r is not None else 0.0 for r in col]
            shown = [min(v, clip) if clip else v for v in vals]
            legend = " ".join(x for x in (series_names[s], header(k) if len(keys) > 1 else "") if x)
            bars = ax.barh(ys, shown, h, label=legend or None, color=f"C{j}",
                           hatch=["//" if clip and v > clip else "" for v in vals])
            text = [("" if r is None else fmt(k, r[k]).replace(" MiB", "") +
                     (" (off scale)" if clip and v > clip else "")) for r, v in zip(col, vals, strict=True)]
            ax.bar_label(bars, text, fontsize=7.5, padding=2)
        ax.set_xlim(lo, clip * 1.4 if clip else top * (1.22 if name == "accuracy" else 1.3))
        if name == "accuracy":
            ax.set_xticks([0, 0.25, 0.5, 0.75, 1.0])
        ax.set_yticks(range(len(labels)), labels, fontsize=8.5)
        ax.set_ylim(len(labels) - 0.5, -0.5)  # the first row on top
        ax.tick_params(axis="x", labelsize=8)
        ax.grid(axis="x", alpha=0.3)
        ax.set_axisbelow(True)
        unit = " (MiB)" if name.endswith("_bytes") else ""
        ax.set_title(header(name) + unit + (f"\n{_better(name)}" if _better(name) else ""), fontsize=9)
        if len(bars_of) > 1:
            ax.legend(fontsize=7.5, loc="upper center", bbox_to_anchor=(0.5, 0.0), borderaxespad=2.4,
                      ncol=len(bars_of), frameon=False)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=PLOT_DPI, bbox_inches="tight", metadata={"Software": None})
    plt.close(fig)
    return path


@dataclass(frozen=True)
class Plot:
    """One figure of the page: the rows it draws, where it goes, its title and the preferred metrics."""

    rows: list[dict[str, Any]]
    path: Path
    title: str
    metrics: tuple[str, ...] = ()


# -- sections -------------------------------------------------------------------------------------

def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def render_file(bench: Benchmark, path: Path, payload: dict[str, Any] | str, img_dir: Path, md_dir: Path,
                plots: list[Plot]) -> str:
    rel_json = path.relative_to(REPO).as_posix() if path.is_relative_to(REPO) else path.name
    title = f"{short_machine(payload)}" if isinstance(payload, dict) else path.name
    out = [f"### {title}: `{path.name}` {{#result-{_slug(path.stem)}}}\n"]
    if isinstance(payload, str):
        return out[0] + f"`{rel_json}` could not be rendered ({payload}).\n"
    facts = [f"- **Machine:** {machine(payload)}",
             f"- **Date:** {payload.get('date', 'not recorded')}",
             f"- **Command:** `{payload.get('command', 'not recorded')}`"]
    if payload.get("source"):
        facts.append(f"- **Source:** `{payload['source']}`")
    if versions(payload):
        facts.append(f"- **Libraries:** {versions(payload)}")
    load = payload.get("load_average")
    if isinstance(load, list) and load:
        facts.append("- **Load average (1, 5, 15 min) at the end:** " + ", ".join(f"{x:.2f}" for x in load))
    facts.append(f"- **Data:** `{rel_json}`")
    out.append("\n".join(facts) + "\n")
    notes = payload.get("note") or payload.get("notes")
    if notes:
        text = notes if isinstance(notes, str) else " ".join(map(str, notes))
        out.append('!!! note "Note recorded with the result"\n    ' + esc(text).replace("\n", "\n    ") + "\n")
    settings = dict(payload.get("settings") or {}) if isinstance(payload.get("settings"), dict) else {}
    measured: dict[str, Any] = {}  # a result without row lists: its top-level values are what it measured
    for k, v in payload.items():
        if k in META_KEYS or k in row_lists(payload):
            continue
        into = settings if row_lists(payload) else measured
        if isinstance(v, dict):
            into.update({f"{k}.{kk}": vv for kk, vv in v.items()})
        else:
            into[k] = v
    if settings:
        out.append("Settings: " + ", ".join(f"{esc(k)} = `{fmt(k, v)}`" for k, v in settings.items()) + ".\n")
    if measured:
        out.append(table([{"measured": header(k), "value": fmt(k, v)} for k, v in measured.items()],
                         ["measured", "value"]))
    valid = payload.get("valid_rows")
    lists = row_lists(payload)
    if bench.prepare:
        bench.prepare(lists)
    for key, rows in lists.items():
        cols = columns_for(rows, bench.columns_of(key)) or columns_for(rows, ())
        if isinstance(valid, list):
            for r in rows:
                r["valid"] = any(str(r.get(k)) in map(str, valid) for k in LABEL_KEYS)
            cols = [*cols, "valid"]
        if len(lists) > 1:
            out.append(f"**{key}**\n")
        out.append(table(rows, cols))
        shown = [r for r in rows if r.get("valid", True)]
        if shown and has_plot(shown, bench.plot):
            png = img_dir / f"{path.stem}-{_slug(key)}.png"
            plots.append(Plot(shown, png, f"{bench.title} - {short_machine(payload)}" +
                              (" (valid rows)" if len(shown) < len(rows) else ""), bench.plot))
            out.append(f"![{bench.title}: {key}]({os.path.relpath(png, md_dir).replace(os.sep, '/')})\n")
    return "\n".join(out)


def render(results_dir: Path = RESULTS, out_md: Path = OUT_MD, img_dir: Path = IMG_DIR
           ) -> tuple[str, list[Plot]]:
    """The Markdown of the results page and the plots it refers to."""
    found = load_results(results_dir, [b.name for b in BENCHMARKS])
    benches = list(BENCHMARKS) + [Benchmark(n, n.replace("_", " ").capitalize(), f"benchmarks/{n}.py",
                                            "A result file this renderer has no description for.")
                                  for n in sorted(found) if n not in {b.name for b in BENCHMARKS}]
    plots: list[Plot] = []
    measured = [b for b in benches if found.get(b.name)]
    out = [f"<!-- generated by {SCRIPT} from benchmarks/results/*.json: do not edit by hand; rerun it -->\n",
           "# Results\n",
           "Every number on this page is read from a JSON file in `benchmarks/results/`, written by the benchmark "
           "script named in its section, together with the machine, the date, the command and the library "
           f"versions. After running a benchmark, regenerate this page with `python {SCRIPT}` (the test suite "
           "fails while the page is out of date). Numbers from different machines are not comparable; each "
           "table says where it was measured.\n",
           markdown_table(["benchmark", "script", "result files"], [
               (f"[{b.title}](#{_slug(b.name)})", f"`{b.script}`",
                ", ".join(f"`{p.name}`" for p, _ in found.get(b.name, [])) or "not yet measured")
               for b in benches]),
           f"{len(measured)} of {len(benches)} benchmarks measured so far.\n"]
    for b in benches:
        out.append(f"## {b.title} {{#{_slug(b.name)}}}\n")
        out.append(b.about + "\n")
        files = found.get(b.name, [])
        if not files:
            out.append(f"Not yet measured: run `python {b.script}`.\n")
            continue
        for path, payload in files:
            out.append(render_file(b, path, payload, img_dir, out_md.parent, plots))
    return "\n".join(out), plots


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--results-dir", type=Path, default=RESULTS, help="folder of result JSON files")
    p.add_argument("--out", type=Path, default=OUT_MD, help="the Markdown page to write")
    p.add_argument("--img-dir", type=Path, default=IMG_DIR, help="folder for the plots")
    p.add_argument("--check", action="store_true", help="only compare with --out; exit 1 if it is out of date")
    a = p.parse_args(argv)
    text, plots = render(a.results_dir, a.out, a.img_dir)
    if a.check:
        old = a.out.read_text(encoding="utf-8") if a.out.is_file() else ""
        missing = [str(pl.path) for pl in plots if not pl.path.is_file()]
        if old != text or missing:
            print(f"{a.out} is out of date" + (f"; missing plots: {', '.join(missing)}" if missing else "") +
                  f": run python {SCRIPT}", file=sys.stderr)
            return 1
        print(f"{a.out}: up to date")
        return 0
    for pl in plots:
        plot_rows(pl.rows, pl.path, pl.title, pl.metrics)
        print(f"wrote {pl.path}")
    keep = {pl.path.resolve() for pl in plots}
    for old_png in sorted(a.img_dir.glob("*.png")) if a.img_dir.is_dir() else []:
        if old_png.resolve() not in keep:  # a plot of a result file that no longer exists
            old_png.unlink()
            print(f"removed {old_png}")
    write_text_atomic(a.out, text)
    print(f"wrote {a.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
