"""Dropout for CPU training whose random mask costs a quarter of the random draws.

torch's CPU dropout draws one random number per element from its generator, and on a small
encoder that is a large part of the step: ``benchmarks/lora_step.py`` prices the model's own
dropout, and most of it is the draws, not the multiply (``docs/speed.md``). :class:`FastDropout`
computes the same thing, an element kept with probability ``1 - p`` and scaled by ``1 / (1 - p)``,
from 16-bit random words, four to each 64-bit draw of torch's default generator (so
``torch.manual_seed`` makes it reproducible, as it does torch's dropout). The drop probability is
``p`` rounded to a multiple of 2^-16 (0.1 becomes 0.100006) and the scale is that probability's,
so every output's expectation is its input exactly.

It replaces the model's own ``nn.Dropout`` modules for training on a CPU (``install``), keeps
their ``p`` (BERT-style attention passes its dropout module's ``p`` to SDPA, which drops the
attention weights itself), and leaves anything else, a GPU tensor, ``inplace=True``, ``p`` 0 or 1,
evaluation mode, to torch's own dropout. It holds no state, so a saved model is the same model."""

from __future__ import annotations

import torch
from torch import nn

WORD = 1 << 16  # a lane's values: int16, uniform over [-2^15, 2^15)


class _MaskedScale(torch.autograd.Function):
    """``x * keep * scale`` that keeps only the boolean mask for the backward pass."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, keep: torch.Tensor, scale: float) -> torch.Tensor:
        ctx.save_for_backward(keep)
        ctx.scale = scale
        return x.mul(scale).mul_(keep)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        (keep,) = ctx.saved_tensors
        return grad.mul(ctx.scale).mul_(keep), None, None


def keep_mask(shape: torch.Size, p: float) -> tuple[torch.Tensor, float]:
    """A boolean mask of ``shape``, each element True with probability ``1 - p'`` (``p'``: ``p``
    rounded to a multiple of 2^-16), and the scale ``1 / (1 - p')``."""
    threshold = round(p * WORD)
    n = shape.numel()
    words = torch.empty((n + 3) // 4, dtype=torch.int64).random_(-(1 << 63), None)  # every 64-bit value
    lanes = words.view(torch.int16)[:n].view(shape)
    return lanes >= threshold - WORD // 2, WORD / (WORD - threshold)


class FastDropout(nn.Dropout):
    """:class:`torch.nn.Dropout` with :func:`keep_mask`'s cheaper random mask on CPU tensors."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.inplace or x.device.type != "cpu" or not 0 < self.p < 1:
            return super().forward(x)
        keep, scale = keep_mask(x.shape, self.p)
        return _MaskedScale.apply(x, keep, scale)


def install(model: nn.Module) -> int:
    """Replace every plain ``nn.Dropout`` of ``model`` with a :class:`FastDropout` of the same ``p``,
    ``inplace`` and mode; returns how many. For training on a CPU (on other devices it falls back to
    torch's dropout)."""
    swaps = [(parent, name, child) for parent in model.modules() for name, child in parent.named_children()
             if type(child) is nn.Dropout]
    for parent, name, child in swaps:
        setattr(parent, name, FastDropout(child.p, child.inplace).train(child.training))
    return len(swaps)
