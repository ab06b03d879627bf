"""Count what each fine-tuning method trains and stores, on the real model, for the Concepts pages.

Loads the model exactly as ``attnlab train`` does (``AutoModelForSequenceClassification``, two
labels, the method's own ``load_kwargs``), applies every registered method's ``prepare``, and counts
parameters with ``attnlab.training.methods.count_params``; the frozen base's bytes in memory come
from ``base_weight_memory`` where the library has it (4-bit weights counted as stored). Writes:

* ``docs/gen/model_facts.md``    the model's shape (layers, width, heads, vocabulary, positions)
* ``docs/gen/param_counts.md``   per method: trainable / total parameters, memory for training, saved size
* ``docs/gen/lora_breakdown.md`` where LoRA's parameters sit, r(d_in + d_out) per layer, and a rank sweep
* ``docs/gen/nf4.md``            NF4's levels, bits per weight, and its error on the model's real weights

    python docs/gen/param_counts.py            # write
    python docs/gen/param_counts.py --check    # exit 1 if out of date
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import sys
import warnings
from collections import Counter
from pathlib import Path
from typing import Any

from _docgen import GEN, banner, run_main

from attnlab.evaluation.tables import markdown_table

SCRIPT = "docs/gen/param_counts.py"
MODEL = "minilm-l6"
NUM_LABELS = 2
FACTS_MD = GEN / "model_facts.md"
COUNTS_MD = GEN / "param_counts.md"
LORA_MD = GEN / "lora_breakdown.md"
NF4_MD = GEN / "nf4.md"
RANKS = (1, 4, 8, 16, 32, 64)
ADAM_BYTES = 8  # two fp32 moments per trainable parameter
GRAD_BYTES = 4  # one fp32 gradient per trainable parameter


def _quiet():
    """Silence transformers' load reports: this script prints only what it wrote."""
    os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")
    warnings.filterwarnings("ignore")
    import transformers

    transformers.logging.set_verbosity_error()
    transformers.logging.disable_progress_bar()
    logging.getLogger("peft").setLevel(logging.ERROR)


def load_prepared(method_name: str, model: str = MODEL, **settings: Any):
    """(prepared model, config) as ``attnlab train`` builds them, before any training."""
    import torch
    from transformers import AutoModelForSequenceClassification

    from attnlab.models import load_pretrained, resolve_model
    from attnlab.training import TrainConfig
    from attnlab.training.methods import get_method

    cfg = TrainConfig.from_sources(None, model=model, method=method_name, **settings)
    method = get_method(method_name)
    torch.manual_seed(cfg.seed)
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        m = load_pretrained(AutoModelForSequenceClassification.from_pretrained, resolve_model(model),
                            num_labels=NUM_LABELS, ignore_mismatched_sizes=True,
                            **({"dtype": torch.float32} | method.load_kwargs(cfg)))
        m = method.prepare(m, cfg)
    return m, cfg


def _mib(n: float) -> str:
    return f"{n / 2**20:,.1f} MiB"


def _base_bytes(model) -> tuple[int, int]:
    """(bytes the frozen base takes in memory, the same weights at fp32)."""
    try:
        from attnlab.training.methods import base_weight_memory
    except ImportError:  # older library: count every non-adapter parameter at its dtype
        total = sum(p.numel() * p.element_size() for n, p in model.named_parameters() if "lora_" not in n)
        return total, total
    mem = base_weight_memory(model)
    return int(mem["base_weight_bytes"]), int(mem["base_weight_fp32_bytes"])


def method_rows(model: str = MODEL) -> list[dict[str, Any]]:
    from attnlab.training.methods import METHODS, count_params

    rows = []
    for name, method in METHODS.items():
        m, _ = load_prepared(name, model)
        trainable, total = count_params(m)
        base, base_fp32 = _base_bytes(m)
        if not method.is_adapter:  # a whole-model method's "base" includes what it trains
            base = base_fp32 = 4 * total
        train_bytes = 4 * trainable if method.is_adapter else 0  # adapters and head live outside the base
        state = (GRAD_BYTES + ADAM_BYTES) * trainable
        saved = 4 * trainable if method.is_adapter else 4 * total
        rows.append({"method": name, "trainable": trainable, "total": total, "base_bytes": base,
                     "base_fp32_bytes": base_fp32, "weights_bytes": base + train_bytes, "state_bytes": state,
                     "saved_bytes": saved, "is_adapter": method.is_adapter})
        del m
    return rows


def render_facts(model: str = MODEL) -> str:
    from transformers import AutoConfig

    from attnlab.models import MODELS, resolve_model

    c = AutoConfig.from_pretrained(resolve_model(model).path)
    heads = c.num_attention_heads
    rows = [("architecture", f"`{(c.architectures or [c.model_type])[0]}` ({c.model_type})"),
            ("layers", c.num_hidden_layers), ("hidden size (d_model)", c.hidden_size),
            ("attention heads", heads), ("head width (d_model / heads)", c.hidden_size // heads),
            ("feed-forward width", getattr(c, "intermediate_size", "n/a")),
            ("vocabulary", f"{c.vocab_size:,}"),
            ("positions", f"{c.max_position_embeddings} ({getattr(c, 'position_embedding_type', 'absolute')}, "
                          "learned)")]
    desc = MODELS[model].description if model in MODELS else model
    return banner(SCRIPT) + f"`{model}`: {desc}\n\n" + markdown_table(["", "value"], rows, "lr")


def render_counts(rows: list[dict[str, Any]], model: str = MODEL) -> str:
    full = next((r for r in rows if r["method"] == "full"), rows[0])
    table = []
    for r in rows:
        table.append((f"`{r['method']}`", f"{r['trainable']:,}", f"{100 * r['trainable'] / r['total']:.2f}%",
                      _mib(r["weights_bytes"]), _mib(r["state_bytes"]),
                      _mib(r["weights_bytes"] + r["state_bytes"]),
                      f"{(full['weights_bytes'] + full['state_bytes']) / (r['weights_bytes'] + r['state_bytes']):.1f}×",
                      _mib(r["saved_bytes"])))
    return banner(SCRIPT) + (
        f"`{model}` with a {NUM_LABELS}-class head, loaded and prepared exactly as `attnlab train` does. "
        "*Weights*: the model in memory (a 4-bit base counted as stored, with its quantization constants; "
        "adapters and head in fp32). *Gradients + Adam*: 4 bytes of gradient and 8 of Adam moments per "
        "trainable parameter. Activations come on top and grow with batch size × sequence length. "
        "*Saved*: what `model/` holds at fp32 (an adapter run saves only the adapter and head).\n\n"
    ) + markdown_table(["method", "trainable", "of total", "weights", "gradients + Adam", "weights + optimiser",
                        "less than full", "saved"], table, "lrrrrrrr")


def _lora_targets(model) -> list[tuple[str, int, int, int]]:
    """(module kind, d_in, d_out, count) of every Linear that carries a LoRA adapter."""
    kinds: Counter = Counter()
    for name, mod in model.named_modules():
        a = getattr(mod, "lora_A", None)
        if a is None or not len(a):
            continue
        base = mod.get_base_layer() if hasattr(mod, "get_base_layer") else mod.base_layer
        kind = ".".join(p for p in name.split(".") if not p.isdigit() and p not in ("base_model", "model"))
        kinds[(kind, base.in_features, base.out_features)] += 1
    return [(k, i, o, n) for (k, i, o), n in kinds.items()]


def render_lora(model: str = MODEL) -> str:
    from attnlab.training.methods import count_params

    m, cfg = load_prepared("lora", model)
    trainable, total = count_params(m)
    targets = _lora_targets(m)
    head = sum(p.numel() for n, p in m.named_parameters() if p.requires_grad and "lora_" not in n)
    r = cfg.lora_r
    rows = [(f"`{k}`", d_in, d_out, n, f"{r * (d_in + d_out):,}", f"{n * r * (d_in + d_out):,}")
            for k, d_in, d_out, n in targets]
    adapters = sum(n * r * (i + o) for _, i, o, n in targets)
    assert adapters + head == trainable, (adapters, head, trainable)
    base = total - trainable
    sweep = []
    for rank in RANKS:
        t = sum(n * rank * (i + o) for _, i, o, n in targets) + head
        sweep.append((rank, f"{t:,}", f"{100 * t / (base + t):.2f}%", _mib(4 * t)))
    return "\n".join([
        banner(SCRIPT),
        f"`{model}`, `--method lora` with the defaults (r = {r}, alpha = {cfg.resolved_lora_alpha}, "
        f"targets: {cfg.lora_targets or 'all-linear'}): an adapter on every linear layer below; "
        "each adds r·(d_in + d_out) parameters.\n",
        markdown_table(["layer", "d_in", "d_out", "count", "LoRA params each", "LoRA params"], rows, "lrrrrr"),
        f"Adapters: {adapters:,}; the classification head (trains in full): {head:,}; "
        f"**trainable: {trainable:,} of {total:,}** ({100 * trainable / total:.2f}%). The frozen base is "
        f"{base:,} parameters.\n",
        "The same targets at other ranks (computed from the table above):\n",
        markdown_table(["r", "trainable", "of total", "adapter + head at fp32"], sweep, "rrrr"),
    ])


def _uniform_int4(w, blocksize: int):
    """Symmetric 4-bit absmax quantization with evenly spaced levels (-7..7), per block: the baseline."""
    import torch

    flat = w.reshape(-1, blocksize)
    scale = flat.abs().amax(-1, keepdim=True).clamp_min(1e-12) / 7
    return (torch.round(flat / scale).clamp(-7, 7) * scale).reshape(w.shape)


def render_nf4(model: str = MODEL) -> str:
    """NF4's 16 levels, its storage cost per weight, and its error on the model's real weights."""
    import bitsandbytes.functional as bf
    import torch
    from torch import nn
    from transformers import AutoModel

    from attnlab.models import load_pretrained, resolve_model

    try:
        from attnlab.models.nf4 import describe

        blocksize = int(describe().get("blocksize", 64))
    except ImportError:
        blocksize = 64
    dq_block, absmax_bits, dq_bits = 256, 32, 8  # bitsandbytes: fp32 absmax; double quant: 8-bit absmax,
    # one fp32 constant per 256 blocks
    levels = bf.get_4bit_type("nf4", device="cpu").tolist()
    plain = 4 + absmax_bits / blocksize
    double = 4 + dq_bits / blocksize + absmax_bits / (blocksize * dq_block)
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        enc = load_pretrained(AutoModel.from_pretrained, resolve_model(model), dtype=torch.float32)
    errors = {"NF4": [0.0, 0.0], "FP4": [0.0, 0.0], "uniform int4": [0.0, 0.0]}
    n = 0
    for name, mod in enc.named_modules():
        if not isinstance(mod, nn.Linear) or "encoder" not in name:
            continue
        w = mod.weight.data
        n += w.numel()
        for kind in errors:
            if kind == "uniform int4":
                deq = _uniform_int4(w, blocksize)
            else:
                q, state = bf.quantize_4bit(w, blocksize=blocksize, quant_type=kind.lower())
                deq = bf.dequantize_4bit(q, state)
            errors[kind][0] += float((deq - w).abs().sum())
            errors[kind][1] += float(w.abs().sum())
    rows = [(kind, f"{100 * e / a:.1f}%") for kind, (e, a) in errors.items()]
    return "\n".join([
        banner(SCRIPT),
        f"The {len(levels)} NF4 levels (bitsandbytes' table; each block of weights is divided by its largest absolute "
        "value, then every weight is stored as the index of the nearest level):\n",
        "```text\n" + "  ".join(f"{v:+.4f}" for v in levels) + "\n```\n",
        f"Storage per weight with blocks of {blocksize}: 4 bits + one fp32 scale per block = {plain:.3f} bits; "
        f"with double quantization (8-bit scales, one fp32 constant per {dq_block} blocks) = {double:.3f} bits, "
        f"against 32 bits in fp32 ({32 / double:.1f}× smaller).\n",
        f"Quantization error on the real weights: every linear layer of `{model}`'s encoder ({n:,} weights), "
        f"blocks of {blocksize}, mean |dequantized − original| / mean |original|:\n",
        markdown_table(["4-bit format", "relative error"], rows, "lr"),
    ])


def render() -> dict[Path, str]:
    _quiet()
    return {FACTS_MD: render_facts(), COUNTS_MD: render_counts(method_rows()), LORA_MD: render_lora(),
            NF4_MD: render_nf4()}


def main(argv: list[str] | None = None) -> int:
    return run_main(SCRIPT, render, argv=argv, description=__doc__.splitlines()[0])


if __name__ == "__main__":
    sys.exit(main())
