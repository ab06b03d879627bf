"""What a fine-tuning method is: a name, default hyper-parameters, and how it turns a freshly
loaded model into the one Trainer trains. Adding a method is one module plus one line in
``methods/__init__.py``."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from attnlab.models.heads import HEAD_PREFIXES, is_head_param


@dataclass(frozen=True)
class Method:
    name: str
    description: str
    learning_rate: float  # default when the user gives none
    prepare: Callable[[nn.Module, Any], nn.Module]  # (model, TrainConfig) -> model to train
    load_kwargs: Callable[[Any], dict[str, Any]] = field(default=lambda cfg: {})  # extra from_pretrained args
    is_adapter: bool = False  # saves a PEFT adapter rather than a full model
    run_settings: Callable[[Any], dict[str, Any]] = field(default=lambda cfg: {})  # extra config.yaml entries


def _numel(p: torch.Tensor) -> int:
    qs = getattr(p, "quant_state", None)  # a 4-bit bitsandbytes weight packs two values per byte
    return int(torch.Size(qs.shape).numel()) if qs is not None else p.numel()


def count_params(model: nn.Module) -> tuple[int, int]:
    """(trainable, total) parameter counts; a quantized weight counts its original values."""
    total = sum(_numel(p) for p in model.parameters())
    trainable = sum(_numel(p) for p in model.parameters() if p.requires_grad)
    return trainable, total


def _quant_state_tensors(qs: Any) -> list[torch.Tensor]:
    """The tensors a bitsandbytes QuantState keeps beside the packed weights (absmax, code, and the
    nested state of double quantization)."""
    out = [t for t in (getattr(qs, "absmax", None), getattr(qs, "code", None), getattr(qs, "offset", None))
           if isinstance(t, torch.Tensor)]
    if getattr(qs, "state2", None) is not None:
        out += _quant_state_tensors(qs.state2)
    return out


def base_weight_memory(model: nn.Module) -> dict[str, Any]:
    """How many bytes the base model's weights take in memory, as stored: a 4-bit weight counts its
    packed storage plus its quantization state; LoRA matrices and PEFT's trainable head copies are
    not part of the base. ``base_weight_fp32_bytes`` is the same weights at 4 bytes each."""
    stored = fp32 = quantized = 0
    seen: set[int] = set()
    for name, p in model.named_parameters():
        if "lora_" in name or ".modules_to_save." in name:
            continue
        qs = getattr(p, "quant_state", None)
        tensors = [p, *(_quant_state_tensors(qs) if qs is not None else [])]
        n = _numel(p)
        quantized += n if qs is not None else 0
        fp32 += 4 * n
        for t in tensors:
            if id(t) not in seen:
                seen.add(id(t))
                stored += t.numel() * t.element_size()
    return {"base_weight_bytes": stored, "base_weight_fp32_bytes": fp32,
            "base_weight_ratio": stored / fp32 if fp32 else None, "quantized_params": quantized}


__all__ = ["HEAD_PREFIXES", "Method", "base_weight_memory", "count_params", "is_head_param"]
