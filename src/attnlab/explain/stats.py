"""Per-head statistics: how spread out, how far, and how much on special tokens.

For head (l, h) with attention rows ``p_i`` (query ``i`` over keys ``j``):

* ``entropy``        mean over queries of ``-sum_j p_ij log p_ij`` (nats). 0 = each query looks at
                     one token; ``log T`` = uniform.
* ``distance``       mean over queries of ``sum_j p_ij |i - j|`` (in tokens). 0 = attends to itself;
                     large = long-range.
* ``special_share``  mean over queries of the weight on special tokens ([CLS], [SEP], <s>, pad).
                     High values are the "no-op" heads that park attention on a sink token.

Only real (non-pad) query rows are averaged.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from attnlab.explain.extract import AttentionResult

STAT_NAMES = ("entropy", "distance", "special_share")


@dataclass
class HeadStats:
    """Each field is a (layers, heads) array."""

    entropy: np.ndarray
    distance: np.ndarray
    special_share: np.ndarray

    @property
    def shape(self) -> tuple[int, int]:
        return tuple(self.entropy.shape)  # type: ignore[return-value]

    def to_rows(self) -> list[dict[str, Any]]:
        """One dict per head (layer, head, entropy, distance, special_share), for tables."""
        layers, heads = self.shape
        return [
            {"layer": layer, "head": head, **{n: round(float(getattr(self, n)[layer, head]), 4) for n in STAT_NAMES}}
            for layer in range(layers) for head in range(heads)
        ]

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {n: np.round(getattr(self, n), 5).tolist() for n in STAT_NAMES}
        out["units"] = {"entropy": "nats", "distance": "tokens", "special_share": "fraction"}
        return out


def head_stats(attentions: np.ndarray | AttentionResult, special_mask: Sequence[bool] | None = None,
               valid_mask: Sequence[bool] | None = None) -> HeadStats:
    """Statistics of every head of ``attentions`` (layers, heads, T, T) or of an AttentionResult.

    ``special_mask`` marks special key tokens (taken from the result when one is passed);
    ``valid_mask`` marks real (non-pad) positions, all by default.
    """
    if isinstance(attentions, AttentionResult):
        special_mask = attentions.special_mask if special_mask is None else special_mask
        attentions = attentions.attentions
    att = np.asarray(attentions, dtype=np.float64)
    if att.ndim != 4 or att.shape[-1] != att.shape[-2]:
        raise ValueError(f"expected (layers, heads, T, T) attention, got shape {att.shape}")
    t = att.shape[-1]
    valid = np.ones(t, bool) if valid_mask is None else np.asarray(valid_mask, bool)
    special = np.zeros(t, bool) if special_mask is None else np.asarray(special_mask, bool)

    plogp = np.where(att > 0, att * np.log(np.where(att > 0, att, 1.0)), 0.0)
    entropy = -plogp.sum(-1)  # (L, H, T)
    idx = np.arange(t)
    dist = (att * np.abs(idx[:, None] - idx[None, :])).sum(-1)  # (L, H, T)
    share = att[..., special].sum(-1)  # (L, H, T)

    def mean_rows(x: np.ndarray) -> np.ndarray:
        return x[..., valid].mean(-1) if valid.any() else np.zeros(x.shape[:2])

    return HeadStats(mean_rows(entropy), mean_rows(dist), mean_rows(share))
