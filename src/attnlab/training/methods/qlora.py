"""QLoRA (Dettmers et al., 2023): LoRA adapters on a frozen base stored in 4-bit NF4.

The base is loaded through bitsandbytes in 4-bit NF4 with double quantization, its input embedding
quantized too (:mod:`attnlab.models.nf4` holds how, and why). The classification head
(``classifier``/``score``/...) is never quantized and trains in full, as in the ``lora`` method;
the adapters are configured exactly as ``lora``'s (:func:`lora.lora_config`). A run directory
stores only the adapter and head, and records the quantization in ``config.yaml``: the base is
re-quantized from the original checkpoint on load (:func:`attnlab.models.nf4.load_base`), so
predictions match training-time evaluation.

torch, bitsandbytes and PEFT are imported when a model is loaded or prepared, not with the registry.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from attnlab.errors import UserError
from attnlab.training.methods import lora
from attnlab.training.methods.base import Method

if TYPE_CHECKING:
    from torch import nn


def load_kwargs(cfg) -> dict[str, Any]:
    import os

    import torch

    from attnlab.models.nf4 import compute_dtype, quantization_config

    kw: dict[str, Any] = {"quantization_config": quantization_config(compute_dtype(cfg.precision))}
    if torch.cuda.is_available():  # one model per process: under torchrun, this rank's GPU
        kw["device_map"] = {"": int(os.environ.get("LOCAL_RANK", "0"))}
    return kw


def prepare(model: nn.Module, cfg) -> nn.Module:
    from peft import prepare_model_for_kbit_training

    from attnlab.models.nf4 import finish_base, is_quantized

    if not is_quantized(model):
        raise UserError(f"{type(model).__name__} was not loaded in 4 bits", where="--method qlora",
                        fix="load the model with this method's load_kwargs (attnlab train does)")
    finish_base(model)
    # freezes the base and upcasts any fp16/bf16 non-quantized weight to fp32; activation
    # checkpointing is left off: at classification lengths the weights, not activations, dominate
    model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=False)
    return lora.prepare(model, cfg)


def quantization(cfg) -> dict[str, Any]:
    """``quantization`` in config.yaml: what inference must redo to rebuild the 4-bit base."""
    from attnlab.models.nf4 import compute_dtype, describe

    return describe(compute_dtype(cfg.precision))


METHOD = Method("qlora", "LoRA adapters on a frozen 4-bit NF4 base (bitsandbytes; the memory-lean one)", 5e-4,
                prepare, load_kwargs=load_kwargs, is_adapter=True, lora_settings=True, find_unused_parameters=False,
                records={"quantization": quantization})
