"""What a fine-tuning method is: one :class:`Method` carrying every fact about it, registered once
with :func:`attnlab.training.methods.register_method`. Adding a method is one module that builds
its ``Method`` plus one ``register_method`` call; nothing outside the registry asks a method's name.

Importing this module, or the registry, imports neither torch nor PEFT: the CLI builds its help and
choices from the registry and ``attnlab --help`` stays instant. A method imports them when it
prepares a model."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from attnlab.models.heads import HEAD_PREFIXES, is_head_param

if TYPE_CHECKING:
    import torch
    from torch import nn


# the tasks that train a sequence classifier (its head sized by the labels; regression and multi-label
# change only its loss): a method that trains one trains them all
CLASSIFIER_TASKS = ("classification", "regression", "multi-label")


def _nothing(cfg: Any) -> dict[str, Any]:
    return {}


@dataclass(frozen=True)
class Method:
    """A fine-tuning method: what trains, how the model loads for it, what its run saves and records.

    A run loads for inference from what these facts wrote into it: ``is_adapter`` makes ``model/`` a
    PEFT adapter folder (applied to the recorded base model), ``records`` adds ``config.yaml``
    entries that inference honours when it rebuilds the base (qlora's ``quantization``)."""

    name: str
    description: str
    learning_rate: float  # default when neither the user nor the model registry gives one
    prepare: Callable[[nn.Module, Any], nn.Module]  # (fresh model, TrainConfig) -> the model Trainer trains
    load_kwargs: Callable[[Any], dict[str, Any]] = field(default=_nothing)  # extra from_pretrained args (4-bit)
    is_adapter: bool = False  # saves a PEFT adapter (model/ holds adapter_config.json), not a whole model
    lora_settings: bool = False  # lora_r/alpha/dropout/targets apply: sweep varies the rank, tune searches them
    tasks: tuple[str, ...] = CLASSIFIER_TASKS  # the --task values it trains
    find_unused_parameters: bool | None = None  # DDP's setting; None: Trainer's default
    # what --pooling auto means: "checkpoint" (what the checkpoint was trained with: a frozen encoder
    # must be read as it was trained) or "pooler" (the architecture's own head; a run stays a plain
    # transformers classifier; mean pooling measured no better for methods that train the encoder)
    auto_pooling: str = "pooler"
    # config.yaml entries a run records beside its settings (not settings a recipe sets): name -> value from cfg
    records: dict[str, Callable[[Any], Any]] = field(default_factory=dict)


def _numel(p: torch.Tensor) -> int:
    import torch

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
    import torch

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
