"""Generate the attention figures of "Attention from scratch" and "Explain a prediction" with attnlab.

1. The encoder example is exactly the CLI command
   ``attnlab explain "the movie was not good at all" --out docs/img/explain``
   (head.png, layer.png, model.png, attention.html, rollout.html/json, stats.json), plus
   ``rollout.png``: the rollout importance from ``rollout.json`` as bars.
2. The decoder example runs the same text through the causal chat model ``smollm2``
   (``attnlab.explain.extract_attention`` + ``plot_layer``/``plot_head``): ``causal-layer.png``,
   ``causal-head.png``.
3. ``docs/gen/explain_figures.md``: facts about both (tokens, layers x heads, the heads that look
   most at the previous token, the most important words by rollout), measured on the same run.

Loading two models takes a while (smollm2 is converted from its GGUF once, ~30 s), so the test suite
does not rerun it:

    python docs/gen/explain_figures.py
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
from _docgen import GEN, IMG, MAX_PNG_BYTES, banner, rel, run_main, save_figure

from attnlab.evaluation.tables import markdown_table

SCRIPT = "docs/gen/explain_figures.py"
TEXT = "the movie was not good at all"
ENCODER, DECODER = "minilm-l6", "smollm2"
OUT = IMG / "explain"
OUT_MD = GEN / "explain_figures.md"
PNGS = [OUT / n for n in ("head.png", "layer.png", "model.png", "rollout.png", "causal-layer.png", "causal-head.png")]


def _quiet() -> None:
    import logging
    import os
    import warnings

    os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")
    warnings.filterwarnings("ignore")
    import transformers

    transformers.logging.set_verbosity_error()
    transformers.logging.disable_progress_bar()
    logging.getLogger("attnlab").setLevel(logging.WARNING)


def _previous_token_heads(att: np.ndarray, top: int = 3) -> list[tuple[int, int, float]]:
    """(layer, head, mean weight on the token just before) of the heads that look back most."""
    t = att.shape[-1]
    prev = np.stack([att[..., i, i - 1] for i in range(1, t)], -1).mean(-1)  # (L, H)
    order = np.argsort(-prev, axis=None)[:top]
    return [(int(i // prev.shape[1]), int(i % prev.shape[1]), float(prev.flat[i])) for i in order]


def _causal_layer(result) -> int:
    return result.num_layers // 2


def _causal_head(result, layer: int) -> int:
    """The head of ``layer`` that attends to the previous token most (a clear pattern to show)."""
    att = result.attentions[layer]
    t = att.shape[-1]
    prev = np.stack([att[:, i, i - 1] for i in range(1, t)], -1).mean(-1)
    return int(np.argmax(prev))


def _rollout_figure(roll: dict) -> object:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    idx = [i for i, s in enumerate(roll["special"]) if not s]
    tokens = [roll["tokens"][i] for i in idx]
    values = [roll["importance"][i] for i in idx]
    fig, ax = plt.subplots(figsize=(6.4, 2.6))
    ax.bar(range(len(tokens)), values, color="#3f51b5")
    ax.set_xticks(range(len(tokens)), tokens, rotation=30, ha="right")
    ax.set_ylabel("importance (top = 1)")
    ax.set_title(f"{roll['model']}: attention rollout from {roll['source_token']}", fontsize=10)
    ax.set_ylim(0, 1.05)
    fig.tight_layout()
    return fig


class _State:
    encoder = None
    decoder = None


def _extract():
    from attnlab.explain import extract_attention

    if _State.encoder is None:
        _quiet()
        _State.encoder = extract_attention(TEXT, ENCODER)
        _State.decoder = extract_attention(TEXT, DECODER)
    return _State.encoder, _State.decoder


def figures() -> list[Path]:
    from attnlab.explain import explain, plot_head, plot_layer

    _, dec = _extract()
    written = list(explain(TEXT, model=ENCODER, out_dir=OUT).values())  # = attnlab explain TEXT --out OUT
    roll = json.loads((OUT / "rollout.json").read_text())
    written.append(save_figure(_rollout_figure(roll), OUT / "rollout.png"))
    layer = _causal_layer(dec)
    written.append(plot_layer(dec, OUT / "causal-layer.png", layer))
    written.append(plot_head(dec, OUT / "causal-head.png", layer, _causal_head(dec, layer)))
    for p in written:
        p.chmod(0o644)  # explain() writes private temp files; the site serves them
    for p in PNGS:
        if p.stat().st_size > MAX_PNG_BYTES:
            raise RuntimeError(f"{rel(p)} is {p.stat().st_size:,} bytes (limit {MAX_PNG_BYTES:,})")
    return written


def render() -> dict[Path, str]:
    from attnlab.explain import head_stats, rollout

    enc, dec = _extract()
    rows = []
    for r in (enc, dec):
        rows.append((f"`{r.model_name}`", "causal (decoder)" if r.is_causal else "bidirectional (encoder)",
                     f"{r.num_layers} × {r.num_heads}", r.seq_len, " ".join(f"`{t}`" for t in r.display_tokens)))
    roll = rollout(enc)
    ranked = [roll.tokens[i] for i in np.argsort(-roll.importance, kind="stable") if not roll.special_mask[i]][:3]
    prev_rows = []
    for r in (enc, dec):
        for layer, head, w in _previous_token_heads(r.attentions):
            prev_rows.append((f"`{r.model_name}`", layer, head, f"{w:.2f}"))
    enc_stats, dec_stats = head_stats(enc), head_stats(dec)
    layer = _causal_layer(dec)
    head = _causal_head(dec, layer)
    upper = float(np.triu(dec.attentions, 1).sum())
    return {OUT_MD: "\n".join([
        banner(SCRIPT),
        f"The text *{TEXT}* through both kinds of model:\n",
        markdown_table(["model", "attention", "layers × heads", "tokens", "tokenised as"], rows, "llrrl"),
        f"In the decoder, the total weight above the diagonal (on future tokens), over all layers and heads, "
        f"is {upper:.1f}: the causal mask at work. The encoder's rows spread over both sides.\n",
        f"Mean entropy of a head's rows (how spread out; 0 = one token): {ENCODER} "
        f"{float(enc_stats.entropy.mean()):.2f} nats, {DECODER} {float(dec_stats.entropy.mean()):.2f} nats. "
        f"Mean share of attention on special tokens: {ENCODER} {float(enc_stats.special_share.mean()):.2f}, "
        f"{DECODER} {float(dec_stats.special_share.mean()):.2f}.\n",
        "The heads that look hardest at the token just before (mean weight on position i − 1):\n",
        markdown_table(["model", "layer", "head", "weight on previous token"], prev_rows, "lrrr"),
        f"The decoder figures show layer {layer}; the single head is head {head}, the one in that layer "
        "that looks hardest at the previous token.\n",
        f"Rollout from `{roll.source_token}` in {ENCODER} ranks *{'*, *'.join(ranked)}* as the most important "
        "words.\n",
    ])}


def main(argv: list[str] | None = None) -> int:
    return run_main(SCRIPT, render, figures, PNGS, argv, __doc__.splitlines()[0])


if __name__ == "__main__":
    sys.exit(main())
