"""What a task is (classification: a head on the model; text2text: a seq2seq model writes the label):
one :class:`Task` with how texts become inputs and targets, which model trains, how the Trainer
batches and evaluates it, and what its run records beyond the classification metrics. ``train`` and
``tune`` ask the task; neither branches on its name.

Both tasks score every example as K class scores (a classifier's logits, or the K label words'
log-likelihoods), so accuracy, macro-F1, the confusion matrix and prediction are shared.
Prediction for a run lives in :mod:`attnlab.inference` (it reads the run's ``task``)."""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from attnlab.errors import UserError


def _nothing(*args: Any) -> dict[str, Any]:
    return {}


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


@functools.cache
def _tasks() -> dict[str, Task]:
    from attnlab.training import classification, text2text

    return {t.name: t for t in (classification.TASK, text2text.TASK)}


def get_task(name: str) -> Task:
    tasks = _tasks()
    if name not in tasks:
        raise UserError(f"unknown task '{name}'", where="--task", fix=f"pick one of {', '.join(tasks)}")
    return tasks[name]


__all__ = ["Task", "get_task"]
