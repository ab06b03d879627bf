"""Generate the numbers and figures of the Concepts pages with ``attnlab.attention``.

Writes Markdown snippets that the pages include (``--8<-- "gen/....md"``):

* ``docs/gen/attention_example.md``  self-attention on three tokens, every intermediate matrix
* ``docs/gen/scaling.md``            why the scores are divided by sqrt(d)
* ``docs/gen/multihead_shapes.md``   tensor shapes through multi-head (and grouped-query) attention
* ``docs/gen/positions.md``          sinusoidal and rotary encodings see relative offsets
* ``docs/img/sinusoidal.png``        the sinusoidal table as a heatmap and as curves

Everything is seeded and runs in about a second on a CPU.

    python docs/gen/concepts.py            # write
    python docs/gen/concepts.py --check    # exit 1 if a snippet is out of date
"""

from __future__ import annotations

import math
import sys
from pathlib import Path

import torch
from _docgen import GEN, IMG, banner, run_main, save_figure

from attnlab.evaluation.tables import markdown_table

SCRIPT = "docs/gen/concepts.py"
EXAMPLE_MD = GEN / "attention_example.md"
SCALING_MD = GEN / "scaling.md"
SHAPES_MD = GEN / "multihead_shapes.md"
POSITIONS_MD = GEN / "positions.md"
SINUSOIDAL_PNG = IMG / "sinusoidal.png"

TOKENS = ["the", "cat", "sat"]
D = 4  # model width = head width in the worked example
SEED = 0


def _fmt(x: float, digits: int = 2) -> str:
    if math.isinf(x):
        return "−∞"
    s = f"{x:.{digits}f}"
    return "0." + "0" * digits if s in ("-0." + "0" * digits,) else s.replace("-", "−")


def matrix(m: torch.Tensor, rows: list[str], cols: list[str], digits: int = 2, corner: str = "") -> str:
    """A labelled Markdown table of a 2-D tensor."""
    body = [[f"**{r}**", *(_fmt(float(v), digits) for v in row)] for r, row in zip(rows, m.tolist(), strict=True)]
    return markdown_table([corner, *cols], body, "l" + "r" * len(cols))


def _example_inputs() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """X (3, 4) and the three projections W_Q, W_K, W_V (4, 4), rounded to one decimal to stay readable."""
    g = torch.Generator().manual_seed(SEED)
    x = torch.round(torch.randn(len(TOKENS), D, generator=g) * 10) / 10
    w = [torch.round(torch.randn(D, D, generator=g) * 5) / 10 for _ in range(3)]
    return x, *w


def render_example() -> str:
    from attnlab.attention import causal_mask, scaled_dot_product_attention

    x, wq, wk, wv = _example_inputs()
    q, k, v = x @ wq, x @ wk, x @ wv  # (T, D) each
    scores = q @ k.T  # (T, T)
    scaled = scores / math.sqrt(D)
    weights = torch.softmax(scaled, dim=-1)
    out = weights @ v
    lib_out, lib_w = scaled_dot_product_attention(q[None, None], k[None, None], v[None, None])
    assert lib_w is not None
    diff_w = float((lib_w[0, 0] - weights).abs().max())
    diff_o = float((lib_out[0, 0] - out).abs().max())
    assert diff_w < 1e-6 and diff_o < 1e-6, (diff_w, diff_o)

    mask = causal_mask(len(TOKENS))
    masked = scaled.masked_fill(~mask, float("-inf"))
    c_weights = torch.softmax(masked, dim=-1)
    c_out = c_weights @ v
    lib_c_out, lib_c_w = scaled_dot_product_attention(q[None, None], k[None, None], v[None, None], mask)
    assert lib_c_w is not None
    diff_c = max(float((lib_c_w[0, 0] - c_weights).abs().max()), float((lib_c_out[0, 0] - c_out).abs().max()))
    assert diff_c < 1e-6, diff_c
    assert float((c_out[-1] - out[-1]).abs().max()) < 1e-6

    cols = [f"d{i}" for i in range(D)]
    i, j = 1, 0  # the score of "cat" (query) against "the" (key), written out
    products = " + ".join(f"({_fmt(float(a))})·({_fmt(float(b))})" for a, b in zip(q[i], k[j], strict=True))
    row = weights[i]
    top = int(row.argmax())
    parts = [
        banner(SCRIPT),
        f"**Input.** Three tokens, each already a {D}-number vector (token embedding plus position), "
        f"stacked as the rows of X. The projections W_Q, W_K, W_V are {D}×{D} (random, seed {SEED}, "
        "rounded to one decimal so that you can redo the arithmetic).\n",
        matrix(x, TOKENS, cols, 1, "X"),
        '=== "W_Q"\n\n' + _indent(matrix(wq, cols, cols, 1, "W_Q")),
        '=== "W_K"\n\n' + _indent(matrix(wk, cols, cols, 1, "W_K")),
        '=== "W_V"\n\n' + _indent(matrix(wv, cols, cols, 1, "W_V")),
        "**Step 1: queries, keys, values.** Q = X W_Q, K = X W_K, V = X W_V: every token gets a query "
        "(what it looks for), a key (what it offers to be found by) and a value (what it passes on).\n",
        '=== "Q"\n\n' + _indent(matrix(q, TOKENS, cols)),
        '=== "K"\n\n' + _indent(matrix(k, TOKENS, cols)),
        '=== "V"\n\n' + _indent(matrix(v, TOKENS, cols)),
        "**Step 2: scores.** S = Q Kᵀ: one dot product per (query, key) pair; row = query, column = key. "
        f"For example, query *{TOKENS[i]}* against key *{TOKENS[j]}*:\n",
        f"```text\nS[{TOKENS[i]}, {TOKENS[j]}] = {products} = {_fmt(float(scores[i, j]))}\n```\n",
        matrix(scores, TOKENS, TOKENS, corner="S = Q Kᵀ"),
        f"**Step 3: scale.** Divide by √d_k = √{D} = {_fmt(math.sqrt(D))} "
        "(the next section shows why).\n",
        matrix(scaled, TOKENS, TOKENS, corner="S / √d_k"),
        "**Step 4: softmax, row by row.** Each row becomes a probability distribution over the keys: "
        "exp(s) / Σ exp(s). These are the *attention weights*.\n",
        matrix(weights, TOKENS, TOKENS, 3, "A = softmax"),
        f"Every row sums to 1 (row sums: {', '.join(_fmt(float(s), 3) for s in weights.sum(-1))}). "
        f"*{TOKENS[i]}* puts {_fmt(float(row[top]) * 100, 1)}% of its attention on *{TOKENS[top]}*.\n",
        "**Step 5: weighted sum of values.** Z = A V: each output row is the attention-weighted average "
        "of the value rows; this is what the layer passes on for that token.\n",
        matrix(out, TOKENS, cols, corner="Z = A V"),
        "**The library call.** `attnlab.attention.scaled_dot_product_attention(q, k, v)` does steps 2–5 "
        "in one go; the generator checks that its weights and output match the tables above to within 1e-6.\n",
        "**With a causal mask** (decoders): query *i* may only look at keys 0…i. Masked scores become −∞ "
        "before the softmax, so they get exactly zero weight; the first token can only attend to itself.\n",
        matrix(masked, TOKENS, TOKENS, corner="masked S / √d_k"),
        matrix(c_weights, TOKENS, TOKENS, 3, "causal A"),
        matrix(c_out, TOKENS, cols, corner="causal Z"),
        "The last token sees the whole sequence, so its row of the causal output equals its row of the "
        "unmasked one; the earlier rows change because they lost the keys after them.\n",
    ]
    return "\n".join(parts)


def _indent(text: str) -> str:
    return "".join(f"    {line}\n" if line else "\n" for line in text.splitlines())


def render_scaling() -> str:
    g = torch.Generator().manual_seed(SEED)
    n_pairs, n_keys = 10_000, 8
    rows = []
    for d in (4, 64, 512):
        q = torch.randn(n_pairs, d, generator=g)
        k = torch.randn(n_pairs, d, generator=g)
        dots = (q * k).sum(-1)
        keys = torch.randn(n_pairs, n_keys, d, generator=g)
        s = torch.einsum("nd,nkd->nk", q, keys)
        raw_max = torch.softmax(s, -1).max(-1).values.mean()
        scaled_max = torch.softmax(s / math.sqrt(d), -1).max(-1).values.mean()
        rows.append((d, f"{float(dots.std()):.2f}", f"{math.sqrt(d):.2f}", f"{float((dots / math.sqrt(d)).std()):.2f}",
                     f"{float(raw_max):.3f}", f"{float(scaled_max):.3f}"))
    return banner(SCRIPT) + (
        f"Queries and keys with independent unit-variance entries ({n_pairs:,} random pairs per width d, "
        f"seed {SEED}); the last two columns are the largest softmax weight over {n_keys} keys, averaged.\n\n"
    ) + markdown_table(["d", "std of q·k", "√d", "std of q·k / √d", "max weight, unscaled", "max weight, scaled"],
                       rows, "rrrrrr")


def render_shapes() -> str:
    from attnlab.attention import MultiHeadAttention, merge_heads, repeat_kv, split_heads

    b, t, c, h, h_kv = 2, 5, 384, 12, 4
    torch.manual_seed(SEED)
    x = torch.randn(b, t, c)
    mha = MultiHeadAttention(c, h).eval()
    q = split_heads(mha.q_proj(x), h)
    y, w = mha(x)
    rows = [
        ("input x", "(B, T, C)", tuple(x.shape)),
        ("q_proj(x)", "(B, T, H·D)", tuple(mha.q_proj(x).shape)),
        ("split_heads", "(B, H, T, D)", tuple(q.shape)),
        ("scores q kᵀ / √D, weights", "(B, H, T, T)", tuple(w.shape)),
        ("weights @ v", "(B, H, T, D)", tuple(q.shape)),
        ("merge_heads (concat)", "(B, T, H·D)", tuple(merge_heads(q).shape)),
        ("o_proj: output", "(B, T, C)", tuple(y.shape)),
    ]
    gqa = MultiHeadAttention(c, h, n_kv_heads=h_kv).eval()
    k = split_heads(gqa.k_proj(x), h_kv)
    _, gw = gqa(x)
    gqa_rows = [
        ("k_proj(x), split", "(B, H_kv, T, D)", tuple(k.shape)),
        ("repeat_kv", "(B, H, T, D)", tuple(repeat_kv(k, h // h_kv).shape)),
        ("weights", "(B, H, T, T)", tuple(gw.shape)),
    ]
    n_mha = sum(p.numel() for p in mha.parameters())
    n_gqa = sum(p.numel() for p in gqa.parameters())

    def fmt(shape: tuple[int, ...]) -> str:
        return "(" + ", ".join(map(str, shape)) + ")"

    return "\n".join([
        banner(SCRIPT),
        f"`MultiHeadAttention(d_model={c}, n_heads={h})` on a batch of B = {b} sequences of T = {t} tokens: "
        f"C = {c}, H = {h}, D = C / H = {c // h}.\n",
        markdown_table(["step", "shape", "here"], [(s, f"`{n}`", f"`{fmt(v)}`") for s, n, v in rows]),
        f"Grouped-query attention, `MultiHeadAttention({c}, {h}, n_kv_heads={h_kv})`: only {h_kv} key/value "
        f"heads are computed, each shared by {h // h_kv} query heads.\n",
        markdown_table(["step", "shape", "here"], [(s, f"`{n}`", f"`{fmt(v)}`") for s, n, v in gqa_rows]),
        f"Parameters: {n_mha:,} with {h} key/value heads, {n_gqa:,} with {h_kv} "
        f"({100 * (1 - n_gqa / n_mha):.0f}% fewer); the key/value cache of a decoder shrinks by "
        f"{h // h_kv}× as well.\n",
    ])


def render_positions() -> str:
    from attnlab.attention import apply_rotary, rotary_cos_sin, sinusoidal_encoding

    pe = sinusoidal_encoding(128, 64)
    pairs = [(0, 1), (10, 11), (50, 51), (0, 5), (10, 15), (50, 55)]
    sin_rows = [(p, p2, p2 - p, _fmt(float(pe[p] @ pe[p2]), 4)) for p, p2 in pairs]

    g = torch.Generator().manual_seed(SEED)
    hd = 8
    q = torch.randn(1, 1, 1, hd, generator=g)
    k = torch.randn(1, 1, 1, hd, generator=g)

    def rope_score(m: int, n: int) -> float:
        cos_m, sin_m = rotary_cos_sin(torch.tensor([m]), hd)
        cos_n, sin_n = rotary_cos_sin(torch.tensor([n]), hd)
        qm, _ = apply_rotary(q, q, cos_m, sin_m)
        kn, _ = apply_rotary(k, k, cos_n, sin_n)
        return float((qm * kn).sum())

    rope_pairs = [(2, 0), (7, 5), (102, 100), (7, 0), (107, 100)]
    rope_rows = [(m, n, m - n, _fmt(rope_score(m, n), 4)) for m, n in rope_pairs]
    return "\n".join([
        banner(SCRIPT),
        "**Sinusoidal.** The dot product of two rows of the table (`sinusoidal_encoding(128, 64)`) depends "
        "only on how far apart the positions are, not on where they are:\n",
        markdown_table(["position p", "position p′", "offset", "PE[p] · PE[p′]"], sin_rows, "rrrr"),
        f"**Rotary.** One random query and key (head width {hd}, seed {SEED}), rotated to positions m and n "
        "with `rotary_cos_sin` + `apply_rotary`: the score depends only on m − n.\n",
        markdown_table(["query position m", "key position n", "m − n", "score"], rope_rows, "rrrr"),
    ])


def figures() -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from attnlab.attention import sinusoidal_encoding

    pe = sinusoidal_encoding(64, 128).numpy()
    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 3.4), gridspec_kw={"width_ratios": [1.25, 1]})
    im = a.imshow(pe, aspect="auto", cmap="RdBu_r", vmin=-1, vmax=1, interpolation="nearest")
    a.set_xlabel("dimension")
    a.set_ylabel("position")
    a.set_title("sinusoidal_encoding(64, 128)")
    fig.colorbar(im, ax=a, fraction=0.046)
    for dim in (6, 14, 24, 40):
        b.plot(pe[:, dim], label=f"dim {dim}", lw=1.4)
    b.set_xlabel("position")
    b.set_title("one column per frequency")
    b.legend(fontsize=8, loc="lower left")
    fig.tight_layout()
    return [save_figure(fig, SINUSOIDAL_PNG)]


def render() -> dict[Path, str]:
    return {EXAMPLE_MD: render_example(), SCALING_MD: render_scaling(), SHAPES_MD: render_shapes(),
            POSITIONS_MD: render_positions()}


def main(argv: list[str] | None = None) -> int:
    return run_main(SCRIPT, render, figures, [SINUSOIDAL_PNG], argv, __doc__.splitlines()[0])


if __name__ == "__main__":
    sys.exit(main())
