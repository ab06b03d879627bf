"""Head only: the encoder is frozen, only the classification head trains (the linear-probe
baseline; cheap, and a lower bound for what fine-tuning buys)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from attnlab.errors import UserError
from attnlab.training.methods.base import Method, is_head_param

if TYPE_CHECKING:
    from torch import nn


def prepare(model: nn.Module, cfg) -> nn.Module:
    found = False
    for name, p in model.named_parameters():
        train = is_head_param(name)
        p.requires_grad_(train)
        found |= train
    if not found:
        raise UserError(f"no classification head found in {type(model).__name__}", where="--method head",
                        fix="use --method full or lora for this model")
    return model


# the frozen encoder never gets a gradient: DDP need not search the graph for unused parameters
METHOD = Method("head", "frozen encoder, classifier head only (linear probe)", 2e-3, prepare,
                find_unused_parameters=False, auto_pooling="checkpoint")
