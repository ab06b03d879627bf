"""Positional information: sinusoidal, learned, and rotary (RoPE).

Attention itself is blind to order: permute the keys (and values) and every output stays the same.
Position therefore has to be injected, in one of two places.

**Added to the token embeddings** (before the first layer):

* Sinusoidal (Vaswani et al. 2017, section 3.5): a fixed table

      PE[pos, 2i]     = sin(pos / base^(2i / d_model))
      PE[pos, 2i + 1] = cos(pos / base^(2i / d_model))        with base = 10000

  Each pair of dimensions is a clock turning at its own frequency, from one turn every 2*pi
  positions down to one every base*2*pi. PE[pos + k] is a fixed linear function (a rotation) of
  PE[pos], which makes relative offsets easy for the model to pick up.
* Learned (BERT, GPT-2): an ``nn.Embedding`` with one trainable vector per position.

**Applied to queries and keys inside attention**:

* Rotary (Su et al. 2021, "RoFormer"; used by Llama): rotate each pair of dimensions of q and k
  by an angle proportional to the position, ``angle = pos * theta^(-2i / d)``. A dot product of
  two rotated vectors only depends on the *difference* of their rotation angles, so

      <rope(q, m), rope(k, n)> = f(q, k, m - n)

  and the attention scores see relative positions only. Nothing is added to the values.

The rotary code follows the Hugging Face Llama convention ("rotate_half"): dimension i is paired
with dimension i + d/2 (not with its neighbour 2i + 1 as in the paper), and the cos/sin tables are
the frequencies repeated twice, ``cat(freqs, freqs)``. The two layouts are the same rotation up
to a fixed permutation of the head dimensions; using HF's lets us load Llama weights unchanged.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = [
    "LearnedPositionalEmbedding",
    "RotaryEmbedding",
    "SinusoidalPositionalEncoding",
    "apply_rotary",
    "rope_inverse_frequencies",
    "rotary_cos_sin",
    "rotate_half",
    "sinusoidal_encoding",
]


# --------------------------------------------------------------------------- sinusoidal / learned


def sinusoidal_encoding(n_positions: int, d_model: int, base: float = 10000.0) -> torch.Tensor:
    """The fixed sinusoidal table of Vaswani et al. (2017).

    Returns:
        (n_positions, d_model): PE[pos, 2i] = sin(pos / base^(2i/d)), PE[pos, 2i+1] = cos(same).
    """
    if d_model % 2 != 0:
        raise ValueError(f"d_model must be even for sinusoidal encodings, got {d_model}")
    pos = torch.arange(n_positions, dtype=torch.float32)[:, None]  # (P, 1)
    two_i = torch.arange(0, d_model, 2, dtype=torch.float32)  # (d/2,) = 0, 2, 4, ...
    angle = pos / base ** (two_i / d_model)  # (P, d/2)
    pe = torch.zeros(n_positions, d_model)
    pe[:, 0::2] = torch.sin(angle)  # even dimensions
    pe[:, 1::2] = torch.cos(angle)  # odd dimensions
    return pe  # (P, d_model)


class SinusoidalPositionalEncoding(nn.Module):
    """Looks positions up in the fixed sinusoidal table (no trainable parameters).

    ``forward(positions)`` returns the encodings; the caller adds them to the token embeddings:
    ``x = tok_emb(ids) + pos_enc(torch.arange(T))``.
    """

    def __init__(self, d_model: int, max_positions: int = 2048, base: float = 10000.0) -> None:
        super().__init__()
        self.pe: torch.Tensor
        self.register_buffer("pe", sinusoidal_encoding(max_positions, d_model, base), persistent=False)

    def forward(self, positions: torch.Tensor) -> torch.Tensor:
        """positions: integer (T,) or (B, T) -> encodings (T, C) or (B, T, C)."""
        return self.pe[positions]


class LearnedPositionalEmbedding(nn.Module):
    """One trainable vector per position (BERT, GPT-2): an ``nn.Embedding`` indexed by position."""

    def __init__(self, max_positions: int, d_model: int) -> None:
        super().__init__()
        self.embedding = nn.Embedding(max_positions, d_model)

    def forward(self, positions: torch.Tensor) -> torch.Tensor:
        """positions: integer (T,) or (B, T) -> embeddings (T, C) or (B, T, C)."""
        return self.embedding(positions)


# --------------------------------------------------------------------------- rotary (RoPE)


def rope_inverse_frequencies(head_dim: int, theta: float = 10000.0) -> torch.Tensor:
    """The rotation speed of each dimension pair: theta^(-2i / head_dim), i = 0 .. head_dim/2 - 1.

    Returns:
        (head_dim / 2,) float32, computed exactly as Hugging Face's default RoPE does.
    """
    if head_dim % 2 != 0:
        raise ValueError(f"head_dim must be even for rotary embeddings, got {head_dim}")
    return 1.0 / (theta ** (torch.arange(0, head_dim, 2, dtype=torch.float32) / head_dim))


def rotary_cos_sin(
    positions: torch.Tensor, head_dim: int, theta: float = 10000.0
) -> tuple[torch.Tensor, torch.Tensor]:
    """cos and sin of the rotation angles for the given positions (HF Llama layout).

    Args:
        positions: integer positions, (T,) or (B, T).
        head_dim: size of one attention head D.
        theta: the RoPE base (10000 in RoFormer and Llama 2; larger in later models).

    Returns:
        cos, sin, each (..., T, D) float32: ``cat(angles, angles)`` so that dimension i and
        dimension i + D/2 share an angle.
    """
    inv_freq = rope_inverse_frequencies(head_dim, theta).to(positions.device)  # (D/2,)
    freqs = positions[..., None].float() * inv_freq  # (..., T, D/2): angle = pos * theta^(-2i/D)
    emb = torch.cat((freqs, freqs), dim=-1)  # (..., T, D)
    return emb.cos(), emb.sin()


def rotate_half(x: torch.Tensor) -> torch.Tensor:
    """(x1, x2) -> (-x2, x1) on the two halves of the last dimension.

    With x1 = x[..., :D/2] and x2 = x[..., D/2:], the pair (x1[i], x2[i]) rotated by angle a is
    (x1 cos a - x2 sin a, x2 cos a + x1 sin a) = x * cos + rotate_half(x) * sin.
    """
    x1, x2 = x.chunk(2, dim=-1)
    return torch.cat((-x2, x1), dim=-1)


def apply_rotary(
    q: torch.Tensor, k: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Rotate queries and keys by their positions' angles.

    Args:
        q: (B, H, T, D) queries.
        k: (B, Hkv, S, D) keys (here S = T: self-attention over the same positions).
        cos, sin: (T, D) for positions shared by the batch, or (B, T, D) per sequence
            (what ``rotary_cos_sin`` / ``RotaryEmbedding`` / HF's ``rotary_emb`` return).

    Returns:
        rotated q and k, same shapes: ``x * cos + rotate_half(x) * sin``.
    """
    if cos.dim() == 3:  # (B, T, D) -> (B, 1, T, D): same angles for every head
        cos, sin = cos[:, None], sin[:, None]
    cos, sin = cos.to(q.dtype), sin.to(q.dtype)
    q_rot = q * cos + rotate_half(q) * sin
    k_rot = k * cos + rotate_half(k) * sin
    return q_rot, k_rot


class RotaryEmbedding(nn.Module):
    """A cache of cos/sin tables for positions 0 .. max_positions - 1.

    ``forward(positions)`` looks the tables up; positions beyond the cache are computed on the fly.
    """

    def __init__(self, head_dim: int, max_positions: int = 2048, theta: float = 10000.0) -> None:
        super().__init__()
        self.head_dim, self.theta = head_dim, theta
        cos, sin = rotary_cos_sin(torch.arange(max_positions), head_dim, theta)  # (P, D) each
        self.cos: torch.Tensor
        self.sin: torch.Tensor
        self.register_buffer("cos", cos, persistent=False)
        self.register_buffer("sin", sin, persistent=False)

    def forward(self, positions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """positions: integer (T,) or (B, T) -> cos, sin, each (T, D) or (B, T, D)."""
        if positions.numel() > 0 and int(positions.max()) >= self.cos.size(0):
            return rotary_cos_sin(positions, self.head_dim, self.theta)
        return self.cos[positions], self.sin[positions]
