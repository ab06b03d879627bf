"""The model card (README.md) of a run directory, from its metrics."""

from __future__ import annotations

from typing import Any

from attnlab.evaluation.tables import markdown_table


def _pct(x: float | None) -> str:
    return "n/a" if x is None else f"{100 * x:.2f}"


TITLES = {"accuracy": "accuracy (%)", "macro_f1": "macro-F1 (%)", "micro_f1": "micro-F1 (%)",
          "subset_accuracy": "subset accuracy (%)", "mse": "MSE", "pearson": "Pearson r", "spearman": "Spearman rho"}
PERCENT = {"accuracy", "macro_f1", "micro_f1", "subset_accuracy"}


def _cell(metric: str, x: float | None) -> str:
    return _pct(x) if metric in PERCENT else ("n/a" if x is None else f"{x:.4f}")


def model_card(m: dict[str, Any], cfg: dict[str, Any], task_line: str | None = None, *,
               headline: tuple[str, ...] = ("accuracy", "macro_f1"), confusion_matrix: bool = True) -> str:
    """README.md from metrics.json (``m``) and config.yaml (``cfg``); ``task_line``: the task's own line;
    ``headline``: the task's metrics the table shows; ``confusion_matrix``: whether the run drew one."""
    t, v, tr = m["test"], m["validation"], m["training"]
    p = m["params"]
    lines = [
        f"# {m['run']}: {m['model']} fine-tuned with {m['method']} on {m['data']}",
        "",
        "Trained with [attnlab](https://pypi.org/project/attnlab/). Load it with `attnlab.load(\"<this folder>\")`,",
        "or with plain transformers/PEFT from `model/`.",
        "",
        *markdown_table(["split", *(TITLES.get(k, k) for k in headline), "examples"],
                        [[split, *(_cell(k, s.get(k)) for k in headline), s["examples"]]
                         for split, s in (("validation", v), ("test", t))]).splitlines(),
        "",
        f"- labels: {', '.join(m['labels'])}",
        *([f"- {task_line}"] if task_line else []),
        f"- trainable parameters: {p['trainable']:,} of {p['total']:,} ({p['trainable_percent']:.2f}%)",
        f"- training: {tr['epochs']:.2f} epochs, {tr['steps']} steps, {tr['wall_seconds']:.1f} s wall,"
        f" precision {tr['precision']}, device {tr['device']}, batch {tr['batch_size']}, lr {tr['learning_rate']}",
        f"- checkpoint size: {m['checkpoint_bytes'] / 2**20:.1f} MiB; peak RSS {m['peak_rss_bytes'] / 2**30:.2f} GiB",
        f"- hardware: {m['hardware'].get('cpu')} ({m['hardware'].get('cpu_cores')} cores)"
        + (f", GPU {m['hardware']['gpu']}" if m["hardware"].get("gpu") else ""),
        f"- versions: {', '.join(f'{k} {v}' for k, v in m['versions'].items())}",
        "",
        *(["## Test confusion matrix (rows = true, columns = predicted)", "",
           "![confusion matrix](confusion_matrix.png) ![training curve](loss.png)"] if confusion_matrix
          else ["## Training curve", "", "![training curve](loss.png)"]),
        "",
        "## Settings",
        "",
        "```yaml",
        *[f"{k}: {v}" for k, v in cfg.items()],
        "```",
        "",
    ]
    return "\n".join(lines)
