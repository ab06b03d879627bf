"""Multi-head attention (Vaswani et al. 2017, section 3.2.2), with the options modern models add.

    MultiHead(X) = Concat(head_1, ..., head_H) W_O,   head_h = Attention(X W_Q^h, X W_K^h, X W_V^h)

Instead of one attention over d_model-wide vectors, the model runs H attentions side by side over
D = d_model / H wide slices, each with its own learned projections, and mixes the results back
with W_O. Different heads are free to look for different things (the previous token, the
matching bracket, the subject of the verb, ...). In code the H projections are one big Linear
whose output is cut into H pieces (``split_heads``), and the concatenation is the reverse
(``merge_heads``).

Options:

* ``causal``: each position may only look at itself and earlier positions (decoders, GPT).
* ``rotary``: rotate q and k by their positions (RoPE, see ``positional.py``) instead of adding
  positional vectors to the input (Llama).
* ``n_kv_heads`` < ``n_heads``: grouped-query attention (GQA, Ainslie et al. 2023). Only
  n_kv_heads key/value heads are computed and each is shared by n_heads / n_kv_heads query heads,
  which shrinks the KV cache by the same factor. n_kv_heads = 1 is multi-query attention.
"""

from __future__ import annotations

import torch
from torch import nn

from .positional import RotaryEmbedding, apply_rotary
from .scaled_dot_product import causal_mask, combine_masks, padding_mask, scaled_dot_product_attention

__all__ = ["MultiHeadAttention", "merge_heads", "repeat_kv", "split_heads"]


def split_heads(x: torch.Tensor, n_heads: int) -> torch.Tensor:
    """(B, T, H*D) -> (B, H, T, D): cut the channels into H heads and move heads before time."""
    b, t, c = x.shape
    return x.view(b, t, n_heads, c // n_heads).transpose(1, 2)  # (B, H, T, D)


def merge_heads(x: torch.Tensor) -> torch.Tensor:
    """(B, H, T, D) -> (B, T, H*D): the inverse of ``split_heads`` (the "Concat" of the paper)."""
    b, h, t, d = x.shape
    return x.transpose(1, 2).reshape(b, t, h * d)  # (B, T, H*D)


def repeat_kv(x: torch.Tensor, n_rep: int) -> torch.Tensor:
    """(B, Hkv, S, D) -> (B, Hkv*n_rep, S, D): share each key/value head with n_rep query heads.

    Query head h uses key/value head h // n_rep (consecutive query heads form a group), as in
    Hugging Face's Llama.
    """
    if n_rep == 1:
        return x
    return x.repeat_interleave(n_rep, dim=1)  # (B, H, S, D)


class MultiHeadAttention(nn.Module):
    """Self-attention with H heads, optional causal mask, rotary positions and grouped KV heads.

    Args:
        d_model: model width C (input and output size).
        n_heads: number of query heads H.
        n_kv_heads: number of key/value heads (default ``n_heads``; fewer = grouped-query attention).
        head_dim: width D of one head (default d_model // n_heads).
        bias: whether the four projections have biases (BERT: yes, Llama: no).
        causal: mask out the future.
        rotary: apply RoPE to q and k.
        rope_theta: RoPE base.
        max_positions: size of the RoPE cos/sin cache.
        dropout: dropout on the attention weights, active in training mode only.

    ``forward`` returns the output (B, T, C) and the attention weights (B, H, T, T).
    """

    def __init__(
        self,
        d_model: int,
        n_heads: int,
        n_kv_heads: int | None = None,
        head_dim: int | None = None,
        bias: bool = True,
        causal: bool = False,
        rotary: bool = False,
        rope_theta: float = 10000.0,
        max_positions: int = 2048,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        n_kv_heads = n_heads if n_kv_heads is None else n_kv_heads
        if head_dim is None:
            if d_model % n_heads != 0:
                raise ValueError(f"d_model={d_model} is not divisible by n_heads={n_heads}")
            head_dim = d_model // n_heads
        if n_heads % n_kv_heads != 0:
            raise ValueError(f"n_heads={n_heads} is not a multiple of n_kv_heads={n_kv_heads}")
        self.d_model, self.n_heads, self.n_kv_heads, self.head_dim = d_model, n_heads, n_kv_heads, head_dim
        self.causal, self.dropout = causal, dropout

        self.q_proj = nn.Linear(d_model, n_heads * head_dim, bias=bias)  # W_Q for all heads at once
        self.k_proj = nn.Linear(d_model, n_kv_heads * head_dim, bias=bias)  # W_K
        self.v_proj = nn.Linear(d_model, n_kv_heads * head_dim, bias=bias)  # W_V
        self.o_proj = nn.Linear(n_heads * head_dim, d_model, bias=bias)  # W_O
        self.rotary = RotaryEmbedding(head_dim, max_positions, rope_theta) if rotary else None

    def forward(
        self,
        x: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        position_ids: torch.Tensor | None = None,
        position_embeddings: tuple[torch.Tensor, torch.Tensor] | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Attend from every position of x to every (allowed) position of x.

        Args:
            x: (B, T, C) input.
            attention_mask: optional (B, T), 1 for real tokens and 0 for padding (tokenizer style).
            position_ids: optional (T,) or (B, T) positions for RoPE (default 0 .. T-1).
            position_embeddings: optional precomputed RoPE (cos, sin), each (T, D) or (B, T, D);
                overrides the module's own cache (e.g. to reuse a Hugging Face model's rotary_emb).

        Returns:
            output (B, T, C) and attention weights (B, H, T, T).
        """
        t = x.size(1)
        q = split_heads(self.q_proj(x), self.n_heads)  # (B, H, T, D)
        k = split_heads(self.k_proj(x), self.n_kv_heads)  # (B, Hkv, T, D)
        v = split_heads(self.v_proj(x), self.n_kv_heads)  # (B, Hkv, T, D)

        if self.rotary is not None:
            if position_embeddings is None:
                positions = torch.arange(t, device=x.device) if position_ids is None else position_ids
                position_embeddings = self.rotary(positions)  # (T, D) or (B, T, D) each
            cos, sin = position_embeddings
            q, k = apply_rotary(q, k, cos, sin)  # rotate before sharing: RoPE acts per head
        elif position_embeddings is not None:
            raise ValueError("position_embeddings were given to a MultiHeadAttention built with rotary=False")

        n_rep = self.n_heads // self.n_kv_heads
        k, v = repeat_kv(k, n_rep), repeat_kv(v, n_rep)  # (B, H, T, D) each

        mask = combine_masks(
            padding_mask(attention_mask) if attention_mask is not None else None,  # (B, 1, 1, T)
            causal_mask(t, device=x.device) if self.causal else None,  # (T, T)
        )
        y, weights = scaled_dot_product_attention(
            q, k, v, mask, dropout_p=self.dropout if self.training else 0.0
        )  # (B, H, T, D), (B, H, T, T)
        y = merge_heads(y)  # (B, T, H*D): concatenate the heads
        return self.o_proj(y), weights  # (B, T, C), (B, H, T, T)
