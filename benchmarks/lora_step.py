"""Where a training step's time goes: full fine-tuning against LoRA, phase by phase.

On the same real SST-2 batches (length-grouped, padded per batch, as attnlab trains), it times the
forward pass, the backward pass and the optimizer step of

- **full**: attnlab's full fine-tuning (every weight trained, fused AdamW);
- **lora**: attnlab's LoRA default (PEFT, r 16 on every linear layer, dropout 0, attnlab's fused
  adapter layer: ``training/methods/fused_lora.py``);
- **lora, attention only**: adapters on query/key/value only (fewer thin matrix products);
- **frozen floor**: the whole base frozen and *no adapters*, but the gradient still flowing down to
  the first layer (the embedding output is made to require it), only the head trained. No method
  that adapts the first layer can take less: it is LoRA with free adapters.

- **full / lora, dropout off**: the same with the model's own dropout (hidden and attention, 0.1)
  set to 0: what the random masks cost on this machine (dropout is an accuracy choice; this only
  prices it).
- **lora, PEFT's layer, dropout off**: "lora, dropout off" with PEFT's own LoRA linear layer instead
  of the fused one: what the fusion saves.
- **full / lora, torch's dropout**: the default with torch's own dropout instead of attnlab's
  (``training/fast_dropout.py``: the same masks' distribution from a quarter of the random draws):
  what the cheaper mask saves.

Every variant runs in the precision ``attnlab train`` picks here (bf16 autocast where the CPU has
native bf16, else fp32). ``full / frozen floor`` is the most any adapter method can gain per step on
this machine and model; ``full / lora`` is what PEFT's LoRA gains. Full fine-tuning's achieved FLOP/s
is reported against the GEMM peak of that precision, measured in the same run at 2048^3 and at the
model's shapes (not applicable where the precision is emulated). Writes
``benchmarks/results/lora_step.<cpu-kind>.json`` (one file per machine kind).

    python benchmarks/lora_step.py          # ~3-5 min on 2 quiet cores

Seven rounds (six timed) by default: with two timed rounds (the old default) a variant pair differing
by ~10 % came out in the wrong order on avx512-bf16-amd (the dropout pair read 0.94x; six read 1.11x).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from typing import Any

import _peaks
from _common import DEFAULT_SST2, write_results
from _peaks import non_embedding_params, step_flops

from attnlab.evaluation.tables import column_table

PHASES = ("forward", "backward", "optimizer")


def real_batches(data_dir: str, model_path: str, n: int, batch_size: int, seed: int) -> list[dict[str, Any]]:
    """``n`` batches of SST-2 training rows, each of similar lengths and padded to its longest."""
    import numpy as np
    import torch
    from transformers import AutoTokenizer

    from attnlab.data import load_data

    tok = AutoTokenizer.from_pretrained(model_path)
    texts = load_data("sst2", data_dir=data_dir, seed=seed, max_train_samples=n * batch_size * 4).splits["train"]
    texts = list(texts["text"])
    enc = tok(texts, truncation=True, max_length=128)
    order = np.argsort([len(x) for x in enc["input_ids"]], kind="stable")
    groups = [order[i:i + batch_size] for i in range(0, len(order) - batch_size + 1, batch_size)]
    pick = np.random.default_rng(seed).choice(len(groups), size=min(n, len(groups)), replace=False)
    out = []
    for g in (groups[i] for i in pick):
        b = tok.pad({"input_ids": [enc["input_ids"][i] for i in g]}, return_tensors="pt")
        b["labels"] = torch.randint(0, 2, (len(g),), generator=torch.Generator().manual_seed(int(g[0])))
        out.append(b)
    return out


KINDS = ["full", "lora", "lora, attention only", "frozen floor", "full, dropout off", "lora, dropout off",
         "lora, PEFT's layer, dropout off", "full, torch's dropout", "lora, torch's dropout"]
# what each of attnlab's own speed layers saves: (variant without it, the same with it)
COMPARISONS = {"fused_layer": ("lora, PEFT's layer, dropout off", "lora, dropout off"),
               "fast_dropout_full": ("full, torch's dropout", "full"),
               "fast_dropout_lora": ("lora, torch's dropout", "lora")}


def build(kind: str, model_ref: str):
    """(model in train mode, optimizer) prepared as ``attnlab train`` prepares them."""
    import torch
    from transformers import AutoModelForSequenceClassification

    from attnlab.models import load_pretrained, resolve_model
    from attnlab.training import TrainConfig
    from attnlab.training.build import apply_model_dropout
    from attnlab.training.methods import get_method

    method = "full" if kind.startswith("full") else "head" if kind == "frozen floor" else "lora"
    overrides = {"lora_targets": "query,key,value"} if kind == "lora, attention only" else {}
    no_dropout = {"hidden_dropout_prob": 0.0, "attention_probs_dropout_prob": 0.0} if "dropout off" in kind else {}
    cfg = TrainConfig.from_sources(None, model=model_ref, method=method, fast_dropout="torch's dropout" not in kind,
                                   **overrides)
    model = load_pretrained(AutoModelForSequenceClassification.from_pretrained, resolve_model(model_ref),
                            num_labels=2, dtype=torch.float32, **no_dropout)
    apply_model_dropout(model, cfg, torch.device("cpu"))  # as attnlab train does on a CPU
    if "PEFT's layer" in kind:  # PEFT's own LoRA linear instead of attnlab's fused one
        from attnlab.training.methods.lora import prepare as lora_prepare

        model = lora_prepare(model, cfg, fused=False).train()
    else:
        model = get_method(method).prepare(model, cfg).train()
    if kind == "frozen floor":  # the gradient flows through every frozen layer, as it must for LoRA
        model.get_input_embeddings().register_forward_hook(lambda m, i, o: o.requires_grad_(True))
    params = [p for p in model.parameters() if p.requires_grad]
    return model, torch.optim.AdamW(params, lr=1e-5, fused=True), sum(p.numel() for p in params)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data-dir", default=DEFAULT_SST2)
    p.add_argument("--model", default="minilm-l6")
    p.add_argument("--batches", type=int, default=16, help="distinct real batches")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--rounds", type=int, default=7, help="passes over the batches (the first is warm-up)")
    p.add_argument("--seed", type=int, default=42)
    a = p.parse_args()
    import torch
    from transformers.utils import logging as hf_logging

    from attnlab import runtime
    from attnlab.models import resolve_model

    hf_logging.set_verbosity_error()
    threads = runtime.set_num_threads(None)
    precision = runtime.resolve_precision("auto")
    torch.manual_seed(a.seed)
    batches = real_batches(a.data_dir, resolve_model(a.model).path, a.batches, a.batch_size, a.seed)
    kinds = KINDS
    built = {k: build(k, a.model) for k in kinds}
    cfg = built["full"][0].config
    peak = _peaks.peaks(precision, cfg.hidden_size, cfg.intermediate_size)
    _peaks.print_peaks(peak, threads)
    other = "fp32" if precision == "bf16" else "bf16"  # what the precision rule chose against
    other_peak = _peaks.peaks(other, cfg.hidden_size, cfg.intermediate_size) if _peaks.native(other) else None
    if other_peak:
        _peaks.print_peaks(other_peak, threads)
    times: dict[str, dict[str, list[float]]] = {k: {ph: [] for ph in PHASES} for k in kinds}
    for r in range(a.rounds):
        for k in kinds if r % 2 == 0 else kinds[::-1]:  # interleaved: load changes hit every variant alike
            model, opt, _ = built[k]
            for b in batches:
                t0 = time.perf_counter()
                with runtime.autocast(precision):
                    loss = model(**b).loss
                t1 = time.perf_counter()
                loss.backward()
                t2 = time.perf_counter()
                opt.step()
                opt.zero_grad(set_to_none=True)
                t3 = time.perf_counter()
                if r > 0:
                    for ph, dt in zip(PHASES, (t1 - t0, t2 - t1, t3 - t2), strict=True):
                        times[k][ph].append(dt)
        print(f"  round {r + 1}/{a.rounds} done", flush=True)

    rows = []
    for k in kinds:
        ms = {ph: 1000 * statistics.fmean(times[k][ph]) for ph in PHASES}
        rows.append({"name": k, **{f"{ph}_ms": v for ph, v in ms.items()}, "step_ms": sum(ms.values()),
                     "trainable_params": built[k][2]})
    full = rows[0]["step_ms"]
    for r in rows:
        r["speedup_vs_full"] = full / r["step_ms"]
    shapes = [(0, b["input_ids"].numel(), *b["input_ids"].shape) for b in batches]
    dense = 6.0 * non_embedding_params(built["full"][0])  # forward + both gradients of every weight
    full_flops = step_flops(shapes, dense, cfg.num_hidden_layers, cfg.hidden_size) / len(batches)
    achieved = full_flops / (full / 1000)
    print(column_table(rows, [("name", "variant", ""), ("forward_ms", "forward ms", ".1f"),
                              ("backward_ms", "backward ms", ".1f"), ("optimizer_ms", "optimizer ms", ".1f"),
                              ("step_ms", "step ms", ".1f"), ("speedup_vs_full", "vs full", ".2f"),
                              ("trainable_params", "trainable", ",")]))
    by = {r["name"]: r for r in rows}
    lengths = [int(b["input_ids"].shape[1]) for b in batches]
    gains = {key: {"without": off, "with": on, "step_speedup": by[off]["step_ms"] / by[on]["step_ms"]}
             for key, (off, on) in COMPARISONS.items()}
    path = write_results("lora_step", {
        "settings": {"model": a.model, "batches": len(batches), "batch_size": a.batch_size,
                     "padded_lengths": lengths, "rounds": a.rounds, "timed_rounds": a.rounds - 1,
                     "threads": threads, "seed": a.seed, "precision": precision,
                     "statistic": "mean ms per batch over the timed rounds; variants interleaved, order reversed "
                     "every round; models in train mode (dropout on unless the variant says off)"},
        "cpu_kind": runtime.cpu_kind(),
        "gemm_peak": peak,
        "gemm_peak_other_precision": other_peak,
        "full_flops_per_step": full_flops,
        "full_achieved_flops_per_second": achieved,
        "full_share_of_peak": _peaks.share_of_peak(achieved, peak),
        "lora_step_speedup_vs_full": by["lora"]["speedup_vs_full"],
        "frozen_floor_speedup_vs_full": by["frozen floor"]["speedup_vs_full"],
        "lora_adapter_cost_ms": by["lora"]["step_ms"] - by["frozen floor"]["step_ms"],
        "speed_layers": gains,
        "variants": rows,
    }, file_stem=f"lora_step.{runtime.cpu_kind()}")
    print(f"LoRA step {by['lora']['speedup_vs_full']:.2f}x faster than full; no adapter method that reaches the "
          f"first layer can be more than {by['frozen floor']['speedup_vs_full']:.2f}x faster here "
          f"(adapters cost {by['lora']['step_ms'] - by['frozen floor']['step_ms']:.0f} ms per step)")
    for key, g in gains.items():
        print(f"{key}: {g['with']!r} {g['step_speedup']:.2f}x faster per step than {g['without']!r}")
    share = _peaks.share_of_peak(achieved, peak)["of_model_shape_peak"]
    print(f"full fine-tuning: {achieved / 1e9:.1f} GFLOP/s in {precision}, "
          + (f"{share:.0%} of the {precision} peak at the model's shapes" if share is not None
             else f"share of the {precision} peak not applicable ({precision} is emulated here)"))
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
