"""Attention rollout (Abnar & Zuidema, 2020, "Quantifying Attention Flow in Transformers").

One layer's attention says which tokens a position reads *at that layer*; but the tokens it reads
are already mixtures of other tokens. Rollout follows the mixing through the whole stack:

    A_l   = mean over heads of layer l's attention             (T, T)
    Â_l   = rownorm(A_l + I)                                    the residual stream keeps the token itself
    R     = Â_L @ ... @ Â_2 @ Â_1                               how much input token j reaches position i

Token importance is one row of ``R``: for an encoder the ``[CLS]`` row (position 0), since a BERT
classifier reads its prediction from ``[CLS]``; for a causal model the *last* row, since that
position is the only one that has seen the whole text (and is the one a causal LM classifies or
predicts from). Each row of ``R`` sums to 1, so the scores are a distribution over input tokens.
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from typing import Any

import numpy as np

from attnlab.explain.extract import AttentionResult

HEAD_FUSIONS = ("mean", "max", "min")


def attention_rollout(attentions: np.ndarray, *, residual: bool = True, head_fusion: str = "mean") -> np.ndarray:
    """The (T, T) rollout matrix of ``attentions`` shaped (layers, heads, T, T) or (layers, T, T).

    ``residual`` adds the identity before renormalising rows (the paper's choice); ``head_fusion``
    combines heads by mean (the paper's choice), max or min.
    """
    att = np.asarray(attentions, dtype=np.float64)
    if att.ndim == 4:
        if head_fusion not in HEAD_FUSIONS:
            raise ValueError(f"head_fusion must be one of {HEAD_FUSIONS}, got {head_fusion!r}")
        att = getattr(att, head_fusion)(axis=1)  # (L, T, T)
    if att.ndim != 3 or att.shape[1] != att.shape[2]:
        raise ValueError(f"expected (layers, [heads,] T, T) attention, got shape {np.shape(attentions)}")
    t = att.shape[-1]
    rollout = np.eye(t)
    for layer in att:  # bottom layer first: R = Â_L ... Â_1
        a = layer + np.eye(t) if residual else layer
        a = a / np.clip(a.sum(axis=-1, keepdims=True), 1e-12, None)
        rollout = a @ rollout
    return rollout


@dataclass
class RolloutResult:
    """Per-token importance from rollout.

    ``scores`` is the rollout row of the source token and sums to 1 (special tokens included).
    ``importance`` is for display: special tokens set to 0, then scaled so the top token is 1.
    """

    tokens: list[str]
    scores: np.ndarray  # (T,) sums to 1
    importance: np.ndarray  # (T,) in [0, 1], max 1 (all 0 when only special tokens)
    source_index: int
    source_token: str
    model_name: str
    matrix: np.ndarray  # (T, T) full rollout
    special_mask: list[bool]

    def to_dict(self) -> dict[str, Any]:
        return {
            "method": "attention rollout (Abnar & Zuidema 2020): mean over heads, + identity, "
                      "row-normalised, multiplied through layers",
            "model": self.model_name,
            "source_index": self.source_index,
            "source_token": self.source_token,
            "tokens": self.tokens,
            "scores": [round(float(x), 6) for x in self.scores],
            "importance": [round(float(x), 6) for x in self.importance],
            "special": self.special_mask,
            "ranked": [
                {"index": int(i), "token": self.tokens[i], "importance": round(float(self.importance[i]), 6)}
                for i in np.argsort(-self.importance, kind="stable") if not self.special_mask[i]
            ],
        }


def rollout(result: AttentionResult, *, source_index: int | None = None, head_fusion: str = "mean") -> RolloutResult:
    """Token importance for ``result``: the rollout row of [CLS] (encoders) or of the last token
    (causal models), unless ``source_index`` picks another position."""
    matrix = attention_rollout(result.attentions, head_fusion=head_fusion)
    t = matrix.shape[0]
    src = (t - 1 if result.is_causal else 0) if source_index is None else int(source_index) % t
    scores = matrix[src].copy()
    scores /= scores.sum()
    shown = np.where(np.asarray(result.special_mask, dtype=bool), 0.0, scores)
    importance = shown / shown.max() if shown.max() > 0 else shown
    return RolloutResult(result.display_tokens, scores, importance, src, result.display_tokens[src],
                         result.model_name, matrix, list(result.special_mask))


def rollout_html(r: RolloutResult, *, full_document: bool = False) -> str:
    """The text with each token's background alpha = its importance (hover shows the number)."""
    spans = []
    for tok, imp, score, special in zip(r.tokens, r.importance, r.scores, r.special_mask, strict=True):
        style = "color:#888;" if special else f"background:rgba(220,60,30,{float(imp):.3f});"
        spans.append(f'<span class="attn-rollout-token" style="{style}padding:1px 3px;margin:1px;'
                     f'border-radius:3px;display:inline-block" data-importance="{float(imp):.4f}" '
                     f'title="importance {float(imp):.3f}, rollout {float(score):.4f}">{html.escape(tok)}</span>')
    who = "last token" if r.source_index == len(r.tokens) - 1 and r.source_index != 0 else r.source_token
    frag = (f'<div class="attn-rollout" style="font:14px/1.9 sans-serif">'
            f'<div style="font-size:12px;color:#555">Attention rollout of <b>{html.escape(r.model_name)}</b> '
            f'from {html.escape(who)} (position {r.source_index}); darker = more important</div>'
            f'<div>{"".join(spans)}</div></div>')
    if not full_document:
        return frag
    return ('<!DOCTYPE html><html><head><meta charset="utf-8"><title>Rollout: '
            f'{html.escape(r.model_name)}</title></head><body>{frag}</body></html>\n')
