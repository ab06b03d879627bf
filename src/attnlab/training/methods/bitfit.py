"""BitFit (Ben Zaken et al., 2022): only the bias terms train, plus the classification head.

Every ``*.bias`` of the encoder (attention projections, feed-forward layers, LayerNorms) and the
whole head stay trainable; all weight matrices and embeddings are frozen. About 0.1% of a BERT's
parameters: a baseline between the linear probe (``head``) and LoRA.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from attnlab.errors import UserError
from attnlab.training.methods.base import Method, is_head_param

if TYPE_CHECKING:
    from torch import nn


def is_bias(name: str) -> bool:
    return name == "bias" or name.endswith(".bias")


def prepare(model: nn.Module, cfg) -> nn.Module:
    from attnlab.models.pooling import bypassed_prefixes, is_bypassed

    biases, unused = 0, bypassed_prefixes(model)  # a pooler the pooling bypasses feeds nothing
    for name, p in model.named_parameters():
        bias = is_bias(name) and not is_bypassed(name, unused)
        p.requires_grad_(bias or is_head_param(name))
        biases += bias and not is_head_param(name)
    if not biases:
        raise UserError(f"{type(model).__name__} has no bias terms to train", where="--method bitfit",
                        fix="use --method lora or head for this model (Llama-style models have no biases)")
    return model


METHOD = Method("bitfit", "bias terms only, plus the classifier head (BitFit)", 1e-3, prepare)
