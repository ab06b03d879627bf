"""QLoRA (Dettmers et al., 2023): LoRA adapters on a frozen base stored in 4-bit NF4.

The base is loaded through bitsandbytes in 4-bit NF4 with double quantization, its input embedding
quantized too (:mod:`attnlab.models.nf4` holds how, and why). The classification head
(``classifier``/``score``/...) is never quantized and trains in full, as in the ``lora`` method;
the adapters are configured exactly as ``lora``'s (:func:`lora.lora_config`). A run directory
stores only the adapter and head: the base is re-quantized from the original checkpoint on load
(:func:`attnlab.models.nf4.load_base`), so predictions match training-time evaluation.
"""

from __future__ import annotations

import os
from typing import Any

import torch
from torch import nn

from attnlab.errors import UserError
from attnlab.models.nf4 import compute_dtype, describe, finish_base, is_quantized, quantization_config
from attnlab.training.methods import lora
from attnlab.training.methods.base import Method


def load_kwargs(cfg) -> dict[str, Any]:
    kw: dict[str, Any] = {"quantization_config": quantization_config(compute_dtype(cfg.precision))}
    if torch.cuda.is_available():  # one model per process: under torchrun, this rank's GPU
        kw["device_map"] = {"": int(os.environ.get("LOCAL_RANK", "0"))}
    return kw


def prepare(model: nn.Module, cfg) -> nn.Module:
    from peft import prepare_model_for_kbit_training

    if not is_quantized(model):
        raise UserError(f"{type(model).__name__} was not loaded in 4 bits", where="--method qlora",
                        fix="load the model with this method's load_kwargs (attnlab train does)")
    finish_base(model)
    # freezes the base and upcasts any fp16/bf16 non-quantized weight to fp32; activation
    # checkpointing is left off: at classification lengths the weights, not activations, dominate
    model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=False)
    return lora.prepare(model, cfg)


METHOD = Method("qlora", "LoRA adapters on a frozen 4-bit NF4 base (bitsandbytes; the memory-lean one)", 5e-4,
                prepare, load_kwargs=load_kwargs, is_adapter=True,
                run_settings=lambda cfg: {"quantization": describe(compute_dtype(cfg.precision))})
