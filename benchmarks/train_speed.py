"""Training speed: attnlab's defaults against the transformers tutorial recipe, on one SST-2 slice.

In one run, on the same training rows and the 872 SST-2 validation sentences, it trains

- **tutorial**: the Hugging Face fine-tuning tutorial as written: plain ``Trainer``, fp32,
  ``padding="max_length"`` (128 tokens), Trainer's defaults (batch 8, learning rate 5e-5, random
  batches, no length grouping), for 2 epochs (``--epochs``) as in the tutorial;
- **attnlab full** and **attnlab lora**: ``attnlab.training.train`` with its defaults (batch 32,
  length-grouped batches padded per batch, precision chosen by the hardware, fused AdamW, 3 epochs;
  ``--attnlab-epochs`` changes that);

evaluating every ``--eval-every-samples`` training samples. Evaluation and checkpointing are
excluded from every clock (a callback stops the clock around them), so "time" below is training
time only. It reports steady-state tokens/s (real and padded), seconds per epoch, time to reach
the tutorial's final validation accuracy minus 0.5 point, and achieved FLOP/s as a share of the GEMM
peak of the precision each recipe trains in, measured in the same process at 2048^3 and at the
model's shapes (not applicable where that precision is emulated: bf16 on a CPU without native bf16).
Writes ``benchmarks/results/train_speed.<cpu-kind>.json`` (one file per machine kind).

FLOPs are counted analytically per training step of B sequences padded to T tokens:
full: 6 x non-embedding params x B*T, LoRA: (4 x frozen + 6 x trainable) non-embedding params x B*T
(frozen weights need the input gradient, not their own), plus attention 12 x layers x B x T^2 x hidden.

``--ablation`` instead runs short training runs (``--ablation-steps``, default 40) of attnlab's
full and LoRA defaults with one setting changed at a time, and writes
``benchmarks/results/train_ablation.<cpu-kind>.json``: the measured gain of each speed choice.

    python benchmarks/train_speed.py                      # ~20 min on 2 quiet cores
    python benchmarks/train_speed.py --ablation           # ~10 min on 2 quiet cores
"""

from __future__ import annotations

import argparse
import logging
import math
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import _peaks
import numpy as np
from _common import DEFAULT_SST2, sst2_config, write_results
from _peaks import non_embedding_params, step_flops

from attnlab.evaluation.tables import column_table

TOLERANCE = 0.005  # time to accuracy: reach the tutorial's final accuracy minus this
WARMUP_STEPS = 5  # steps left out of steady-state throughput


# -- measuring -----------------------------------------------------------------------------------

def clock_callback(count_tokens: bool = True):
    """A Trainer callback that times training only: the clock stops during evaluation and saving.

    It records per step the seconds and (through a forward pre-hook on the training model) the
    batch's real tokens, padded tokens, sequences and padded length; and per evaluation the training
    seconds so far and the validation accuracy."""
    from transformers import TrainerCallback

    class Clock(TrainerCallback):
        def __init__(self) -> None:
            self.train_seconds = 0.0
            self.step_seconds: list[float] = []
            self.batches: list[tuple[int, int, int, int]] = []  # (real tokens, padded tokens, B, T)
            self.evals: list[dict[str, Any]] = []
            self.epoch_ends: list[float] = []
            self._t: float | None = None
            self._hooked = False

        def _hook(self, module, args, kwargs):
            if module.training:
                ids, mask = kwargs.get("input_ids"), kwargs.get("attention_mask")
                if ids is not None:
                    real = int(mask.sum()) if mask is not None else ids.numel()
                    self.batches.append((real, ids.numel(), ids.shape[0], ids.shape[1]))

        def on_train_begin(self, args, state, control, model=None, **kw):
            if count_tokens and model is not None and not self._hooked:
                model.register_forward_pre_hook(self._hook, with_kwargs=True)
                self._hooked = True
            self._t = time.perf_counter()

        def on_step_end(self, args, state, control, **kw):
            now = time.perf_counter()
            dt = now - self._t
            self.train_seconds += dt
            self.step_seconds.append(dt)
            self._t = now

        def on_epoch_end(self, args, state, control, **kw):
            self.epoch_ends.append(self.train_seconds)

        def on_evaluate(self, args, state, control, metrics=None, **kw):
            acc = (metrics or {}).get("eval_accuracy")
            self.evals.append({"step": state.global_step, "epoch": state.epoch,
                               "train_seconds": self.train_seconds, "accuracy": acc})
            self._t = time.perf_counter()

        def on_save(self, args, state, control, **kw):
            self._t = time.perf_counter()

    return Clock()


def summarize(name: str, clock, *, batch_size: int, epochs: float, dense_per_token: float, layers: int,
              hidden: int, peaks: dict[str, dict[str, Any]], precision: str,
              final_accuracy: float | None) -> dict[str, Any]:
    steps = clock.step_seconds
    batches = clock.batches[:len(steps)]
    steady = slice(WARMUP_STEPS, None) if len(steps) > 2 * WARMUP_STEPS else slice(0, None)
    sec = sum(steps[steady])
    real = sum(b[0] for b in batches[steady])
    padded = sum(b[1] for b in batches[steady])
    flops = step_flops(batches[steady], dense_per_token, layers, hidden)
    # real tokens only, as if every row were its batch's mean real length
    useful = sum(dense_per_token * r + 12 * layers * r * r / b * hidden for r, _, b, _ in batches[steady])
    ends = clock.epoch_ends
    epoch_seconds = [e - s for s, e in zip([0.0, *ends[:-1]], ends, strict=True)]
    flops_per_s = flops / sec if sec and batches else None
    return {
        "name": name, "batch_size": batch_size, "epochs": epochs, "steps": len(steps),
        "train_seconds": clock.train_seconds,
        "epoch_seconds": statistics.fmean(epoch_seconds) if epoch_seconds else None,
        "epoch_seconds_each": epoch_seconds,
        "mean_step_seconds": sec / len(steps[steady]) if steps[steady] else None,
        "median_step_seconds": statistics.median(steps[steady]) if steps[steady] else None,
        "tokens_per_second": real / sec if sec and batches else None,
        "padded_tokens_per_second": padded / sec if sec and batches else None,
        "padding_share": 1 - real / padded if padded else None,
        "flops_per_token_dense": dense_per_token,
        "achieved_flops_per_second": flops_per_s,
        "useful_flops_per_second": useful / sec if sec and batches else None,
        "precision": precision,
        **{f"share_{k}": v for k, v in _peaks.share_of_peak(flops_per_s, peaks[precision]).items()},
        "final_validation_accuracy": final_accuracy,
        "best_validation_accuracy": max((e["accuracy"] for e in clock.evals if e["accuracy"] is not None),
                                        default=None),
        "evaluations": clock.evals,
    }


def time_to(evals: list[dict[str, Any]], target: float) -> float | None:
    for e in evals:
        if e["accuracy"] is not None and e["accuracy"] >= target - 1e-12:
            return e["train_seconds"]
    return None


# -- the runs -------------------------------------------------------------------------------------

def tutorial_run(data, model_path: str, a: argparse.Namespace, out: Path, clock) -> float:
    """The Hugging Face text-classification tutorial, as written (fp32, padding to 128, Trainer
    defaults); evaluation batches use dynamic padding (same predictions, cheaper: it is not timed)."""
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer, Trainer, TrainingArguments

    tok = AutoTokenizer.from_pretrained(model_path)
    train_ds = data.splits["train"].map(
        lambda b: tok(b["text"], padding="max_length", truncation=True, max_length=a.max_length), batched=True)
    val_ds = data.splits["validation"].map(lambda b: tok(b["text"], truncation=True, max_length=a.max_length),
                                           batched=True)
    model = AutoModelForSequenceClassification.from_pretrained(
        model_path, num_labels=len(data.labels), dtype=torch.float32)

    def accuracy(pred) -> dict[str, float]:
        return {"accuracy": float((np.asarray(pred.predictions).argmax(-1) == pred.label_ids).mean())}

    args = TrainingArguments(
        output_dir=str(out), num_train_epochs=a.epochs, seed=a.seed, report_to="none", save_strategy="no",
        eval_strategy="steps", eval_steps=max(1, round(a.eval_every_samples / 8)), logging_steps=100,
        per_device_eval_batch_size=128, disable_tqdm=True, use_cpu=not torch.cuda.is_available())
    trainer = Trainer(model=model, args=args, train_dataset=train_ds, eval_dataset=val_ds, processing_class=tok,
                      compute_metrics=accuracy, callbacks=[clock])
    trainer.train()
    final = trainer.evaluate()["eval_accuracy"]
    return float(final)


def attnlab_cfg(a: argparse.Namespace, method: str, out: Path, **overrides: Any):
    """attnlab's defaults for ``method`` on the benchmark's slice (its own epochs unless
    ``--attnlab-epochs``); every recipe runs all its epochs (no early stopping)."""
    epochs = {} if a.attnlab_epochs is None else {"epochs": a.attnlab_epochs}  # None is no setting: the default
    return sst2_config(
        a.data_dir, model=a.model, method=method, seed=a.seed,
        max_train_samples=a.train_rows, max_eval_samples=a.eval_rows, max_length=a.max_length,
        output_dir=str(out), logging_steps=100, **epochs, **overrides)


def model_shape(model_path: str) -> dict[str, int]:
    import torch
    from transformers import AutoConfig, AutoModelForSequenceClassification

    cfg = AutoConfig.from_pretrained(model_path)
    model = AutoModelForSequenceClassification.from_pretrained(model_path, num_labels=2, dtype=torch.float32)
    head = sum(p.numel() for n, p in model.named_parameters() if n.split(".")[0] in ("classifier", "score"))
    return {"non_embedding_params": non_embedding_params(model), "head_params": head,
            "layers": cfg.num_hidden_layers, "hidden": cfg.hidden_size, "intermediate": cfg.intermediate_size}


def dense_flops_per_token(method: str, shape: dict[str, int], trainable: int | None) -> float:
    n = shape["non_embedding_params"]
    if method in ("full", "tutorial"):
        return 6.0 * n
    if method == "lora" and trainable is not None:  # frozen base: forward + input gradient; adapters: all three
        return 4.0 * (n - shape["head_params"]) + 6.0 * trainable
    raise ValueError(method)


def main_compare(a: argparse.Namespace) -> int:
    import torch

    from attnlab import runtime
    from attnlab.data import load_data
    from attnlab.models import resolve_model
    from attnlab.training.train import train

    threads = runtime.set_num_threads(None)
    data = load_data("sst2", data_dir=a.data_dir, seed=a.seed, max_train_samples=a.train_rows,
                     max_eval_samples=a.eval_rows)
    model_path = resolve_model(a.model).path
    shape = model_shape(model_path)
    attnlab_precision = runtime.resolve_precision("auto")  # what attnlab's defaults train in here
    peak = {d: _peaks.peaks(d, shape["hidden"], shape["intermediate"]) for d in {"fp32", attnlab_precision}}
    for d in sorted(peak):
        _peaks.print_peaks(peak[d], threads)
    runs_dir = Path(a.runs_dir)
    rows: list[dict[str, Any]] = []

    print(f"tutorial recipe on {len(data.splits['train'])} rows ...", flush=True)
    clock = clock_callback()
    final = tutorial_run(data, model_path, a, runs_dir / "tutorial", clock)
    rows.append(summarize("tutorial (Trainer defaults, padding to max_length)", clock, batch_size=8,
                          epochs=a.epochs, dense_per_token=dense_flops_per_token("tutorial", shape, None),
                          layers=shape["layers"], hidden=shape["hidden"], peaks=peak, precision="fp32",
                          final_accuracy=final)
                | {"method": "full", "recipe": "tutorial", "learning_rate": 5e-5})

    runs = {}
    for method in ("full", "lora"):
        print(f"attnlab {method} ...", flush=True)
        clock = clock_callback()
        cfg = attnlab_cfg(a, method, runs_dir / method,
                          eval_every_steps=max(1, round(a.eval_every_samples / 32)))
        run = train(cfg, data=data, overwrite=True, progress=False, callbacks=[clock])
        runs[method] = run
        m = run.metrics
        rows.append(summarize(f"attnlab {method} (defaults)", clock, batch_size=cfg.batch_size, epochs=cfg.epochs,
                              dense_per_token=dense_flops_per_token(method, shape, m["params"]["trainable"]),
                              layers=shape["layers"], hidden=shape["hidden"], peaks=peak,
                              precision=m["training"]["precision"], final_accuracy=m["validation"]["accuracy"])
                    | {"method": method, "recipe": "attnlab",
                       "learning_rate": m["training"]["learning_rate"],
                       "trainable_params": m["params"]["trainable"], "run_dir": str(run.path)})

    tutorial, full, lora = rows
    target = tutorial["final_validation_accuracy"] - TOLERANCE
    for r in rows:
        r["time_to_target_seconds"] = time_to(r["evaluations"], target)
        t = r["time_to_target_seconds"]
        r["time_to_target_speedup_vs_tutorial"] = (tutorial["time_to_target_seconds"] / t) if t else None
        r["epoch_speedup_vs_tutorial"] = tutorial["epoch_seconds"] / r["epoch_seconds"] if r["epoch_seconds"] else None
    cols = [("name", "recipe", ""), ("epoch_seconds", "s / epoch", ".1f"),
            ("tokens_per_second", "tokens/s (real)", ".0f"), ("padded_tokens_per_second", "tokens/s (padded)", ".0f"),
            ("padding_share", "padding", ".0%"), ("final_validation_accuracy", "val acc", ".4f"),
            ("time_to_target_seconds", "time to target (s)", ".1f"),
            ("time_to_target_speedup_vs_tutorial", "vs tutorial", ".2f"),
            ("achieved_flops_per_second", "FLOP/s", ".3g"), ("precision", "precision", ""),
            ("share_of_model_shape_peak", "of its precision's peak", ".1%")]
    print(column_table(rows, cols))
    print(f"target: tutorial's final validation accuracy {tutorial['final_validation_accuracy']:.4f} - "
          f"{TOLERANCE * 100:.1f} point = {target:.4f}")

    lora_speedup = full["epoch_seconds"] / lora["epoch_seconds"]
    for r in (full, lora):
        tta = r["time_to_target_speedup_vs_tutorial"]
        print(f"{r['name']} reaches the target {tta:.2f}x faster than the tutorial" if tta else
              f"{r['name']} did not reach the target within its epochs")
    print(f"LoRA epoch {lora_speedup:.2f}x faster than full; validation accuracy "
          f"{lora['final_validation_accuracy']:.4f} vs {full['final_validation_accuracy']:.4f}")
    path = write_results("train_speed", {
        "settings": {"model": a.model, "train_rows": len(data.splits["train"]),
                     "validation_rows": len(data.splits["validation"]), "epochs": a.epochs,
                     "attnlab_epochs": full["epochs"], "seed": a.seed,
                     "max_length": a.max_length, "eval_every_samples": a.eval_every_samples, "threads": threads,
                     "target_rule": f"tutorial final validation accuracy - {TOLERANCE}",
                     "clock": "training only: stopped during evaluation and checkpoint saving",
                     "steady_state": f"steps after the first {WARMUP_STEPS}",
                     "flops": "full: 6 N T; lora: (4 N_frozen + 6 N_trainable) T; N = non-embedding params, "
                              "T = padded tokens; plus attention 12 L B T^2 d per step",
                     "model_shape": shape, "device": str(runtime.device()),
                     "cpu_prefers_bf16": runtime.cpu_prefers_bf16(), "torch_threads": torch.get_num_threads()},
        "cpu_kind": runtime.cpu_kind(),
        "gemm_peaks": peak,
        "target_accuracy": target,
        # attnlab full fine-tuning with its defaults vs the tutorial (full fine-tuning as written)
        "time_to_accuracy_speedup_vs_tutorial": full["time_to_target_speedup_vs_tutorial"],
        "lora_time_to_accuracy_speedup_vs_tutorial": lora["time_to_target_speedup_vs_tutorial"],
        "lora_epoch_speedup": lora_speedup,
        "lora_accuracy_delta_vs_full": lora["final_validation_accuracy"] - full["final_validation_accuracy"],
        "epoch_speedup_vs_tutorial": {"full": full["epoch_speedup_vs_tutorial"],
                                      "lora": lora["epoch_speedup_vs_tutorial"]},
        "precision": full["precision"],
        "share_of_peak": {"of_square_peak": full["share_of_square_peak"],
                          "of_model_shape_peak": full["share_of_model_shape_peak"]},
        "share_note": "attnlab full's achieved FLOP/s over the GEMM peak of the precision it trained in, measured in "
                      "this run at 2048^3 and at the model's shapes; None where that precision is emulated",
        "runs": rows,
    }, file_stem=f"train_speed.{runtime.cpu_kind()}")
    print(f"wrote {path}")
    return 0


# -- ablation ------------------------------------------------------------------------------------

def ablation_variants(auto_bf16: bool, with_compile: bool) -> list[tuple[str, str, str, dict[str, Any]]]:
    """(name, method, what it shows, TrainConfig overrides) - each changes one setting of a default."""
    v = [
        ("full: attnlab default", "full", "reference", {}),
        ("full: random batches", "full", "length-grouped batches", {"group_by_length": False}),
        ("full: foreach AdamW", "full", "fused AdamW", {"optim": "adamw_torch"}),
        ("full: 1 thread", "full", "all physical cores", {"num_threads": 1}),
        ("full: pad to multiple of 8", "full", "pad_to_multiple_of 8", {"pad_to_multiple_of": 8}),
        ("full: torch's dropout", "full", "dropout mask from 16-bit random words", {"fast_dropout": False}),
        ("lora: attnlab default", "lora", "reference", {}),
        ("lora: random batches", "lora", "length-grouped batches", {"group_by_length": False}),
        ("lora: dropout 0.1", "lora", "dropout 0 (PEFT skips it: identity)", {"lora_dropout": 0.1}),
        ("lora: attention only (query,key,value)", "lora", "adapters on attention only",
         {"lora_targets": "query,key,value"}),
        ("lora: rank 8", "lora", "rank 16 -> 8", {"lora_r": 8}),
        ("lora: torch's dropout", "lora", "dropout mask from 16-bit random words", {"fast_dropout": False}),
    ]
    v.append(("full: bf16 autocast", "full", "precision by hardware (fp32 here)" if not auto_bf16
              else "precision by hardware (bf16 here)", {"precision": "fp32" if auto_bf16 else "bf16"}))
    if with_compile:
        v += [("full: torch.compile", "full", "torch.compile", {"torch_compile": True, "pad_to_multiple_of": 8}),
              ("lora: torch.compile", "lora", "torch.compile", {"torch_compile": True, "pad_to_multiple_of": 8})]
    return v


def lora_checks(model_ref: str) -> dict[str, Any]:
    """Facts behind "LoRA does no gradient work for the frozen parts", checked on the real model
    prepared exactly as ``attnlab train --method lora`` prepares it."""
    import torch
    from transformers import AutoModelForSequenceClassification

    from attnlab.models import load_pretrained, resolve_model
    from attnlab.training import TrainConfig
    from attnlab.training.methods import get_method

    cfg = TrainConfig.from_sources(None, model=model_ref, method="lora")
    model = load_pretrained(AutoModelForSequenceClassification.from_pretrained, resolve_model(model_ref),
                            num_labels=2, dtype=torch.float32)
    model = get_method("lora").prepare(model, cfg).train()
    ids = torch.tensor([[101, 2023, 2003, 1037, 3231, 102]])
    out = model(input_ids=ids, attention_mask=torch.ones_like(ids), output_hidden_states=True)
    dropouts = [type(d) for m in model.modules() if hasattr(m, "lora_dropout") for d in m.lora_dropout.values()]
    embeddings = [p for m in model.modules() if isinstance(m, torch.nn.Embedding) for p in m.parameters()]
    return {"embedding_output_requires_grad": bool(out.hidden_states[0].requires_grad),
            "embedding_params_trainable": sum(p.numel() for p in embeddings if p.requires_grad),
            "lora_dropout_is_identity": bool(dropouts) and all(d is torch.nn.Identity for d in dropouts),
            "lora_layers": len(dropouts)}


def main_ablation(a: argparse.Namespace) -> int:
    from datasets import DatasetDict

    from attnlab import runtime
    from attnlab.data import TextDataset, load_data
    from attnlab.training.train import train

    threads = runtime.set_num_threads(None)
    data = load_data("sst2", data_dir=a.data_dir, seed=a.seed, max_train_samples=a.train_rows,
                     max_eval_samples=a.eval_rows)
    small = DatasetDict(train=data.splits["train"], validation=data.splits["validation"].select(range(16)),
                        test=data.splits["test"].select(range(16)))  # end-of-run evaluation is not the point here
    data = TextDataset(splits=small, labels=data.labels, name=data.name)
    auto_bf16 = runtime.resolve_precision("auto") == "bf16"
    variants = ablation_variants(auto_bf16, not a.no_compile)
    if a.only:
        keep = [s.strip() for s in a.only.split(",")]
        variants = [v for v in variants if any(k in v[0] for k in keep) or v[2] == "reference"]
    rows = []
    for rep in range(a.ablation_repeats):
        order = variants if rep % 2 == 0 else variants[::-1]
        for name, method, shows, overrides in order:
            slow = overrides.get("precision") == "bf16" and not _peaks.native("bf16")  # emulated: ~100x slower
            steps = 3 if slow else a.ablation_steps
            skip = 1 if slow else WARMUP_STEPS
            clock = clock_callback(count_tokens=not overrides.get("torch_compile"))
            cfg = attnlab_cfg(a, method, Path(a.runs_dir) / "ablation", max_steps=steps, **overrides)
            start = time.perf_counter()
            run = train(cfg, data=data, overwrite=True, progress=False, callbacks=[clock])
            wall = time.perf_counter() - start
            s = clock.step_seconds
            steady = s[skip:] if len(s) > skip else s
            batches = clock.batches[skip:len(s)]
            tok = sum(b[0] for b in batches)
            row = {"name": name, "method": method, "shows": shows, "overrides": overrides, "repeat": rep,
                   "steps": len(s), "mean_step_seconds": statistics.fmean(steady),
                   "median_step_seconds": statistics.median(steady),
                   "first_steps_seconds": sum(s[:skip]), "warmup_steps": skip,
                   "tokens_per_second": tok / sum(steady) if batches else None,
                   "run_wall_seconds": wall, "precision": run.metrics["training"]["precision"]}
            rows.append(row)
            print(f"  {name}: {row['mean_step_seconds']:.3f} s/step (first {WARMUP_STEPS} steps "
                  f"{row['first_steps_seconds']:.1f} s)", flush=True)

    # average the repeats, then each variant's gain = its method's default time / its time
    merged: dict[str, dict[str, Any]] = {}
    for r in rows:
        m = merged.setdefault(r["name"], {k: v for k, v in r.items() if k != "repeat"} | {"_n": 0, "_sum": 0.0})
        m["_n"] += 1
        m["_sum"] += r["mean_step_seconds"]
    out = []
    for m in merged.values():
        m["mean_step_seconds"] = m.pop("_sum") / m.pop("_n")
        out.append(m)
    ref = {r["method"]: r["mean_step_seconds"] for r in out if r["shows"] == "reference"}
    for r in out:
        # >1: the default is faster than this variant by that factor (the gain of the default's choice)
        r["default_speedup"] = r["mean_step_seconds"] / ref[r["method"]]
    print(column_table(out, [("name", "variant", ""), ("mean_step_seconds", "s / step", ".3f"),
                             ("default_speedup", "default is faster by", ".2f"), ("first_steps_seconds",
                             f"first {WARMUP_STEPS} steps (s)", ".1f"), ("tokens_per_second", "tokens/s", ".0f")]))
    lora_vs_full = ref["full"] / ref["lora"] if "full" in ref and "lora" in ref else None
    if lora_vs_full:
        print(f"LoRA step {lora_vs_full:.2f}x faster than full (same batches)")
    path = write_results("train_ablation", {
        "settings": {"model": a.model, "train_rows": len(data.splits["train"]), "steps": a.ablation_steps,
                     "repeats": a.ablation_repeats, "threads": threads, "seed": a.seed,
                     "statistic": f"mean seconds per step after the first {WARMUP_STEPS} (same batches for "
                                  "every variant of a method, except where the batching is the variable)",
                     "device": str(runtime.device()), "auto_bf16": auto_bf16},
        "lora_step_speedup_vs_full": lora_vs_full,
        "cpu_kind": runtime.cpu_kind(),
        "lora_checks": lora_checks(a.model),
        "variants": out,
        "raw": rows,
    }, file_stem=f"train_ablation.{runtime.cpu_kind()}")
    print(f"wrote {path}")
    return 0


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data-dir", default=DEFAULT_SST2)
    p.add_argument("--model", default="minilm-l6")
    p.add_argument("--train-rows", type=int, default=2000, help="stratified SST-2 training rows")
    p.add_argument("--eval-rows", type=int, default=None, help="validation rows (default: all 872); for quick checks")
    p.add_argument("--epochs", type=float, default=2.0, help="epochs of the tutorial recipe (default: 2, as in the "
                   "transformers text-classification tutorial)")
    p.add_argument("--attnlab-epochs", type=float, default=None, help="epochs of attnlab's recipes (default: "
                   "attnlab's default, 3; the time to accuracy counts until the target is first reached)")
    p.add_argument("--max-length", type=int, default=128)
    p.add_argument("--eval-every-samples", type=int, default=400, help="evaluate after this many training samples")
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--runs-dir", default="runs/bench-train-speed")
    p.add_argument("--ablation", action="store_true", help="measure each speed setting instead")
    p.add_argument("--ablation-steps", type=int, default=40)
    p.add_argument("--ablation-repeats", type=int, default=1, help="repeat the variants (alternating order)")
    p.add_argument("--no-compile", action="store_true", help="skip the torch.compile variants (slow to compile)")
    p.add_argument("--only", help="comma-separated substrings: run only matching ablation variants")
    a = p.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    for name in ("epochs", "attnlab_epochs"):
        v = getattr(a, name)
        if v is not None and (not math.isfinite(v) or v <= 0):
            p.error(f"--{name.replace('_', '-')} must be positive")
    return main_ablation(a) if a.ablation else main_compare(a)


if __name__ == "__main__":
    sys.exit(main())
