"""How two models attend differently to the same text (e.g. a base model and its fine-tune).

Both models must split the text into the same tokens (the same tokenizer), or the matrices would
not line up. Per head we report

* ``mad``  mean absolute difference of the (T, T) weights;
* ``js``   Jensen-Shannon divergence (nats, at most ln 2) between matching query rows, averaged over
           rows: "how differently does each token distribute its attention".

Heads are ranked by ``js``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from attnlab.errors import UserError
from attnlab.explain.extract import DEFAULT_SOURCE, AttentionResult, LoadedModel, extract_attention


@dataclass
class AttentionDiff:
    """The per-head difference between ``a`` (before) and ``b`` (after)."""

    a: AttentionResult
    b: AttentionResult
    mad: np.ndarray  # (layers, heads)
    js: np.ndarray  # (layers, heads)

    def top_heads(self, k: int = 5) -> list[dict[str, Any]]:
        """The ``k`` heads that changed most (by JS divergence), most changed first."""
        order = np.argsort(-self.js, axis=None, kind="stable")[: max(int(k), 0)]
        layers, heads = np.unravel_index(order, self.js.shape)
        return [
            {"rank": r + 1, "layer": int(layer), "head": int(head), "js": round(float(self.js[layer, head]), 6),
             "mad": round(float(self.mad[layer, head]), 6)}
            for r, (layer, head) in enumerate(zip(layers, heads, strict=True))
        ]

    @property
    def most_changed(self) -> tuple[int, int]:
        top = self.top_heads(1)[0]
        return top["layer"], top["head"]

    def to_dict(self, k: int = 10) -> dict[str, Any]:
        return {
            "model_a": self.a.model_name, "model_b": self.b.model_name, "tokens": self.a.tokens,
            "metric": "js = Jensen-Shannon divergence of attention rows (nats, max ln 2), mean over rows; "
                      "mad = mean absolute difference of weights",
            "top_heads": self.top_heads(k),
            "js": np.round(self.js, 6).tolist(),
            "mad": np.round(self.mad, 6).tolist(),
            "layer_js": np.round(self.js.mean(axis=1), 6).tolist(),
        }


def js_divergence(p: np.ndarray, q: np.ndarray, axis: int = -1) -> np.ndarray:
    """Jensen-Shannon divergence (nats) between distributions along ``axis``."""
    p, q = np.asarray(p, np.float64), np.asarray(q, np.float64)
    m = 0.5 * (p + q)

    def kl(x: np.ndarray) -> np.ndarray:
        return np.where(x > 0, x * (np.log(np.where(x > 0, x, 1.0)) - np.log(np.where(x > 0, m, 1.0))), 0.0)

    return np.clip(0.5 * (kl(p) + kl(q)).sum(axis=axis), 0.0, None)


def diff_results(a: AttentionResult, b: AttentionResult) -> AttentionDiff:
    """Compare two extractions of the same text."""
    if a.input_ids != b.input_ids:
        raise UserError(f"'{a.model_name}' and '{b.model_name}' tokenize the text differently",
                        where="--compare",
                        fix="compare models that share a tokenizer (e.g. a base model and its fine-tune)")
    if a.attentions.shape != b.attentions.shape:
        raise UserError("the models have different shapes: "
                        f"{a.num_layers}x{a.num_heads} vs {b.num_layers}x{b.num_heads}"
                        " (layers x heads)", where="--compare", fix="compare models of the same architecture")
    pa, pb = a.attentions.astype(np.float64), b.attentions.astype(np.float64)
    mad = np.abs(pa - pb).mean(axis=(-1, -2))
    js = js_divergence(pa, pb).mean(axis=-1)
    return AttentionDiff(a, b, mad, js)


def diff_attention(text: str, model_a: str | LoadedModel = DEFAULT_SOURCE, model_b: str | LoadedModel = DEFAULT_SOURCE,
                   *, max_tokens: int | None = None) -> AttentionDiff:
    """Extract attention for ``text`` from both models and compare them."""
    a = extract_attention(text, model_a, max_tokens=max_tokens)
    b = extract_attention(text, model_b, max_tokens=max_tokens)
    return diff_results(a, b)
