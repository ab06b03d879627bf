"""A BERT encoder layer written from scratch, loadable from a Hugging Face ``BertLayer``.

BERT (Devlin et al. 2019) uses the original post-LayerNorm Transformer encoder layer:

    scores = (X W_Q)(X W_K)^T / sqrt(D) + padding mask     per head, (B, H, T, T)
    P      = softmax(scores)                               the attention probabilities
    A      = LayerNorm(X + Concat_h(P_h X W_V^h) W_O)      "attention output" (BertAttention)
    Y      = LayerNorm(A + GELU(A W_1) W_2)                 "layer output"     (BertLayer)

Hugging Face splits this across ``BertSelfAttention`` (query/key/value), ``BertSelfOutput``
(dense + residual + LayerNorm), ``BertIntermediate`` (dense + GELU) and ``BertOutput``
(dense + residual + LayerNorm). Here it is one readable forward pass; ``from_hf_bert_layer``
copies the weights over so the numbers can be checked against the real model.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from .multi_head import merge_heads, split_heads
from .scaled_dot_product import padding_mask, scaled_dot_product_attention

__all__ = ["BertBlockOutput", "BertSelfAttentionFromScratch"]


class BertBlockOutput(NamedTuple):
    """What one pass through the block produces."""

    attention_output: torch.Tensor  # (B, T, C): LayerNorm(x + attention), what BertAttention returns
    attention_probs: torch.Tensor  # (B, H, T, T): softmax weights of every head
    layer_output: torch.Tensor | None  # (B, T, C): after the feed-forward part; None without it


class BertSelfAttentionFromScratch(nn.Module):
    """BERT self-attention + residual + LayerNorm, and optionally the feed-forward half of the layer.

    Args:
        hidden_size: model width C.
        n_heads: number of heads H (head width D = C / H).
        intermediate_size: width of the feed-forward layer; ``None`` builds the attention half only.
        layer_norm_eps: LayerNorm epsilon (1e-12 in BERT).
    """

    def __init__(
        self,
        hidden_size: int,
        n_heads: int,
        intermediate_size: int | None = None,
        layer_norm_eps: float = 1e-12,
    ) -> None:
        super().__init__()
        if hidden_size % n_heads != 0:
            raise ValueError(f"hidden_size={hidden_size} is not divisible by n_heads={n_heads}")
        self.n_heads = n_heads
        # attention half
        self.query = nn.Linear(hidden_size, hidden_size)
        self.key = nn.Linear(hidden_size, hidden_size)
        self.value = nn.Linear(hidden_size, hidden_size)
        self.attn_out = nn.Linear(hidden_size, hidden_size)  # W_O
        self.attn_norm = nn.LayerNorm(hidden_size, eps=layer_norm_eps)
        # feed-forward half (optional)
        self.ffn_in: nn.Linear | None = None
        self.ffn_out: nn.Linear | None = None
        self.ffn_norm: nn.LayerNorm | None = None
        if intermediate_size is not None:
            self.ffn_in = nn.Linear(hidden_size, intermediate_size)  # W_1
            self.ffn_out = nn.Linear(intermediate_size, hidden_size)  # W_2
            self.ffn_norm = nn.LayerNorm(hidden_size, eps=layer_norm_eps)

    def forward(self, x: torch.Tensor, attention_mask: torch.Tensor | None = None) -> BertBlockOutput:
        """Run the layer.

        Args:
            x: (B, T, C) hidden states entering the layer.
            attention_mask: optional (B, T), 1 for real tokens and 0 for padding.

        Returns:
            ``BertBlockOutput(attention_output, attention_probs, layer_output)``.
        """
        q = split_heads(self.query(x), self.n_heads)  # (B, H, T, D)
        k = split_heads(self.key(x), self.n_heads)  # (B, H, T, D)
        v = split_heads(self.value(x), self.n_heads)  # (B, H, T, D)
        mask = padding_mask(attention_mask) if attention_mask is not None else None  # (B, 1, 1, T)
        ctx, probs = scaled_dot_product_attention(q, k, v, mask)  # (B, H, T, D), (B, H, T, T)
        assert probs is not None
        a = self.attn_norm(x + self.attn_out(merge_heads(ctx)))  # (B, T, C): residual, then LayerNorm

        y = None
        if self.ffn_in is not None and self.ffn_out is not None and self.ffn_norm is not None:
            h = F.gelu(self.ffn_in(a))  # (B, T, I): exact (erf) GELU, as BERT's "gelu"
            y = self.ffn_norm(a + self.ffn_out(h))  # (B, T, C)
        return BertBlockOutput(a, probs, y)

    @classmethod
    def from_hf_bert_layer(cls, layer: nn.Module, with_ffn: bool = True) -> BertSelfAttentionFromScratch:
        """Build the block from a ``transformers`` ``BertLayer`` and copy its weights.

        Uses only the layer's attribute names (``attention.self.query``, ``attention.output.dense``,
        ``intermediate.dense``, ...), so this module does not import transformers.

        Args:
            layer: e.g. ``BertModel.encoder.layer[i]``.
            with_ffn: also copy the feed-forward half, so that ``layer_output`` is computed.
        """
        self_attn, self_out = layer.attention.self, layer.attention.output
        act = getattr(getattr(self_attn, "config", None), "hidden_act", "gelu")
        if with_ffn and act != "gelu":
            raise ValueError(f"this block implements the exact 'gelu' activation, the layer uses {act!r}")
        hidden_size = self_attn.query.in_features
        block = cls(
            hidden_size=hidden_size,
            n_heads=self_attn.num_attention_heads,
            intermediate_size=layer.intermediate.dense.out_features if with_ffn else None,
            layer_norm_eps=self_out.LayerNorm.eps,
        )
        pairs = [
            (block.query, self_attn.query),
            (block.key, self_attn.key),
            (block.value, self_attn.value),
            (block.attn_out, self_out.dense),
            (block.attn_norm, self_out.LayerNorm),
        ]
        if with_ffn:
            pairs += [
                (block.ffn_in, layer.intermediate.dense),
                (block.ffn_out, layer.output.dense),
                (block.ffn_norm, layer.output.LayerNorm),
            ]
        for ours, theirs in pairs:
            ours.load_state_dict(theirs.state_dict())
        ref = next(layer.parameters())
        return block.to(device=ref.device, dtype=ref.dtype).eval()
