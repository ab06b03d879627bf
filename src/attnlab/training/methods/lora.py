"""LoRA (Hu et al., 2021) through PEFT: W x + (alpha / r) * B A x, with A (r x d_in) and B (d_out x r)
trained and W frozen. By default every linear layer of the encoder (attention and MLP) gets an
adapter; the classification head trains in full."""

from __future__ import annotations

from peft import LoraConfig, TaskType, get_peft_model
from torch import nn

from attnlab.errors import UserError
from attnlab.training.methods.base import Method


def lora_config(cfg, task_type: TaskType = TaskType.SEQ_CLS) -> LoraConfig:
    targets = cfg.lora_targets or "all-linear"
    return LoraConfig(
        task_type=task_type,
        r=cfg.lora_r,
        lora_alpha=cfg.resolved_lora_alpha,
        lora_dropout=cfg.lora_dropout,
        target_modules=targets,
        bias="none",
    )


def prepare(model: nn.Module, cfg) -> nn.Module:
    try:
        return get_peft_model(model, lora_config(cfg))
    except ValueError as exc:
        raise UserError(f"LoRA could not be applied: {str(exc).splitlines()[0]}", where="--lora-targets",
                        fix="name linear layers of this model, e.g. query,value") from None


METHOD = Method("lora", "low-rank adapters on every attention and MLP linear layer (PEFT)", 5e-4, prepare,
                is_adapter=True)
