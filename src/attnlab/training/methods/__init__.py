"""Fine-tuning methods, registered by name."""

from __future__ import annotations

from attnlab.errors import UserError
from attnlab.training.methods import bitfit, full, head, lora, qlora
from attnlab.training.methods.base import Method, base_weight_memory, count_params

METHODS: dict[str, Method] = {m.name: m for m in (full.METHOD, lora.METHOD, head.METHOD, qlora.METHOD,
                                                  bitfit.METHOD)}


def get_method(name: str) -> Method:
    if name not in METHODS:
        raise UserError(f"unknown method '{name}'", where="--method", fix=f"pick one of {', '.join(METHODS)}")
    return METHODS[name]


__all__ = ["METHODS", "Method", "base_weight_memory", "count_params", "get_method"]
