"""attnlab.attention against PyTorch, NumPy and the formulas it claims to implement."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from attnlab.attention import (
    LearnedPositionalEmbedding,
    MultiHeadAttention,
    RotaryEmbedding,
    SinusoidalPositionalEncoding,
    apply_rotary,
    causal_mask,
    combine_masks,
    merge_heads,
    padding_mask,
    repeat_kv,
    rotary_cos_sin,
    scaled_dot_product_attention,
    scaled_dot_product_attention_np,
    sinusoidal_encoding,
    split_heads,
)

SHAPES = [  # (B, H, T, S, D)
    (1, 1, 1, 1, 4),
    (2, 3, 5, 5, 8),
    (3, 2, 4, 7, 16),
    (2, 4, 9, 9, 32),
    (1, 12, 16, 16, 64),
]
MASKS = ["none", "padding", "causal", "combined"]


def _random_qkv(b: int, h: int, t: int, s: int, d: int, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    return (
        torch.randn(b, h, t, d, generator=g),
        torch.randn(b, h, s, d, generator=g),
        torch.randn(b, h, s, d, generator=g),
    )


def _lengths_mask(b: int, s: int) -> torch.Tensor:
    """(B, S) tokenizer-style mask: sequence i has s - i real tokens (at least 1), then padding."""
    lengths = torch.tensor([max(1, s - i) for i in range(b)])
    return (torch.arange(s)[None, :] < lengths[:, None]).long()  # (B, S)


def _make_mask(kind: str, b: int, t: int, s: int) -> torch.Tensor | None:
    pad = padding_mask(_lengths_mask(b, s))  # (B, 1, 1, S)
    causal = causal_mask(t, s)  # (T, S)
    return {"none": None, "padding": pad, "causal": causal, "combined": combine_masks(pad, causal)}[kind]


@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "x".join(map(str, s)))
@pytest.mark.parametrize("mask_kind", MASKS)
def test_matches_torch_sdpa(shape: tuple[int, ...], mask_kind: str) -> None:
    b, h, t, s, d = shape
    q, k, v = _random_qkv(b, h, t, s, d)
    mask = _make_mask(mask_kind, b, t, s)
    out, weights = scaled_dot_product_attention(q, k, v, mask)
    expected = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
    torch.testing.assert_close(out, expected, atol=1e-5, rtol=1e-5)
    assert weights is not None and weights.shape == (b, h, t, s)
    assert not torch.isnan(weights).any()
    if mask is not None:
        assert (weights[~mask.expand(b, h, t, s)] == 0).all()  # masked keys get exactly zero weight


@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "x".join(map(str, s)))
@pytest.mark.parametrize("mask_kind", MASKS)
def test_numpy_reference_agrees(shape: tuple[int, ...], mask_kind: str) -> None:
    b, h, t, s, d = shape
    q, k, v = _random_qkv(b, h, t, s, d, seed=1)
    mask = _make_mask(mask_kind, b, t, s)
    out, weights = scaled_dot_product_attention(q, k, v, mask)
    out_np, weights_np = scaled_dot_product_attention_np(
        q.numpy(), k.numpy(), v.numpy(), None if mask is None else mask.numpy()
    )
    np.testing.assert_allclose(out_np, out.numpy(), atol=1e-5, rtol=1e-5)
    np.testing.assert_allclose(weights_np, weights.numpy(), atol=1e-6, rtol=1e-5)


def test_weights_rows_sum_to_one_and_scale() -> None:
    q, k, v = _random_qkv(2, 2, 3, 4, 8)
    _, w = scaled_dot_product_attention(q, k, v)
    torch.testing.assert_close(w.sum(-1), torch.ones(2, 2, 3))
    manual = torch.softmax(q @ k.transpose(-2, -1) / math.sqrt(8), dim=-1)
    torch.testing.assert_close(w, manual)
    _, none = scaled_dot_product_attention(q, k, v, return_weights=False)
    assert none is None


def test_additive_float_mask_equals_boolean_mask() -> None:
    q, k, v = _random_qkv(2, 2, 4, 4, 8)
    keep = combine_masks(padding_mask(_lengths_mask(2, 4)), causal_mask(4))
    additive = torch.zeros(keep.shape).masked_fill(~keep, torch.finfo(torch.float32).min)
    out_b, w_b = scaled_dot_product_attention(q, k, v, keep)
    out_f, w_f = scaled_dot_product_attention(q, k, v, additive)
    torch.testing.assert_close(out_b, out_f)
    torch.testing.assert_close(w_b, w_f)


def test_fully_masked_rows_are_zero_not_nan() -> None:
    q, k, v = _random_qkv(1, 2, 3, 4, 8)
    mask = torch.ones(3, 4, dtype=torch.bool)
    mask[1] = False  # query 1 may look at nothing
    out, w = scaled_dot_product_attention(q, k, v, mask)
    assert not torch.isnan(out).any() and not torch.isnan(w).any()
    assert (w[:, :, 1] == 0).all() and (out[:, :, 1] == 0).all()
    torch.testing.assert_close(w[:, :, [0, 2]].sum(-1), torch.ones(1, 2, 2))
    torch.testing.assert_close(out, F.scaled_dot_product_attention(q, k, v, attn_mask=mask))
    out_np, w_np = scaled_dot_product_attention_np(q.numpy(), k.numpy(), v.numpy(), mask.numpy())
    assert not np.isnan(out_np).any() and (w_np[:, :, 1] == 0).all()

    # left padding under a causal mask: the padded first query sees no real key
    am = torch.tensor([[0, 1, 1, 1]])
    m = combine_masks(padding_mask(am), causal_mask(4))
    q, k, v = _random_qkv(1, 2, 4, 4, 8)
    out, w = scaled_dot_product_attention(q, k, v, m)
    assert not torch.isnan(out).any() and (out[:, :, 0] == 0).all()


def test_mask_helpers() -> None:
    am = torch.tensor([[1, 1, 0], [1, 0, 0]])
    pm = padding_mask(am)
    assert pm.shape == (2, 1, 1, 3) and pm.dtype == torch.bool
    assert pm[:, 0, 0].tolist() == [[True, True, False], [True, False, False]]
    assert causal_mask(3).tolist() == [[True, False, False], [True, True, False], [True, True, True]]
    assert causal_mask(2, 4).tolist() == [[True, True, True, False], [True, True, True, True]]
    both = combine_masks(pm, None, causal_mask(3))
    assert both is not None and both.shape == (2, 1, 3, 3)
    assert both[1, 0].tolist() == [[True, False, False]] * 3
    assert combine_masks(None, None) is None
    with pytest.raises(TypeError):
        combine_masks(torch.zeros(2, 2))


def test_split_merge_heads_roundtrip() -> None:
    x = torch.randn(2, 5, 12)
    h = split_heads(x, 3)
    assert h.shape == (2, 3, 5, 4)
    torch.testing.assert_close(h[:, 1], x[..., 4:8])  # head 1 is channels 4..7
    torch.testing.assert_close(merge_heads(h), x)
    kv = torch.randn(2, 2, 5, 4)
    r = repeat_kv(kv, 3)
    assert r.shape == (2, 6, 5, 4)
    torch.testing.assert_close(r[:, 2], kv[:, 0])  # query heads 0,1,2 share kv head 0
    torch.testing.assert_close(r[:, 3], kv[:, 1])


@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"causal": True},
        {"rotary": True},
        {"causal": True, "rotary": True, "n_kv_heads": 2, "bias": False},
    ],
)
def test_multi_head_shapes(kwargs: dict) -> None:
    torch.manual_seed(0)
    mha = MultiHeadAttention(32, 4, **kwargs).eval()
    x = torch.randn(3, 7, 32)
    am = _lengths_mask(3, 7)
    out, w = mha(x, attention_mask=am)
    assert out.shape == (3, 7, 32) and w.shape == (3, 4, 7, 7)
    assert not torch.isnan(out).any()
    assert (w[2, :, :, 5:] == 0).all()  # sequence 2 has 5 real tokens
    torch.testing.assert_close(w.sum(-1), torch.ones(3, 4, 7))
    if kwargs.get("causal"):
        assert (w.triu(diagonal=1) == 0).all()


def test_multi_head_matches_torch_reference() -> None:
    """Plain MHA with the same weights as torch.nn.MultiheadAttention gives the same output."""
    torch.manual_seed(0)
    d, h = 16, 4
    ref = torch.nn.MultiheadAttention(d, h, batch_first=True).eval()
    mha = MultiHeadAttention(d, h, causal=True).eval()
    wq, wk, wv = ref.in_proj_weight.chunk(3)
    bq, bk, bv = ref.in_proj_bias.chunk(3)
    with torch.no_grad():
        for lin, w, b in ((mha.q_proj, wq, bq), (mha.k_proj, wk, bk), (mha.v_proj, wv, bv)):
            lin.weight.copy_(w)
            lin.bias.copy_(b)
        mha.o_proj.load_state_dict(ref.out_proj.state_dict())
    x = torch.randn(2, 6, d)
    expected, expected_w = ref(x, x, x, attn_mask=~causal_mask(6), average_attn_weights=False)
    out, w = mha(x)
    torch.testing.assert_close(out, expected, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(w, expected_w, atol=1e-5, rtol=1e-5)


def test_multi_head_gqa_equals_mha_with_repeated_kv_weights() -> None:
    torch.manual_seed(0)
    gqa = MultiHeadAttention(32, 4, n_kv_heads=2, causal=True, rotary=True).eval()
    mha = MultiHeadAttention(32, 4, causal=True, rotary=True).eval()
    with torch.no_grad():
        for name in ("q_proj", "o_proj"):
            getattr(mha, name).load_state_dict(getattr(gqa, name).state_dict())
        for name in ("k_proj", "v_proj"):  # kv head j -> query heads 2j, 2j+1
            src, dst = getattr(gqa, name), getattr(mha, name)
            dst.weight.copy_(src.weight.view(2, 8, 32).repeat_interleave(2, dim=0).reshape(32, 32))
            dst.bias.copy_(src.bias.view(2, 8).repeat_interleave(2, dim=0).reshape(32))
    x = torch.randn(2, 5, 32)
    out_g, w_g = gqa(x)
    out_m, w_m = mha(x)
    torch.testing.assert_close(out_g, out_m)
    torch.testing.assert_close(w_g, w_m)


def test_sinusoidal_matches_formula() -> None:
    d = 16
    pe = sinusoidal_encoding(50, d)
    assert pe.shape == (50, d)
    for pos in (0, 1, 7, 49):
        for i in range(d // 2):
            angle = pos / 10000 ** (2 * i / d)
            assert pe[pos, 2 * i].item() == pytest.approx(math.sin(angle), abs=1e-5)
            assert pe[pos, 2 * i + 1].item() == pytest.approx(math.cos(angle), abs=1e-5)
    module = SinusoidalPositionalEncoding(d, max_positions=50)
    torch.testing.assert_close(module(torch.arange(10)), pe[:10])
    assert module(torch.arange(4).expand(2, 4)).shape == (2, 4, d)
    assert sum(p.numel() for p in module.parameters()) == 0


def test_learned_positional_embedding() -> None:
    emb = LearnedPositionalEmbedding(20, 8)
    out = emb(torch.arange(5).expand(3, 5))
    assert out.shape == (3, 5, 8)
    assert sum(p.numel() for p in emb.parameters()) == 20 * 8


def test_rotary_preserves_norm() -> None:
    torch.manual_seed(0)
    q, k = torch.randn(2, 3, 10, 16), torch.randn(2, 1, 10, 16)
    cos, sin = RotaryEmbedding(16, max_positions=32)(torch.arange(10))  # (T, D)
    q_rot, k_rot = apply_rotary(q, k, cos, sin)
    torch.testing.assert_close(q_rot.norm(dim=-1), q.norm(dim=-1))
    torch.testing.assert_close(k_rot.norm(dim=-1), k.norm(dim=-1))
    torch.testing.assert_close(q_rot[:, :, 0], q[:, :, 0])  # position 0: no rotation


@pytest.mark.parametrize("theta", [10000.0, 500000.0])
def test_rotary_relative_position(theta: float) -> None:
    """<rope(q, m), rope(k, n)> depends only on m - n."""
    torch.manual_seed(0)
    d = 32
    q, k = torch.randn(1, 1, 1, d).double(), torch.randn(1, 1, 1, d).double()

    def score(m: int, n: int) -> float:
        cos_m, sin_m = rotary_cos_sin(torch.tensor([m]), d, theta)
        cos_n, sin_n = rotary_cos_sin(torch.tensor([n]), d, theta)
        q_m, _ = apply_rotary(q, q, cos_m.double(), sin_m.double())
        k_n, _ = apply_rotary(k, k, cos_n.double(), sin_n.double())
        return (q_m * k_n).sum().item()

    for offset in (0, 3, 11):
        scores = [score(n + offset, n) for n in (0, 5, 40, 100)]
        assert max(scores) - min(scores) < 1e-4, (offset, scores)
    assert abs(score(3, 0) - score(0, 3)) > 1e-6  # but the sign of the offset matters


def test_rotary_cache_and_batched_positions() -> None:
    rope = RotaryEmbedding(8, max_positions=16, theta=100.0)
    cos, sin = rope(torch.arange(20))  # beyond the cache: computed on the fly
    cos_ref, sin_ref = rotary_cos_sin(torch.arange(20), 8, 100.0)
    torch.testing.assert_close(cos, cos_ref)
    torch.testing.assert_close(sin, sin_ref)
    pos = torch.tensor([[0, 1, 2], [5, 6, 7]])
    cos_b, sin_b = rope(pos)  # (B, T, D)
    assert cos_b.shape == (2, 3, 8)
    q = torch.randn(2, 2, 3, 8)
    q_rot, _ = apply_rotary(q, q, cos_b, sin_b)
    q_rot1, _ = apply_rotary(q[1:], q[1:], *rope(torch.arange(5, 8)))
    torch.testing.assert_close(q_rot[1:], q_rot1)
