"""Evaluation metrics (:mod:`attnlab.evaluation.metrics`) as text a person reads, all through the one
table writer (:func:`attnlab.evaluation.tables.markdown_table`): for classification the headline
numbers, a per-class table and the confusion matrix as a small table; for regression the error and
correlation numbers; for multi-label the averages and a per-label table with each label's threshold."""

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


def _num(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.4f}"


def per_label_table(metrics: dict[str, Any]) -> str:
    """Multi-label: precision, recall, F1, support and threshold per label, then the micro and macro averages."""
    rows = [[name, _num(m["precision"]), _num(m["recall"]), _num(m["f1-score"]), f"{m['support']:,}",
             f"{m['threshold']:.3f}"] for name, m in metrics["per_label"].items()]
    for avg in ("micro", "macro"):
        rows.append([f"({avg})", _num(metrics[f"{avg}_precision"]), _num(metrics[f"{avg}_recall"]),
                     _num(metrics[f"{avg}_f1"]), "", ""])
    return markdown_table(["label", "precision", "recall", "F1", "support", "threshold"], rows, align="lrrrrr")


def _body(metrics: dict[str, Any], speed: str) -> list[str]:
    """The lines after the first, per task."""
    task = metrics.get("task", "classification")
    if task == "regression":
        return [f"MSE {_num(metrics['mse'])}  RMSE {_num(metrics['rmse'])}  MAE {_num(metrics['mae'])}  "
                f"R² {_num(metrics['r2'])}" + speed,
                f"Pearson r {_num(metrics['pearson'])}  Spearman rho {_num(metrics['spearman'])}"]
    if task == "multi-label":
        return [f"micro-F1 {_num(metrics['micro_f1'])}  macro-F1 {_num(metrics['macro_f1'])}  subset accuracy "
                f"{_num(metrics['subset_accuracy'])}  Hamming loss {_num(metrics['hamming_loss'])}" + speed,
                "", per_label_table(metrics)]
    return [f"accuracy {metrics['accuracy']:.4f}  macro-F1 {metrics['macro_f1']:.4f}" + speed,
            "", per_class_table(metrics), "confusion matrix (rows: true class, columns: predicted class)", "",
            confusion_table(metrics)]


def format_metrics(metrics: dict[str, Any]) -> str:
    """What ``attnlab evaluate`` prints: what was scored, the task's headline numbers and its tables
    (classification: per class and the confusion matrix; multi-label: per label)."""
    head = [f"{k}: {metrics[k]}" for k in ("run", "data", "split") if metrics.get(k) is not None]
    speed = metrics.get("sentences_per_second")
    lines = ["  ".join([*head, f"examples: {metrics['examples']:,}"]), *_body(metrics, f"  ({speed:,.0f} texts/s)"
                                                                             if speed else "")]
    return "\n".join(lines).rstrip("\n")

