"""Classification metrics from scikit-learn, in one JSON-ready dict."""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.metrics import (
    accuracy_score,
    classification_report,
    confusion_matrix,
    precision_recall_fscore_support,
)


def classification_metrics(labels: np.ndarray, preds: np.ndarray, label_names: list[str]) -> dict[str, Any]:
    """accuracy, macro precision/recall/F1, per-class report and confusion matrix (rows = truth)."""
    ids = list(range(len(label_names)))
    p, r, f1, _ = precision_recall_fscore_support(labels, preds, labels=ids, average="macro", zero_division=0)
    report = classification_report(labels, preds, labels=ids, target_names=label_names, output_dict=True,
                                   zero_division=0)
    return {
        "accuracy": float(accuracy_score(labels, preds)),
        "macro_f1": float(f1),
        "macro_precision": float(p),
        "macro_recall": float(r),
        "per_class": {name: {k: float(v) for k, v in report[name].items()} for name in label_names},
        "confusion_matrix": confusion_matrix(labels, preds, labels=ids).tolist(),
        "examples": len(labels),
    }
