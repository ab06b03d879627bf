"""Generate the numbers of the decoder walkthrough (docs/concepts/decoder-walkthrough.md).

Runs the packaged SmolLM2-135M-Instruct (``attnlab.models.resolve_model("smollm2")``) on one
prompt, step by step: tokens, embeddings, the first decoder layer recomputed with
``attnlab.attention.LlamaAttentionFromScratch`` (the max difference from the real layer), the final
RMSNorm and the tied LM head, the next-token table, greedy decoding against seeded temperature and
top-p sampling, the KV cache (its shapes and bytes, and time per generated token with and without
it), and the contrast with the bidirectional encoder ``minilm-l6``. Writes one snippet per step to
``docs/gen/decoder_*.md``.

The timings depend on the machine, so ``--check`` compares every snippet except the KV-cache
timing one (which it only requires to exist). Loading the model takes a few seconds (the first use
converts the packaged GGUF, ~30 s), so the test suite does not rerun this script; rerun it when the
page or the model changes:

    python docs/gen/decoder_walkthrough.py
"""

from __future__ import annotations

import contextlib
import io
import os
import time
import warnings
from pathlib import Path
from typing import Any

from _docgen import GEN, banner, run_main

from attnlab.evaluation.tables import markdown_table

SCRIPT = "docs/gen/decoder_walkthrough.py"
PROMPT = "The movie was not good at all"
TOP = 8
SAMPLING = ({"name": "greedy", "do_sample": False},
            {"name": "temperature 0.7", "do_sample": True, "temperature": 0.7, "top_p": 1.0},
            {"name": "temperature 1.3", "do_sample": True, "temperature": 1.3, "top_p": 1.0},
            {"name": "top-p 0.9 (temperature 1.0)", "do_sample": True, "temperature": 1.0, "top_p": 0.9})
SEEDS = (0, 1, 2)
NEW_TOKENS = 12
KV_NEW_TOKENS = 48
TIMING_MD = GEN / "decoder_kv_timing.md"


def _quiet_load(kind: str, name: str) -> tuple[Any, Any]:
    import torch
    import transformers
    from transformers import AutoModel, AutoModelForCausalLM, AutoTokenizer

    from attnlab.models import resolve_model

    os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")
    warnings.filterwarnings("ignore")
    transformers.logging.set_verbosity_error()
    transformers.logging.disable_progress_bar()
    path = resolve_model(name).path
    cls = AutoModelForCausalLM if kind == "causal" else AutoModel
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        tok = AutoTokenizer.from_pretrained(path)
        model = cls.from_pretrained(path, dtype=torch.float32, attn_implementation="eager").eval()
    return tok, model


def _token(tok: Any, i: int) -> str:
    return f"`{tok.decode([i])!r}`"


def tokens_md(tok: Any, ids: Any) -> str:
    pieces = zip(tok.convert_ids_to_tokens(ids), ids.tolist(), strict=True)
    rows = [(p, f"`{t}`", int(i)) for p, (t, i) in enumerate(pieces)]
    return (f"Prompt `{PROMPT!r}`, tokenized by SmolLM2's byte-level BPE (`Ġ` marks a leading space; no "
            f"special token is added to raw text):\n\n" + markdown_table(("position", "token", "id"), rows, "rlr"))


def layer_md(model: Any, ids: Any) -> tuple[str, Any]:
    """The first decoder layer recomputed by hand; returns the snippet and the model output."""
    import torch

    from attnlab.attention import LlamaAttentionFromScratch

    cfg, layer = model.config, model.model.layers[0]
    with torch.no_grad():
        out = model(ids, output_hidden_states=True, output_attentions=True)
        x = model.model.embed_tokens(ids)                               # (1, T, C)
        cos_sin = model.model.rotary_emb(x, torch.arange(ids.shape[1])[None])
        attn = LlamaAttentionFromScratch.from_hf_llama_attention(layer.self_attn).eval()
        a, weights = attn(layer.input_layernorm(x), position_embeddings=cos_sin)
        h = x + a                                                        # residual around attention
        h = h + layer.mlp(layer.post_attention_layernorm(h))             # residual around the MLP
    rows = [("embeddings `embed_tokens(ids)` vs `hidden_states[0]`", f"{(x - out.hidden_states[0]).abs().max():.1e}"),
            ("attention weights (1, H, T, T) vs `attentions[0]`", f"{(weights - out.attentions[0]).abs().max():.1e}"),
            ("layer output (1, T, C) vs `hidden_states[1]`", f"{(h - out.hidden_states[1]).abs().max():.1e}")]
    text = (f"SmolLM2 has {cfg.num_hidden_layers} layers of width C = {cfg.hidden_size}, {cfg.num_attention_heads} "
            f"query heads and {cfg.num_key_value_heads} key/value heads of {cfg.head_dim} dimensions (grouped-query "
            f"attention), an MLP of width {cfg.intermediate_size}, a vocabulary of {cfg.vocab_size:,} tokens and "
            f"RoPE with θ = {cfg.rope_parameters['rope_theta']:g}. The embedding of the prompt is "
            f"{tuple(x.shape)}: no position vector is added (positions enter inside attention, by rotation).\n\n"
            "Recomputed by hand (RMSNorm, `LlamaAttentionFromScratch`, residual, RMSNorm, MLP, residual) and "
            "compared with the model's own tensors, largest absolute difference:\n\n"
            + markdown_table(("tensor", "max abs diff"), rows, "lr"))
    return text, out


def head_md(model: Any, ids: Any, out: Any) -> str:
    import torch

    captured = {}

    def keep(module: Any, args: Any, output: Any) -> None:
        captured["h"] = output[0] if isinstance(output, tuple) else output

    hook = model.model.layers[-1].register_forward_hook(keep)
    with torch.no_grad():
        model(ids)
        hook.remove()
        normed = model.model.norm(captured["h"])
        logits = normed @ model.model.embed_tokens.weight.T             # the LM head is tied to the embeddings
    rows = [("last layer output", tuple(captured["h"].shape)), ("after the final RMSNorm", tuple(normed.shape)),
            ("logits = normed · Eᵀ", tuple(logits.shape))]
    return ("After the last layer, one RMSNorm, then the LM head: its weight *is* the embedding matrix E "
            f"(`tie_word_embeddings: {model.config.tie_word_embeddings}`), so a logit is the dot product of the "
            "final vector with a token's embedding. Every position gets a row of logits (position t predicts "
            "token t + 1, which is how a decoder trains on all positions at once); generation reads the last one.\n\n"
            + markdown_table(("step", "shape"), rows, "ll")
            + f"\nMax abs diff from the model's `logits`: {(logits - out.logits).abs().max():.1e}.\n")


def next_token_md(tok: Any, out: Any) -> str:
    logits = out.logits[0, -1]
    probs = logits.softmax(-1)
    top = probs.topk(TOP)
    rows = [(rank + 1, _token(tok, int(i)), int(i), f"{logits[i]:.2f}", f"{p:.3f}")
            for rank, (p, i) in enumerate(zip(top.values.tolist(), top.indices.tolist(), strict=True))]
    return (f"The softmax of the last row of logits, over all {logits.numel():,} tokens: the {TOP} most likely "
            f"next tokens after `{PROMPT!r}` (they hold {top.values.sum():.1%} of the probability):\n\n"
            + markdown_table(("rank", "token", "id", "logit", "probability"), rows, "rlrrr"))


def nucleus_size(logits: Any, temperature: float, top_p: float) -> int:
    """How many tokens top-p sampling keeps at this step: the smallest set with probability >= top_p."""
    import torch

    p = torch.sort((logits / temperature).softmax(-1), descending=True).values
    return int((p.cumsum(-1) < top_p).sum()) + 1


def sampling_md(tok: Any, model: Any, ids: Any, out: Any) -> str:
    import torch

    rows = []
    for s in SAMPLING:
        kw = {k: v for k, v in s.items() if k != "name"}
        for seed in SEEDS if s["do_sample"] else (None,):
            if seed is not None:
                torch.manual_seed(seed)
            extra = {"top_k": 0} if s["do_sample"] else {}
            with torch.no_grad():
                gen = model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=NEW_TOKENS,
                                     pad_token_id=tok.eos_token_id, **kw, **extra)
            text = tok.decode(gen[0, ids.shape[1]:], skip_special_tokens=True).replace("\n", "⏎").replace("|", "\\|")
            rows.append((s["name"], "—" if seed is None else seed, f"`{text}`"))
    logits = out.logits[0, -1]
    sizes = [(t, p, nucleus_size(logits, t, p)) for t, p in ((1.0, 0.9), (0.7, 0.9), (1.0, 0.5))]
    return (f"{NEW_TOKENS} new tokens after the prompt, with `model.generate` (`top_k=0`, so only temperature and "
            "top-p shape the distribution; `torch.manual_seed(seed)` before each sampled run):\n\n"
            + markdown_table(("decoding", "seed", "continuation"), rows, "lrl")
            + "\nHow many tokens the nucleus keeps at the first step: "
            + "; ".join(f"temperature {t:g}, top-p {p:g}: **{n}**" for t, p, n in sizes) + ".\n")


def kv_md(tok: Any, model: Any, ids: Any) -> str:
    import torch

    with torch.no_grad():
        cache = model(ids, use_cache=True).cache
    k = cache.layers[0].keys
    cfg = model.config
    per_token = 2 * cfg.num_hidden_layers * cfg.num_key_value_heads * cfg.head_dim * k.element_size()
    return (f"After the {ids.shape[1]}-token prompt the cache holds, for each of the {cfg.num_hidden_layers} layers, "
            f"the keys and the values of every token so far: `keys` {tuple(k.shape)} and `values` "
            f"{tuple(cache.layers[0].values.shape)} (batch, key/value heads, tokens, head dim). That is 2 × "
            f"{cfg.num_hidden_layers} × {cfg.num_key_value_heads} × {cfg.head_dim} × {k.element_size()} bytes = "
            f"**{per_token / 1024:.0f} KiB per token** in fp32 (with 9 key/value heads instead of "
            f"{cfg.num_key_value_heads}, three times as much: what grouped-query attention saves). Queries are not "
            "cached: only the newest token asks a question.\n")


def kv_timing_md(tok: Any, model: Any, ids: Any) -> str:
    import torch

    rows = []
    for use_cache in (True, False):
        best = float("inf")
        for _ in range(2):
            t0 = time.perf_counter()
            with torch.no_grad():
                model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=KV_NEW_TOKENS,
                               min_new_tokens=KV_NEW_TOKENS, do_sample=False, use_cache=use_cache,
                               pad_token_id=tok.eos_token_id)
            best = min(best, time.perf_counter() - t0)
        rows.append(("with the KV cache" if use_cache else "without (recompute the prefix)",
                     f"{1000 * best / KV_NEW_TOKENS:.1f}"))
    return (banner(SCRIPT) + f"\nGreedy, {KV_NEW_TOKENS} new tokens after the {ids.shape[1]}-token prompt, best of 2, "
            f"{torch.get_num_threads()} CPU thread(s) (machine-dependent; rerun the script on yours):\n\n"
            + markdown_table(("generation", "ms per token"), rows, "lr"))


def contrast_md(model: Any, tok: Any) -> str:
    import torch

    enc_tok, encoder = _quiet_load("encoder", "minilm-l6")
    a, b = "the movie was [MASK] good", "the movie was [MASK] bad"
    with torch.no_grad():
        ea, eb = (encoder(**enc_tok(t, return_tensors="pt")).last_hidden_state[0] for t in (a, b))
        mask_pos = enc_tok(a)["input_ids"].index(enc_tok.mask_token_id)
        da, db = (model(tok(t.replace("[MASK]", "not"), return_tensors="pt")["input_ids"]).logits[0]
                  for t in (a, b))
        n_prefix = len(tok("the movie was not")["input_ids"])
    enc_diff = (ea[mask_pos] - eb[mask_pos]).abs().max()
    dec_diff = (da[:n_prefix] - db[:n_prefix]).abs().max()
    rows = [("minilm-l6 (encoder, bidirectional)", f"`{a}` vs `{b}`", "the `[MASK]` vector", f"{enc_diff:.3f}"),
            ("smollm2 (decoder, causal)", "`…not good` vs `…not bad`", f"logits of the first {n_prefix} tokens",
             f"{dec_diff:.1e}")]
    return banner(SCRIPT) + ("\nChange only the last word and compare what the models computed *before* it:\n\n"
                             + markdown_table(("model", "inputs", "compared", "max abs diff"), rows, "lllr"))


def render() -> dict[Path, str]:
    import torch

    torch.manual_seed(0)
    tok, model = _quiet_load("causal", "smollm2")
    ids = tok(PROMPT, return_tensors="pt")["input_ids"]
    layer, out = layer_md(model, ids)
    parts = {"tokens": tokens_md(tok, ids[0]), "layer": layer, "head": head_md(model, ids, out),
             "next": next_token_md(tok, out), "sampling": sampling_md(tok, model, ids, out),
             "kv": kv_md(tok, model, ids)}
    outputs = {GEN / f"decoder_{k}.md": banner(SCRIPT) + "\n" + v for k, v in parts.items()}
    outputs[GEN / "decoder_contrast.md"] = contrast_md(model, tok)
    return outputs


def timing() -> list[Path]:
    from attnlab.io import write_text_atomic

    tok, model = _quiet_load("causal", "smollm2")
    ids = tok(PROMPT, return_tensors="pt")["input_ids"]
    write_text_atomic(TIMING_MD, kv_timing_md(tok, model, ids))
    return [TIMING_MD]


def main(argv: list[str] | None = None) -> int:
    return run_main(SCRIPT, render, figures=timing, figure_paths=[TIMING_MD], argv=argv,
                    description=__doc__.splitlines()[0])


if __name__ == "__main__":
    raise SystemExit(main())
