"""What a task is (classification: a head on the model; text2text: a seq2seq model writes the label;
regression: one output scored against a number; multi-label: one sigmoid per label): one :class:`Task`
with how texts become inputs and targets, which model trains, how the Trainer batches and evaluates
it, how a split's predictions are scored, and what its run records beyond the metrics. ``train`` and
``tune`` ask the task; neither branches on its name.

Classification and text2text score every example as K class scores (a classifier's logits, or the
K label words' log-likelihoods), so accuracy, macro-F1, the confusion matrix and prediction are
shared. Regression (:mod:`attnlab.training.regression`) and multi-label
(:mod:`attnlab.training.multilabel`) train the same sequence classifier with another
``problem_type`` (MSE; BCE with logits) and score with their own metrics.
Prediction for a run lives in :mod:`attnlab.inference` (it reads the run's ``task``)."""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from attnlab.errors import UserError


def _nothing(*args: Any) -> dict[str, Any]:
    return {}


def classification_score(predictions: Any, label_ids: Any, labels: list[str], calibration: dict[str, Any]
                         ) -> dict[str, Any]:
    """Classification metrics of the argmax of K class scores per example."""
    import numpy as np

    from attnlab.evaluation.metrics import classification_metrics

    return classification_metrics(np.asarray(label_ids), np.asarray(predictions).argmax(-1), labels)


@dataclass(frozen=True)
class Task:
    name: str
    peft_task_type: str  # what LoRA wraps the model as (PEFT's TaskType)
    # (dataset, tokenizer, TrainConfig) -> tokenized splits, each with a "length" column
    encode: Callable[[Any, Any, Any], Any]
    # (TrainConfig, ResolvedModel, dataset, tokenizer, from_pretrained kwargs) -> a fresh, unprepared model
    build_model: Callable[[Any, Any, Any, Any, dict[str, Any]], Any]
    # (tokenizer, labels, TrainConfig) -> (Trainer class, data collator)
    trainer_parts: Callable[[Any, list[str], Any], tuple[Callable[..., Any], Any]]
    check: Callable[[Any], Any] = _nothing  # (TrainConfig) -> None; fails before data or weights load
    # (trained model, tokenizer, tokenized split, TrainConfig) -> extra metrics for that split
    split_metrics: Callable[[Any, Any, Any, Any], dict[str, Any]] = field(default=_nothing)
    # (tokenizer, labels, TrainConfig) -> extra metrics.json entries
    describe: Callable[[Any, list[str], Any], dict[str, Any]] = field(default=_nothing)
    card_line: str | None = None  # what the model card says about the task, if anything
    label_kind: str = "class"  # what the data's label column holds (attnlab.data.labels: class, score, multi)
    # (predictions (N, K) from Trainer, label ids/targets, labels, calibration) -> the split's metrics
    score: Callable[[Any, Any, list[str], dict[str, Any]], dict[str, Any]] = field(default=classification_score)
    # (validation predictions, label ids/targets, labels) -> what labels.json records to use the model
    # beside the labels (multi-label: the per-label thresholds tuned on validation)
    calibrate: Callable[[Any, Any, list[str]], dict[str, Any]] = field(default=_nothing)
    logged: tuple[str, ...] = ("accuracy", "macro_f1")  # the metrics Trainer logs at each evaluation
    best_metric: str = "accuracy"  # what --metric-for-best-model means when it is not given
    headline: tuple[str, ...] = ("accuracy", "macro_f1")  # what `attnlab train` prints, and the model card
    confusion_matrix: bool = True  # whether its metrics hold a confusion matrix to draw


@functools.cache
def _tasks() -> dict[str, Task]:
    from attnlab.training import classification, multilabel, regression, text2text

    return {t.name: t for t in (classification.TASK, text2text.TASK, regression.TASK, multilabel.TASK)}


def get_task(name: str) -> Task:
    tasks = _tasks()
    if name not in tasks:
        raise UserError(f"unknown task '{name}'", where="--task", fix=f"pick one of {', '.join(tasks)}")
    return tasks[name]


def require_classes(cfg: Any, what: str) -> Task:
    """``cfg``'s task when it predicts classes (accuracy and macro-F1: what ``what`` ranks runs by);
    a one-line UserError for regression and multi-label."""
    task = get_task(cfg.task)
    if task.label_kind != "class":
        raise UserError(f"{what} ranks runs by accuracy, which --task {task.name} has not", where="--task",
                        fix=f"train each method with `attnlab train --task {task.name}` and read their metrics.json "
                            f"(or `attnlab evaluate`), or drop --task")
    return task


LOWER_IS_BETTER = frozenset({"loss", "mse", "rmse", "mae", "hamming_loss"})


def best_metric(cfg: Any) -> str:
    """The validation metric that picks the best checkpoint: ``cfg.metric_for_best_model``, else the task's."""
    return cfg.metric_for_best_model or get_task(cfg.task).best_metric


def greater_is_better(metric: str) -> bool:
    return metric not in LOWER_IS_BETTER


def check_best_metric(cfg: Any, task: Task) -> None:
    """A one-line UserError for a --metric-for-best-model the task does not compute."""
    metric = cfg.metric_for_best_model
    if metric is not None and metric != "loss" and metric not in task.logged:
        raise UserError(f"--metric-for-best-model {metric} is not a {task.name} metric",
                        where="--metric-for-best-model",
                        fix=f"pick one of {', '.join((*task.logged, 'loss'))}, or leave it out ({task.best_metric})")


__all__ = ["LOWER_IS_BETTER", "Task", "best_metric", "check_best_metric", "classification_score", "get_task",
           "greater_is_better", "require_classes"]
