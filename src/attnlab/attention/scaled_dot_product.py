"""Scaled dot-product attention and the masks that go with it.

Vaswani et al. (2017), "Attention Is All You Need", eq. (1):

    Attention(Q, K, V) = softmax(Q K^T / sqrt(d_k)) V

Every query (a row of Q) is compared with every key (a row of K) by a dot product. Dividing by
sqrt(d_k) keeps the scores at unit variance when q and k have unit-variance entries, so the softmax
does not saturate as the head dimension grows. The softmax turns each query's row of scores into a
probability distribution over the keys, and the output for that query is the matching weighted
average of the values.

Mask convention
---------------
A boolean mask says, for each (query, key) pair, whether the query may look at the key:
**True = keep (may attend), False = masked out**. This is the same convention as
``torch.nn.functional.scaled_dot_product_attention``. (Hugging Face models use the opposite-looking
*additive* form: 0 where allowed and a very large negative number where masked. A float mask is
accepted here too and is simply added to the scores.)

Masks broadcast against the score tensor of shape (B, H, T, S): B batch, H heads, T queries,
S keys. A padding mask is (B, 1, 1, S) (same for every head and every query), a causal mask is
(T, S) (same for every sequence and head).

Fully masked rows
-----------------
If a query may look at no key at all (for instance a padding token under a causal + padding mask),
softmax over an all-masked row would be 0/0 = NaN. We define its attention weights to be all zeros,
so its output is the zero vector: a query that may look at nothing receives nothing. This is the
same result as PyTorch's own ``scaled_dot_product_attention``. (Hugging Face's eager attention
instead gives such a row a uniform distribution; the row is meaningless either way and is ignored
downstream.)
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

__all__ = ["causal_mask", "combine_masks", "padding_mask", "scaled_dot_product_attention"]


def scaled_dot_product_attention(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    mask: torch.Tensor | None = None,
    dropout_p: float = 0.0,
    return_weights: bool = True,
    scale: float | None = None,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """softmax(q k^T / sqrt(d)) v, written out step by step.

    Args:
        q: queries (B, H, T, D).
        k: keys (B, H, S, D).
        v: values (B, H, S, Dv).
        mask: optional mask broadcastable to (B, H, T, S). Boolean: True = keep, False = masked out.
            Float: added to the scores (0 = keep, large negative = masked out).
        dropout_p: probability of zeroing an attention weight (applied whenever > 0, like
            ``torch.nn.functional.scaled_dot_product_attention``; modules pass 0.0 in eval mode).
        return_weights: if False, the weights are not returned (``None`` in their place).
        scale: factor on the scores; defaults to 1 / sqrt(D).

    Returns:
        output (B, H, T, Dv) and the attention weights (B, H, T, S) that produced it (after
        dropout, if any). Each row of the weights sums to 1, except fully masked rows, which are
        all zeros (and whose output is therefore zero).
    """
    d = q.size(-1)
    scale = 1.0 / math.sqrt(d) if scale is None else scale

    scores = (q @ k.transpose(-2, -1)) * scale  # (B, H, T, D) @ (B, H, D, S) -> (B, H, T, S)

    if mask is not None and mask.dtype == torch.bool:
        # The most negative finite number, not -inf: exp(-inf - (-inf)) would be NaN on fully
        # masked rows. exp(min - max) underflows to exactly 0 whenever a row has a kept key.
        scores = scores.masked_fill(~mask, torch.finfo(scores.dtype).min)
    elif mask is not None:
        scores = scores + mask  # additive float mask

    weights = F.softmax(scores, dim=-1)  # (B, H, T, S), rows sum to 1

    if mask is not None and mask.dtype == torch.bool:
        # A fully masked row came out uniform (all its scores were equally "min"); zero it.
        # On every other row the masked entries are already exactly 0, so this changes nothing there.
        weights = weights.masked_fill(~mask, 0.0)

    if dropout_p > 0.0:
        weights = F.dropout(weights, p=dropout_p)

    out = weights @ v  # (B, H, T, S) @ (B, H, S, Dv) -> (B, H, T, Dv)
    return out, (weights if return_weights else None)


def padding_mask(attention_mask: torch.Tensor) -> torch.Tensor:
    """Turn a tokenizer's ``attention_mask`` into a boolean key mask.

    Args:
        attention_mask: (B, S), 1 (or True) for a real token, 0 for padding.

    Returns:
        (B, 1, 1, S) boolean, True where the key is a real token. It broadcasts over heads and
        queries: every query may look at every real token and at no padding token.
    """
    return attention_mask.bool()[:, None, None, :]  # (B, 1, 1, S)


def causal_mask(t: int, s: int | None = None, device: torch.device | str | None = None) -> torch.Tensor:
    """Lower-triangular boolean mask: query i may look at keys 0..i and not at the future.

    Args:
        t: number of queries.
        s: number of keys (default ``t``). When s > t the queries are taken to be the *last* t
            positions of the s-long sequence (the usual case when earlier keys come from a cache),
            so query i sits at position s - t + i and may look at keys 0..s - t + i.
        device: where to build the mask.

    Returns:
        (T, S) boolean, True on and below the (shifted) diagonal.
    """
    s = t if s is None else s
    return torch.ones(t, s, dtype=torch.bool, device=device).tril(diagonal=s - t)  # (T, S)


def combine_masks(*masks: torch.Tensor | None) -> torch.Tensor | None:
    """AND together boolean masks (``None`` entries are skipped).

    A key is kept only if every mask keeps it, e.g. ``combine_masks(padding_mask(am), causal_mask(T))``
    gives a (B, 1, T, T) mask that hides both padding and the future. Returns ``None`` if every
    argument is ``None`` (no masking).
    """
    out: torch.Tensor | None = None
    for m in masks:
        if m is None:
            continue
        if m.dtype != torch.bool:
            raise TypeError(f"combine_masks expects boolean masks (True = keep), got {m.dtype}")
        out = m if out is None else out & m  # broadcasting AND
    return out
