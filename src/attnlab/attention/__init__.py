"""Attention from scratch: teaching code that reads like the papers.

Read in this order:

1. ``scaled_dot_product`` -- softmax(Q K^T / sqrt(d)) V, and the boolean masks (True = keep) for
   padding, causality and both at once.
2. ``numpy_reference``    -- the same operation in plain NumPy, as a cross-check.
3. ``positional``         -- sinusoidal, learned and rotary (RoPE) positions.
4. ``multi_head``         -- H heads side by side; causal, rotary and grouped-query options.
5. ``bert_block``         -- a BERT encoder layer, loadable from a Hugging Face ``BertLayer``.
6. ``llama_attention``    -- Llama's causal rotary GQA attention, loadable from ``LlamaAttention``.

The last two reproduce the real models' attention weights and outputs (see
``tests/test_attention_vs_models.py``). Nothing here is on the production path, and nothing here
imports the rest of attnlab (or transformers).
"""

from .bert_block import BertBlockOutput, BertSelfAttentionFromScratch
from .llama_attention import LlamaAttentionFromScratch
from .multi_head import MultiHeadAttention, merge_heads, repeat_kv, split_heads
from .numpy_reference import scaled_dot_product_attention_np, softmax_np
from .positional import (
    LearnedPositionalEmbedding,
    RotaryEmbedding,
    SinusoidalPositionalEncoding,
    apply_rotary,
    rope_inverse_frequencies,
    rotary_cos_sin,
    rotate_half,
    sinusoidal_encoding,
)
from .scaled_dot_product import causal_mask, combine_masks, padding_mask, scaled_dot_product_attention

__all__ = [
    "BertBlockOutput",
    "BertSelfAttentionFromScratch",
    "LearnedPositionalEmbedding",
    "LlamaAttentionFromScratch",
    "MultiHeadAttention",
    "RotaryEmbedding",
    "SinusoidalPositionalEncoding",
    "apply_rotary",
    "causal_mask",
    "combine_masks",
    "merge_heads",
    "padding_mask",
    "repeat_kv",
    "rope_inverse_frequencies",
    "rotary_cos_sin",
    "rotate_half",
    "scaled_dot_product_attention",
    "scaled_dot_product_attention_np",
    "sinusoidal_encoding",
    "softmax_np",
    "split_heads",
]
