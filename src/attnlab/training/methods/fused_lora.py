"""PEFT's LoRA linear layer with the adapter's scale-and-add fused into one matrix product.

PEFT computes ``result + lora_B(lora_A(dropout(x))) * scaling``: besides the two small matmuls, a
multiply and an add over the whole ``tokens x d_out`` output, and their two backward passes, per
adapted layer. With no adapter dropout and one plain adapter active, the same value is
``addmm(result, x A^T, B^T, alpha=scaling)``: one product that scales and accumulates in the GEMM.
It trains the same parameters under the same names, saves a standard PEFT adapter (the layer type is
not recorded) and merges as PEFT does; any other case (dropout, several or mixed adapters, DoRA and
other variants, a bias on B, merged or disabled adapters, mismatched dtypes outside autocast) runs PEFT's own
forward. ``benchmarks/lora_step.py`` times a training step with this layer against PEFT's own (its
"PEFT's layer" row, per machine kind, in ``docs/speed.md``).

Built through PEFT's custom-module hook (``LoraConfig._register_custom_module``), for plain
``nn.Linear`` layers only: quantized linears (bitsandbytes' ``Linear4bit`` subclasses ``nn.Linear``)
keep PEFT's own layers."""

from __future__ import annotations

import torch
from peft.tuners.lora.layer import Linear as PeftLoraLinear
from torch import nn


class FusedLoraLinear(PeftLoraLinear):
    """:class:`peft.tuners.lora.layer.Linear` whose plain forward is one ``addmm`` for the adapter."""

    def _fusable(self, x: torch.Tensor, args: tuple, kwargs: dict) -> str | None:
        """The one active adapter when the fused forward computes exactly PEFT's, else None."""
        if args or kwargs or self.disable_adapters or self.merged or len(self.active_adapters) != 1:
            return None
        name = self.active_adapters[0]
        if name not in self.lora_A or name in self.lora_variant or not isinstance(self.lora_dropout[name], nn.Identity):
            return None
        if self.lora_B[name].bias is not None:  # LoraConfig(lora_bias=True): PEFT's forward adds it
            return None
        weight = self.lora_A[name].weight
        same_dtype = x.dtype == weight.dtype == self.lora_B[name].weight.dtype == self.get_base_layer().weight.dtype
        return name if same_dtype or torch.is_autocast_enabled(x.device.type) else None

    def forward(self, x: torch.Tensor, *args, **kwargs) -> torch.Tensor:
        name = self._fusable(x, args, kwargs)
        if name is None:
            return super().forward(x, *args, **kwargs)
        result = self.base_layer(x)
        low = x.reshape(-1, x.shape[-1]) @ self.lora_A[name].weight.t()  # (tokens, r)
        out = torch.addmm(result.reshape(-1, result.shape[-1]), low, self.lora_B[name].weight.t(),
                          alpha=self.scaling[name])
        return out.view(*result.shape[:-1], out.shape[-1]).to(result.dtype)


def register(config, model: nn.Module) -> None:
    """Have PEFT build :class:`FusedLoraLinear` for ``config``'s adapters, where every linear of
    ``model`` is a plain ``nn.Linear`` (no quantized or otherwise special linear layers)."""
    if all(type(m) is nn.Linear for m in model.modules() if isinstance(m, nn.Linear)):
        config._register_custom_module({nn.Linear: FusedLoraLinear})
