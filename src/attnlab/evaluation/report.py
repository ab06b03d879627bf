"""Classification metrics (:func:`attnlab.evaluation.metrics.classification_metrics`) as text a person
reads: the headline numbers, a per-class table and the confusion matrix as a small table, all through
the one table writer (:func:`attnlab.evaluation.tables.markdown_table`)."""

from __future__ import annotations

from typing import Any

from attnlab.evaluation.tables import markdown_table


def per_class_table(metrics: dict[str, Any]) -> str:
    """Precision, recall, F1 and support per class, then the macro average."""
    rows = [[name, f"{m['precision']:.4f}", f"{m['recall']:.4f}", f"{m['f1-score']:.4f}", f"{int(m['support']):,}"]
            for name, m in metrics["per_class"].items()]
    rows.append(["(macro)", f"{metrics['macro_precision']:.4f}", f"{metrics['macro_recall']:.4f}",
                 f"{metrics['macro_f1']:.4f}", f"{metrics['examples']:,}"])
    return markdown_table(["class", "precision", "recall", "F1", "support"], rows, align="lrrrr")


def confusion_table(metrics: dict[str, Any]) -> str:
    """The confusion matrix: one row per true class, one column per predicted class."""
    names = list(metrics["per_class"])
    rows = [[name, *(f"{n:,}" for n in counts)] for name, counts in zip(names, metrics["confusion_matrix"],
                                                                        strict=True)]
    return markdown_table(["true \\ predicted", *names], rows, align="l" + "r" * len(names))


def format_metrics(metrics: dict[str, Any]) -> str:
    """What ``attnlab evaluate`` prints: what was scored, accuracy and macro-F1, and the two tables."""
    head = [f"{k}: {metrics[k]}" for k in ("run", "data", "split") if metrics.get(k) is not None]
    speed = metrics.get("sentences_per_second")
    lines = ["  ".join([*head, f"examples: {metrics['examples']:,}"]),
             f"accuracy {metrics['accuracy']:.4f}  macro-F1 {metrics['macro_f1']:.4f}"
             + (f"  ({speed:,.0f} texts/s)" if speed else ""),
             "", per_class_table(metrics), "confusion matrix (rows: true class, columns: predicted class)", "",
             confusion_table(metrics)]
    return "\n".join(lines).rstrip("\n")
