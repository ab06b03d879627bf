"""Multi-label classification (``--task multi-label``): the sequence classifier with one sigmoid per
label, trained with binary cross-entropy on multi-hot targets (transformers'
``problem_type="multi_label_classification"``).

The data's label column holds a set of labels per text (:mod:`attnlab.data.labels`, kind ``multi``:
lists, or strings such as ``"a|b"``); ``labels.json`` holds the vocabulary. A text gets every label
whose probability reaches that label's threshold. The thresholds are tuned once training ends, on
the validation split (per label, the cut that maximises its F1:
:func:`attnlab.evaluation.metrics.tune_thresholds`), recorded in ``labels.json`` beside the labels,
and applied to test and to every later prediction. Each split is scored by micro- and macro-F1,
subset accuracy and Hamming loss (plus the same at 0.5, for reference)."""

from __future__ import annotations

from typing import Any

import numpy as np

from attnlab.evaluation.metrics import multilabel_metrics, tune_thresholds
from attnlab.training import classification
from attnlab.training.tasks import Task

PROBLEM_TYPE = "multi_label_classification"


def sigmoid(logits: Any) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.asarray(logits, dtype=np.float64)))


def build_model(cfg, resolved, ds, tokenizer: Any, load_kwargs: dict[str, Any]):
    """The sequence classifier with one output per label, trained with BCE on each."""
    return classification.build_model(cfg, resolved, ds, tokenizer, load_kwargs, problem_type=PROBLEM_TYPE)


def thresholds_of(calibration: dict[str, Any], labels: list[str]) -> list[float] | None:
    """The recorded per-label thresholds in label order (None: none recorded yet, 0.5 each)."""
    cuts = calibration.get("thresholds")
    return None if not cuts else [float(cuts[name]) for name in labels]


def score(predictions: Any, targets: Any, labels: list[str], calibration: dict[str, Any]) -> dict[str, Any]:
    """The multi-label metrics at the recorded thresholds; with thresholds, the same at 0.5 beside them."""
    probs = sigmoid(predictions)
    cuts = thresholds_of(calibration, labels)
    out = multilabel_metrics(np.asarray(targets), probs, labels, cuts)
    if cuts is not None:
        plain = multilabel_metrics(np.asarray(targets), probs, labels)
        out["at_0.5"] = {k: plain[k] for k in ("micro_f1", "macro_f1", "subset_accuracy")}
    return out


def calibrate(predictions: Any, targets: Any, labels: list[str]) -> dict[str, Any]:
    """labels.json's ``thresholds``: per label, the cut of best F1 on these (validation) predictions."""
    cuts = tune_thresholds(np.asarray(targets), sigmoid(predictions))
    return {"thresholds": dict(zip(labels, cuts, strict=True)), "thresholds_tuned_on": "validation (per-label F1)"}


TASK = Task(
    "multi-label", "SEQ_CLS", encode=lambda ds, tok, cfg: classification.tokenize(ds, tok, cfg.max_length),
    build_model=build_model, trainer_parts=classification.trainer_parts, label_kind="multi", score=score,
    calibrate=calibrate, logged=("micro_f1", "macro_f1", "subset_accuracy"), best_metric="micro_f1",
    headline=("micro_f1", "macro_f1", "subset_accuracy"), confusion_matrix=False,
    card_line="task: multi-label (one sigmoid per label, trained with BCE; a label applies when its probability "
              "reaches its threshold in labels.json, tuned on validation)")

__all__ = ["PROBLEM_TYPE", "TASK", "build_model", "calibrate", "score", "sigmoid", "thresholds_of"]
