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
LABEL_KEYS = ("model", "method", "name", "config", "variant", "backend", "precision_mode", "rank", "r", "targets",
              "concurrency", "batch_size")
QUALITY_KEYS = ("test_accuracy", "validation_accuracy", "accuracy", "test_macro_f1", "macro_f1")
COST_KEYS = ("epoch_seconds", "train_wall_seconds", "tokens_per_second", "samples_per_second", "texts_per_second",
             "requests_per_second", "latency_p50_ms", "p50_ms", "latency_ms", "peak_gpu_bytes", "peak_rss_bytes")


@dataclass(frozen=True)
class Benchmark:
    name: str
    title: str
    script: str
    about: str
    columns: tuple[str, ...] = ()  # preferred row columns, in order (others follow); empty: all


BENCHMARKS = [
    Benchmark("sst2", "SST-2: full fine-tuning vs LoRA", "benchmarks/sst2.py",
              "Each method trained with attnlab's defaults on the GLUE SST-2 training set; the best epoch is chosen "
              "on validation; accuracy on validation and test, trainable parameters, time per epoch and LoRA's "
              "epoch speedup over full fine-tuning.",
              ("model", "method", "validation_accuracy", "test_accuracy", "test_macro_f1", "trainable_params",
               "trainable_percent", "learning_rate", "epoch_seconds", "epoch_speedup_vs_full", "epoch_step_seconds",
               "step_time_speedup_vs_full", "tokens_per_second", "precision", "device", "peak_gpu_bytes",
               "peak_rss_bytes", "checkpoint_bytes")),
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
              "Short training runs with one speed-related setting changed at a time."),
    Benchmark("lora_step", "Training step: full vs LoRA, phase by phase", "benchmarks/lora_step.py",
              "Forward, backward and optimizer time of full fine-tuning, LoRA, attention-only LoRA and the frozen "
              "floor (no adapters, gradient to the first layer) on the same real SST-2 batches."),
    Benchmark("infer_speed", "Inference speed", "benchmarks/infer_speed.py",
              "Prediction throughput and latency of a finished run: torch and ONNX Runtime engines, fp32 and "
              "int8, against transformers.pipeline."),
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
            return f"{value:,.1f}" if abs(value) >= 1 else f"{value:.3g}"
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
             "peak_gpu_bytes": "peak GPU mem", "peak_rss_bytes": "peak RSS", "checkpoint_bytes": "checkpoint"}
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
    return [c for c in preferred if c in seen]


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
    """A short name per row from the label keys whose values differ between rows (model, method, ...)."""
    present = [k for k in LABEL_KEYS if any(r.get(k) is not None for r in rows)]
    varying = [k for k in present if len({str(r.get(k)) for r in rows}) > 1] or present[:2]
    return [" / ".join(str(r.get(k)) for k in varying[:3]) or f"row {i}" for i, r in enumerate(rows)]


# -- plots ----------------------------------------------------------------------------------------

def plot_rows(rows: list[dict[str, Any]], path: Path, title: str) -> Path | None:
    """Bars of the headline quality metric(s) and one cost metric, one bar per row; None if no metric."""
    def numeric(k: str) -> bool:
        return all(isinstance(r.get(k), int | float) and not isinstance(r.get(k), bool) for r in rows)

    quality = [k for k in QUALITY_KEYS if numeric(k)][:2]
    cost = [k for k in COST_KEYS if numeric(k)][:1]
    panels = ([("accuracy", quality)] if quality else []) + ([(cost[0], cost)] if cost else [])
    if not panels:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = row_labels(rows)
    fig, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels) + 0.6, 3.0), squeeze=False)
    for ax, (name, keys) in zip(axes[0], panels, strict=True):
        width = 0.8 / len(keys)
        for j, k in enumerate(keys):
            xs = [i + (j - (len(keys) - 1) / 2) * width for i in range(len(rows))]
            vals = [float(r[k]) / (2**20 if k.endswith("_bytes") else 1) for r in rows]
            bars = ax.bar(xs, vals, width, label=header(k))
            ax.bar_label(bars, [fmt(k, r[k]).replace(" MiB", "") for r in rows], fontsize=7, padding=1)
        ax.set_xticks(range(len(rows)), labels, rotation=20, ha="right", fontsize=8)
        ax.set_title(header(name) + (" (MiB)" if name.endswith("_bytes") else ""), fontsize=9)
        if name == "accuracy":
            lo = min(float(r[k]) for r in rows for k in keys)
            ax.set_ylim(max(0.0, lo - 0.15), 1.0)
            ax.legend(fontsize=7, loc="lower right")
        ax.margins(y=0.15)
        ax.set_xlim(-0.5 - 0.5 / len(rows), len(rows) - 0.5 + 0.5 / len(rows))
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=90, bbox_inches="tight", metadata={"Software": None})
    plt.close(fig)
    return path


def has_plot(rows: list[dict[str, Any]]) -> bool:
    def numeric(k: str) -> bool:
        return all(isinstance(r.get(k), int | float) and not isinstance(r.get(k), bool) for r in rows)

    return any(numeric(k) for k in QUALITY_KEYS + COST_KEYS)


# -- sections -------------------------------------------------------------------------------------

def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def render_file(bench: Benchmark, path: Path, payload: dict[str, Any] | str, img_dir: Path, md_dir: Path,
                plots: list[tuple[list[dict[str, Any]], Path, str]]) -> str:
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
    for key, rows in row_lists(payload).items():
        cols = columns_for(rows, bench.columns) or columns_for(rows, ())
        if isinstance(valid, list):
            for r in rows:
                r["valid"] = any(str(r.get(k)) in map(str, valid) for k in LABEL_KEYS)
            cols = [*cols, "valid"]
        if len(row_lists(payload)) > 1:
            out.append(f"**{key}**\n")
        out.append(table(rows, cols))
        shown = [r for r in rows if r.get("valid", True)]
        if shown and has_plot(shown):
            png = img_dir / f"{path.stem}-{_slug(key)}.png"
            plots.append((shown, png, f"{bench.title} - {short_machine(payload)}" +
                          (" (valid rows)" if len(shown) < len(rows) else "")))
            out.append(f"![{bench.title}: {key}]({os.path.relpath(png, md_dir).replace(os.sep, '/')})\n")
    return "\n".join(out)


def render(results_dir: Path = RESULTS, out_md: Path = OUT_MD, img_dir: Path = IMG_DIR
           ) -> tuple[str, list[tuple[list[dict[str, Any]], Path, str]]]:
    """The Markdown of the results page and the plots it refers to (rows, path, title)."""
    found = load_results(results_dir, [b.name for b in BENCHMARKS])
    benches = list(BENCHMARKS) + [Benchmark(n, n.replace("_", " ").capitalize(), f"benchmarks/{n}.py",
                                            "A result file this renderer has no description for.")
                                  for n in sorted(found) if n not in {b.name for b in BENCHMARKS}]
    plots: list[tuple[list[dict[str, Any]], Path, str]] = []
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
        missing = [str(png) for _, png, _ in plots if not png.is_file()]
        if old != text or missing:
            print(f"{a.out} is out of date" + (f"; missing plots: {', '.join(missing)}" if missing else "") +
                  f": run python {SCRIPT}", file=sys.stderr)
            return 1
        print(f"{a.out}: up to date")
        return 0
    for rows, png, title in plots:
        plot_rows(rows, png, title)
        print(f"wrote {png}")
    keep = {png.resolve() for _, png, _ in plots}
    for old_png in sorted(a.img_dir.glob("*.png")) if a.img_dir.is_dir() else []:
        if old_png.resolve() not in keep:  # a plot of a result file that no longer exists
            old_png.unlink()
            print(f"removed {old_png}")
    write_text_atomic(a.out, text)
    print(f"wrote {a.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
