"""Llama-style attention: causal, rotary, grouped-query, no biases; loadable from Hugging Face.

A Llama decoder layer's attention is ``MultiHeadAttention`` with three settings switched on:

    q = X W_Q  -> H heads          k = X W_K, v = X W_V  -> Hkv heads (Hkv divides H)
    q, k  <- RoPE(q, k, positions)                       rotate, per head, before anything else
    k, v  <- repeat each of the Hkv heads H / Hkv times  grouped-query attention
    out   = Concat_h(softmax(q_h k_h^T / sqrt(D) + causal mask) v_h) W_O

There is no residual and no normalisation here: in Llama those live in the decoder layer
(``input_layernorm`` = RMSNorm *before* attention, residual add after), not in the attention.
"""

from __future__ import annotations

from torch import nn

from .multi_head import MultiHeadAttention

__all__ = ["LlamaAttentionFromScratch"]


class LlamaAttentionFromScratch(MultiHeadAttention):
    """``MultiHeadAttention(causal=True, rotary=True)`` with Llama's defaults (no biases, GQA).

    ``forward(x, attention_mask=None, position_ids=None, position_embeddings=None)`` returns the
    output (B, T, C) and the weights (B, H, T, T), like ``MultiHeadAttention``. Pass a Hugging Face
    model's ``rotary_emb(x, position_ids)`` as ``position_embeddings`` to use exactly its cos/sin
    (needed for RoPE variants with frequency scaling, such as Llama 3's).
    """

    def __init__(
        self,
        d_model: int,
        n_heads: int,
        n_kv_heads: int | None = None,
        head_dim: int | None = None,
        bias: bool = False,
        rope_theta: float = 10000.0,
        max_positions: int = 2048,
        dropout: float = 0.0,
    ) -> None:
        super().__init__(
            d_model,
            n_heads,
            n_kv_heads=n_kv_heads,
            head_dim=head_dim,
            bias=bias,
            causal=True,
            rotary=True,
            rope_theta=rope_theta,
            max_positions=max_positions,
            dropout=dropout,
        )

    @classmethod
    def from_hf_llama_attention(cls, attn: nn.Module) -> LlamaAttentionFromScratch:
        """Build from a ``transformers`` ``LlamaAttention`` (``model.model.layers[i].self_attn``).

        Head counts are read from the projection shapes and the RoPE base from the module's config
        (``rope_parameters["rope_theta"]``, default 10000). Only attribute names are used, so this
        module does not import transformers.
        """
        head_dim = attn.head_dim
        config = getattr(attn, "config", None)
        rope = getattr(config, "rope_parameters", None) or {}
        module = cls(
            d_model=attn.q_proj.in_features,
            n_heads=attn.q_proj.out_features // head_dim,
            n_kv_heads=attn.k_proj.out_features // head_dim,
            head_dim=head_dim,
            bias=attn.q_proj.bias is not None,
            rope_theta=float(rope.get("rope_theta", 10000.0)),
            max_positions=int(getattr(config, "max_position_embeddings", 2048) or 2048),
        )
        for name in ("q_proj", "k_proj", "v_proj", "o_proj"):
            getattr(module, name).load_state_dict(getattr(attn, name).state_dict())
        ref = attn.q_proj.weight
        return module.to(device=ref.device, dtype=ref.dtype).eval()
