"""Scaled dot-product attention in plain NumPy.

The same operation as :func:`attnlab.attention.scaled_dot_product_attention`, with no autograd and
no framework in sight: a handful of array operations you can step through in a debugger. It is the
cross-check for the PyTorch version and follows the same conventions (boolean masks: True = keep;
fully masked rows give all-zero weights and a zero output).

    weights = softmax(Q K^T / sqrt(d))      # (..., T, S)
    output  = weights V                     # (..., T, Dv)
"""

from __future__ import annotations

import numpy as np

__all__ = ["scaled_dot_product_attention_np", "softmax_np"]


def softmax_np(x: np.ndarray, mask: np.ndarray | None = None, axis: int = -1) -> np.ndarray:
    """Numerically stable (masked) softmax: exp(x - max) / sum(exp(x - max)).

    Subtracting the row maximum does not change the result (it cancels between numerator and
    denominator) but keeps exp() from overflowing. Entries where ``mask`` is False get weight 0;
    a row with no kept entry gets all zeros instead of 0/0.
    """
    if mask is None:
        mask = np.ones(x.shape, dtype=bool)
    mask = np.broadcast_to(mask, x.shape)
    row_max = np.where(mask, x, -np.inf).max(axis=axis, keepdims=True)
    row_max = np.where(np.isfinite(row_max), row_max, 0.0)  # fully masked row: any shift will do
    e = np.exp(np.where(mask, x - row_max, -np.inf))  # exp(-inf) = 0 for masked entries
    total = e.sum(axis=axis, keepdims=True)
    return (e / np.where(total == 0.0, 1.0, total)).astype(x.dtype)


def scaled_dot_product_attention_np(
    q: np.ndarray,
    k: np.ndarray,
    v: np.ndarray,
    mask: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """softmax(q k^T / sqrt(d)) v in NumPy.

    Args:
        q: (..., T, D) queries, e.g. (B, H, T, D).
        k: (..., S, D) keys.
        v: (..., S, Dv) values.
        mask: optional boolean array broadcastable to (..., T, S); True = keep.

    Returns:
        output (..., T, Dv) and weights (..., T, S).
    """
    d = q.shape[-1]
    scores = q @ np.swapaxes(k, -1, -2) / np.sqrt(d)  # (..., T, D) @ (..., D, S) -> (..., T, S)
    weights = softmax_np(scores, mask, axis=-1)  # (..., T, S), masked entries exactly 0
    out = weights @ v  # (..., T, S) @ (..., S, Dv) -> (..., T, Dv)
    return out, weights
