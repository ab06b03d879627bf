"""Which parameters of a Hugging Face model form its task head (the layers put on top of the body).

Methods train or freeze by it (``head``, ``bitfit``, ``lora``), QLoRA keeps the head out of 4-bit
quantization, and inference's int8 path leaves it in full precision.
"""

from __future__ import annotations

HEAD_PREFIXES = ("classifier", "score", "pre_classifier", "classification_head", "lm_head")


def is_head_param(name: str) -> bool:
    return name.split(".")[0] in HEAD_PREFIXES or any(f".{p}." in f".{name}" for p in HEAD_PREFIXES[:4])


__all__ = ["HEAD_PREFIXES", "is_head_param"]
