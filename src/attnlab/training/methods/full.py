"""Full fine-tuning: every weight trains."""

from __future__ import annotations

from torch import nn

from attnlab.training.methods.base import Method


def prepare(model: nn.Module, cfg) -> nn.Module:
    for p in model.parameters():
        p.requires_grad_(True)
    return model


METHOD = Method("full", "every weight trains (the reference)", 5e-5, prepare)
