"""What a fine-tuning method is: a name, default hyper-parameters, and how it turns a freshly
loaded model into the one Trainer trains. Adding a method is one module plus one line in
``methods/__init__.py``."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from torch import nn

HEAD_PREFIXES = ("classifier", "score", "pre_classifier", "classification_head", "lm_head")


@dataclass(frozen=True)
class Method:
    name: str
    description: str
    learning_rate: float  # default when the user gives none
    prepare: Callable[[nn.Module, Any], nn.Module]  # (model, TrainConfig) -> model to train
    load_kwargs: Callable[[Any], dict[str, Any]] = field(default=lambda cfg: {})  # extra from_pretrained args
    is_adapter: bool = False  # saves a PEFT adapter rather than a full model


def is_head_param(name: str) -> bool:
    return name.split(".")[0] in HEAD_PREFIXES or any(f".{p}." in f".{name}" for p in HEAD_PREFIXES[:4])


def count_params(model: nn.Module) -> tuple[int, int]:
    """(trainable, total) parameter counts."""
    total = sum(p.numel() for p in model.parameters())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return trainable, total
