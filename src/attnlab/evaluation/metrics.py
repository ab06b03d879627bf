"""The metrics of each task from scikit-learn (and SciPy for the correlations), each in one JSON-ready dict:
classification, regression and multi-label (with the per-label thresholds tuned on validation)."""

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


def regression_metrics(targets: np.ndarray, preds: np.ndarray) -> dict[str, Any]:
    """MSE, RMSE, MAE, R², Pearson's r and Spearman's rho of predicted against true scores
    (scikit-learn and SciPy). A correlation is None where it is undefined (a constant prediction or target)."""
    from scipy.stats import pearsonr, spearmanr
    from sklearn.metrics import mean_absolute_error, mean_squared_error, r2_score

    y, p = np.asarray(targets, dtype=np.float64).ravel(), np.asarray(preds, dtype=np.float64).ravel()
    varied = len(y) > 1 and np.ptp(y) > 0 and np.ptp(p) > 0

    def corr(f) -> float | None:
        return float(f(y, p)[0]) if varied else None

    mse = float(mean_squared_error(y, p))
    return {"mse": mse, "rmse": mse ** 0.5, "mae": float(mean_absolute_error(y, p)),
            "r2": float(r2_score(y, p)) if len(y) > 1 else None,
            "pearson": corr(pearsonr), "spearman": corr(spearmanr), "examples": len(y)}


DEFAULT_THRESHOLD = 0.5


def multilabel_metrics(targets: np.ndarray, probs: np.ndarray, label_names: list[str],
                       thresholds: list[float] | np.ndarray | None = None) -> dict[str, Any]:
    """Micro/macro precision, recall and F1, subset accuracy (every label of a text right), Hamming loss
    and a per-label report, for ``probs`` (N, K) cut at ``thresholds`` (one per label; default 0.5)."""
    from sklearn.metrics import hamming_loss

    y = np.asarray(targets) > 0.5
    cut = np.full(len(label_names), DEFAULT_THRESHOLD) if thresholds is None else np.asarray(thresholds)
    pred = np.asarray(probs) >= cut
    out: dict[str, Any] = {}
    for avg in ("micro", "macro"):
        p, r, f1, _ = precision_recall_fscore_support(y, pred, average=avg, zero_division=0)
        out |= {f"{avg}_f1": float(f1), f"{avg}_precision": float(p), f"{avg}_recall": float(r)}
    p, r, f1, support = precision_recall_fscore_support(y, pred, average=None, zero_division=0)
    out["subset_accuracy"] = float(accuracy_score(y, pred))
    out["hamming_loss"] = float(hamming_loss(y, pred))
    out["per_label"] = {name: {"precision": float(p[i]), "recall": float(r[i]), "f1-score": float(f1[i]),
                               "support": int(support[i]), "threshold": float(cut[i])}
                        for i, name in enumerate(label_names)}
    out["examples"] = len(y)
    return out


def tune_thresholds(targets: np.ndarray, probs: np.ndarray) -> list[float]:
    """Per label, the probability cut that maximises that label's F1 on (``targets``, ``probs``): each
    distinct probability is a candidate (ties go to the cut nearest 0.5); a label with no positive
    rows keeps 0.5."""
    y, probs = np.asarray(targets) > 0.5, np.asarray(probs, dtype=np.float64)
    cuts = []
    for k in range(probs.shape[1]):
        yk, pk = y[:, k], probs[:, k]
        if not yk.any():
            cuts.append(DEFAULT_THRESHOLD)
            continue
        candidates = np.unique(pk)
        pred = pk[None, :] >= candidates[:, None]  # (C, N)
        tp = (pred & yk).sum(1)
        f1 = 2 * tp / (pred.sum(1) + yk.sum())
        best = np.flatnonzero(f1 == f1.max())
        cuts.append(float(candidates[best[np.argmin(np.abs(candidates[best] - DEFAULT_THRESHOLD))]]))
    return cuts
