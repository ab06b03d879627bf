"""Full fine-tuning: every weight trains."""

from __future__ import annotations

from typing import TYPE_CHECKING

from attnlab.training.methods.base import CLASSIFIER_TASKS, Method

if TYPE_CHECKING:
    from torch import nn


def prepare(model: nn.Module, cfg) -> nn.Module:
    from attnlab.models.pooling import bypassed_parameters

    for p in model.parameters():
        p.requires_grad_(True)
    for p in bypassed_parameters(model):  # a pooler the pooling bypasses feeds nothing: no gradient comes
        p.requires_grad_(False)
    return model


METHOD = Method("full", "every weight trains (the reference)", 5e-5, prepare, tasks=(*CLASSIFIER_TASKS, "text2text"))
