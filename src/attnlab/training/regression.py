"""Regression (``--task regression``): the sequence classifier with one output, trained with MSE
against a number per text (transformers' ``problem_type="regression"``).

The data's label column holds the target (:mod:`attnlab.data.labels`, kind ``score``); ``labels.json``
names that one output: the target's name (the label column's, e.g. ``stars``, or ``rating`` for
``movie-snippet-ratings``). Targets are used as they are (no scaling), so the model predicts in the
target's own units. Each split is scored by MSE, RMSE, MAE, R² and Pearson's and Spearman's
correlations (:func:`attnlab.evaluation.metrics.regression_metrics`); the best checkpoint is the one
of lowest validation MSE unless ``--metric-for-best-model`` says otherwise."""

from __future__ import annotations

from typing import Any

import numpy as np

from attnlab.evaluation.metrics import regression_metrics
from attnlab.training import classification
from attnlab.training.tasks import Task

PROBLEM_TYPE = "regression"


def build_model(cfg, resolved, ds, tokenizer: Any, load_kwargs: dict[str, Any]):
    """The sequence classifier with one output (``ds.labels`` is the target's name), trained with MSE."""
    return classification.build_model(cfg, resolved, ds, tokenizer, load_kwargs, problem_type=PROBLEM_TYPE)


def score(predictions: Any, targets: Any, labels: list[str], calibration: dict[str, Any]) -> dict[str, Any]:
    """The regression metrics of the one output per example against its target."""
    return regression_metrics(np.asarray(targets), np.asarray(predictions).reshape(len(targets), -1)[:, 0])


TASK = Task(
    "regression", "SEQ_CLS", encode=lambda ds, tok, cfg: classification.tokenize(ds, tok, cfg.max_length),
    build_model=build_model, trainer_parts=classification.trainer_parts, label_kind="score", score=score,
    logged=("mse", "mae", "pearson", "spearman"), best_metric="mse", headline=("mse", "pearson", "spearman"),
    confusion_matrix=False,
    card_line="task: regression (one output, trained with MSE; `model/` is a transformers sequence classifier "
              "with num_labels=1 and problem_type regression: its logit is the prediction)")

__all__ = ["PROBLEM_TYPE", "TASK", "build_model", "score"]
