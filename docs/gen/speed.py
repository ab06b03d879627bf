"""Render the speed measurements into snippets for docs/speed.md, from the benchmark JSON only.

Reads ``benchmarks/results/{train_speed,train_ablation,lora_step,infer_speed}.<cpu-kind>.json``
(written by ``benchmarks/train_speed.py``, ``lora_step.py`` and ``infer_speed.py``; one file per
machine kind) and writes, each with one section per machine kind measured, side by side:

* ``docs/gen/speed_train.md``     tutorial recipe vs attnlab full vs attnlab LoRA
* ``docs/gen/speed_ablation.md``  each training speed choice, one setting changed at a time
* ``docs/gen/speed_lora_step.md`` full vs LoRA vs the frozen floor, phase by phase
* ``docs/gen/speed_infer.md``     Predictor settings vs ``transformers.pipeline``, and latency

A result that does not exist yet renders as a note naming the command that produces it.

    python docs/gen/speed.py            # write
    python docs/gen/speed.py --check    # exit 1 if out of date
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from _docgen import GEN, KIND_NAMES, banner, load_by_kind, measured_on, not_measured, run_main

from attnlab.evaluation.tables import format_value as fmt
from attnlab.evaluation.tables import markdown_table

SCRIPT = "docs/gen/speed.py"
TRAIN_MD, ABLATION_MD, INFER_MD = GEN / "speed_train.md", GEN / "speed_ablation.md", GEN / "speed_infer.md"
TARGETS_MD, LORA_STEP_MD = GEN / "speed_targets.md", GEN / "speed_lora_step.md"


def render_train(res: dict[str, Any] | None) -> str:
    if res is None:
        return not_measured("python benchmarks/train_speed.py", SCRIPT)
    s = res["settings"]
    rows = [(r["name"], r["batch_size"], fmt(r["epoch_seconds"], ".1f"), fmt(r["tokens_per_second"], ",.0f"),
             fmt(r["padded_tokens_per_second"], ",.0f"), fmt(r["padding_share"], ".0%"),
             fmt(r["final_validation_accuracy"], ".4f"), fmt(r["time_to_target_seconds"], ".1f"),
             fmt(r["achieved_flops_per_second"] and r["achieved_flops_per_second"] / 1e9, ".1f"),
             r.get("precision", "fp32"), _share_cell(r)) for r in res["runs"]]
    tta, lora = res.get("time_to_accuracy_speedup_vs_tutorial"), res["lora_epoch_speedup"]
    tta_lora = res.get("lora_time_to_accuracy_speedup_vs_tutorial")
    lines = [
        measured_on(res),
        f"SST-2, {s['train_rows']:,} training rows, {s['validation_rows']} validation sentences; epochs: "
        f"tutorial {s['epochs']:g}, attnlab {s.get('attnlab_epochs', s['epochs']):g} (each recipe's own; "
        "time to target counts until a recipe first reaches it); "
        f"evaluated every {s['eval_every_samples']} training samples; threads: {s['threads']}. "
        "Target accuracy: the tutorial's final validation accuracy minus 0.5 point = "
        f"**{res['target_accuracy']:.4f}**. "
        "Times are training only (the clock stops for evaluation and checkpoints).\n",
        markdown_table(["recipe", "batch", "s / epoch", "tokens/s (real)", "tokens/s (padded)", "padding", "val acc",
                        "s to target", "GFLOP/s", "precision", "of its precision's GEMM peak"], rows,
                       "lrrrrrrrrlr"),
        "- **Time to accuracy:** attnlab full fine-tuning reaches the target "
        + (f"**{tta:.2f}x** sooner than the tutorial recipe" if tta else "**not at all** within its epochs")
        + "; attnlab LoRA " + (f"{tta_lora:.2f}x sooner." if tta_lora else "not within its epochs."),
        f"- **LoRA vs full:** LoRA's epoch is **{lora:.2f}x** as fast as full fine-tuning's at the same batches; "
        f"validation accuracy differs by {100 * res['lora_accuracy_delta_vs_full']:+.1f} points.",
        f"- **GEMM peaks measured in the same run:** {_peaks_text(res)}",
        "",
    ]
    return "\n".join(lines)


def _share_cell(row: dict[str, Any]) -> str:
    """A run's achieved FLOP/s over the GEMM peak of its own precision (the model-shape peak where
    measured; older results measured one large square matmul)."""
    if "share_of_model_shape_peak" in row:
        share = row["share_of_model_shape_peak"]
        return "n/a (emulated)" if share is None else fmt(share, ".0%")
    return fmt(row.get("mfu_fp32"), ".0%") + " (fp32, square)" if row.get("mfu_fp32") is not None else "n/a"


def full_share(res: dict[str, Any]) -> tuple[float | None, str, str]:
    """(attnlab full's share of its precision's peak, that precision, which peak) of a train_speed result."""
    if "share_of_peak" in res:
        return res["share_of_peak"]["of_model_shape_peak"], res["precision"], "at the model's shapes"
    return res.get("mfu_fp32"), "fp32", "of a large square matmul"  # results from before the per-precision peak


def _peaks_text(res: dict[str, Any]) -> str:
    peaks = res["gemm_peaks"]
    parts = []
    for name, p in sorted(peaks.items()):
        if "square" in p:
            parts.append(f"{name} {p['square']['flops_per_second'] / 1e9:.3g} GFLOP/s at {p['square']['n']}^3 and "
                         f"{p['model_shapes']['flops_per_second'] / 1e9:.3g} at the model's shapes"
                         + ("" if p["native"] else f" ({name} is emulated here: shares of it are not applicable)"))
        else:  # one square product per dtype (older results)
            parts.append(f"{name} {p['flops_per_second'] / 1e9:.3g} GFLOP/s (n = {p['n']})")
    share, precision, which = full_share(res)
    tail = (f"attnlab full reaches **{share:.0%}** of the {precision} peak {which}." if share is not None
            else f"attnlab full trains in {precision}, which this machine emulates: no share applies.")
    return "; ".join(parts) + ". " + tail


def render_ablation(res: dict[str, Any] | None) -> str:
    if res is None:
        return not_measured("python benchmarks/train_speed.py --ablation", SCRIPT)
    s = res["settings"]
    rows = [(r["name"], r["shows"], fmt(r["mean_step_seconds"], ".3f"),
             "—" if r["shows"] == "reference" else fmt(r["default_speedup"], ".2f", "x"),
             fmt(r.get("first_steps_seconds"), ".1f"), fmt(r.get("tokens_per_second"), ",.0f"))
            for r in res["variants"]]
    lines = [
        measured_on(res),
        f"{s['steps']} training steps per variant on {s['train_rows']:,} SST-2 rows; threads: {s['threads']}; "
        f"{s['statistic']}. *Default is faster by* = the variant's seconds per step / the default's: the gain of "
        "the default's choice (below 1: the variant is faster).\n",
        markdown_table(["variant", "measures the choice of", "s / step", "default is faster by",
                        "first steps (s)", "tokens/s"], rows, "llrrrr"),
    ]
    checks = res.get("lora_checks")
    if checks:
        lines.append(f"Checked on the LoRA model as attnlab prepares it: the embedding output "
                     f"{'requires' if checks['embedding_output_requires_grad'] else 'does not require'} a gradient; "
                     f"{checks['embedding_params_trainable']:,} embedding parameters train; the dropout of its "
                     f"{checks['lora_layers']} adapted layers is "
                     f"{'an identity' if checks['lora_dropout_is_identity'] else 'a real dropout'}.\n")
    if res.get("lora_step_speedup_vs_full"):
        lines.append(f"LoRA's step is **{res['lora_step_speedup_vs_full']:.2f}x** as fast as full fine-tuning's "
                     "on the same batches.\n")
    return "\n".join(lines)


SPEED_LAYERS = {  # lora_step.py's "speed_layers" keys: what each of attnlab's own layers does
    "fused_layer": "attnlab's fused adapter layer (`training/methods/fused_lora.py`: the scale and the add "
                   "inside one `addmm`) against PEFT's own layer, both with dropout off",
    "fast_dropout_full": "attnlab's dropout (`training/fast_dropout.py`: the mask from a quarter of the random "
                         "draws) against torch's, full fine-tuning",
    "fast_dropout_lora": "the same for LoRA",
}


def speed_layer_lines(gains: dict[str, Any], by: dict[str, Any]) -> list[str]:
    return [f"- {SPEED_LAYERS[key]}: {by[g['without']]['step_ms']:.0f} -> {by[g['with']]['step_ms']:.0f} ms per "
            f"step (**{g['step_speedup']:.2f}x**)." for key, g in gains.items() if key in SPEED_LAYERS]


def render_lora_step(res: dict[str, Any] | None) -> str:
    if res is None:
        return not_measured("python benchmarks/lora_step.py", SCRIPT)
    s = res["settings"]
    rows = [(r["name"], fmt(r["forward_ms"], ".0f"), fmt(r["backward_ms"], ".0f"), fmt(r["optimizer_ms"], ".1f"),
             fmt(r["step_ms"], ".0f"), fmt(r["speedup_vs_full"], ".2f", "x"), fmt(r["trainable_params"], ",d"))
            for r in res["variants"]]
    lengths = s["padded_lengths"]
    by = {r["name"]: r for r in res["variants"]}
    full, lora, floor = by["full"], by["lora"], by["frozen floor"]
    lines = [
        measured_on(res),
        f"{s['batches']} real SST-2 training batches of {s['batch_size']} (padded lengths {min(lengths)} to "
        f"{max(lengths)} tokens), threads: {s['threads']}; {s['statistic']}.\n",
        markdown_table(["variant", "forward ms", "backward ms", "optimizer ms", "step ms", "vs full", "trained params"],
                       rows, "lrrrrrr"),
        f"- Freezing the base saves {full['backward_ms'] - floor['backward_ms']:.0f} ms of backward and "
        f"{full['optimizer_ms'] - floor['optimizer_ms']:.0f} ms of optimizer per step; the forward pass is the "
        f"same work, so **no adapter method that adapts the first layer can be more than "
        f"{res['frozen_floor_speedup_vs_full']:.2f}x faster per step** here.",
        f"- PEFT's adapters on every linear layer then add {res['lora_adapter_cost_ms']:.0f} ms per step "
        f"({lora['forward_ms'] - floor['forward_ms']:.0f} forward, {lora['backward_ms'] - floor['backward_ms']:.0f} "
        f"backward), which leaves LoRA **{res['lora_step_speedup_vs_full']:.2f}x** as fast as full fine-tuning; "
        f"adapters on query/key/value only cost "
        f"{by['lora, attention only']['step_ms'] - floor['step_ms']:.0f} ms.",
        *speed_layer_lines(res.get("speed_layers", {}), by),
        f"- For a 1.5x step, adapters could cost at most "
        f"{max(full['step_ms'] / 1.5 - floor['step_ms'], 0.0):.0f} ms per step here "
        f"(full's step / 1.5 - the frozen floor's).",
        "",
    ]
    return "\n".join(lines)


def render_infer(res: dict[str, Any] | None) -> str:
    if res is None:
        return not_measured("python benchmarks/infer_speed.py --run <a finished run>", SCRIPT)
    s = res["settings"]
    rows = [(r["name"], fmt(r["sentences_per_second"], ",.1f"), fmt(r["speedup_vs_pipeline"], ".2f", "x"),
             fmt(r["agreement_vs_pipeline"], ".2%"), fmt(r["accuracy"], ".4f")) for r in res["configurations"]]
    lat = [(r["name"], fmt(r["p50_ms"], ".2f"), fmt(r["p99_ms"], ".2f")) for r in res["latency"]]
    lines = [
        measured_on(res),
        f"{s['sentences']} SST-2 validation sentences, model {s.get('model')} ({s.get('method')} run, merged), "
        f"threads: {s['threads']}; {s['statistic']}.\n",
        markdown_table(["setting", "sentences/s", "vs pipeline", "same prediction as pipeline", "accuracy"], rows,
                       "lrrrr"),
        f"One sentence at a time ({s['latency_sentences']} sentences):\n",
        markdown_table(["setting", "p50 ms", "p99 ms"], lat, "lrr"),
        f"**Fastest setting with at least {s['min_agreement']:.1%} identical predictions:** {res['chosen']}: "
        f"**{res['throughput_speedup_vs_pipeline']:.2f}x** the pipeline's throughput, "
        f"{res['prediction_agreement']:.2%} identical predictions; one sentence p50 "
        f"{res['latency_p50_ms']:.2f} ms, p99 {res['latency_p99_ms']:.2f} ms.\n",
    ]
    return "\n".join(lines)


def _verdict(ok: bool | None) -> str:
    return "not measured" if ok is None else "**met**" if ok else "**not met**"


# the targets, per machine kind where the hardware makes them differ (the speed issue's acceptance list)
LORA_TARGET = {"amx": 1.5}  # LoRA's epoch over full's; 1.4 elsewhere
LORA_TARGET_OTHER = 1.4
SHARE_TARGET = {"amx": ("bf16", 0.30)}  # full training's share of its precision's matmul peak
SHARE_TARGET_OTHER = ("fp32", 0.60)
TTA_TARGET = 10.0
P50_TARGET_MS = {"amx": 5.0}
P50_TARGET_OTHER_MS = 10.0


def _train_targets(kind: str, train: dict[str, Any] | None,
                   step: dict[str, Any] | None) -> list[tuple[str, str, str]]:
    lora_goal = LORA_TARGET.get(kind, LORA_TARGET_OTHER)
    share_precision, share_goal = SHARE_TARGET.get(kind, SHARE_TARGET_OTHER)
    names = (f"attnlab full reaches the tutorial's final validation accuracy (-0.5 point) at least "
             f"{TTA_TARGET:g}x sooner",
             f"LoRA epoch at least {lora_goal:g}x faster than full, validation accuracy within 1 point",
             f"full training reaches at least {share_goal:.0%} of the {share_precision} matmul peak")
    if train is None:
        rows = [(n, "not measured on this kind (`python benchmarks/train_speed.py`)", _verdict(None)) for n in names]
        if step:  # the step ratio is the epoch's upper bound, not the target itself
            share = step["full_share_of_peak"]["of_model_shape_peak"]
            p = step["settings"]["precision"]
            rows[1] = (names[1], f"epoch not measured; step on the same batches (`lora_step.py`): "
                       f"{step['lora_step_speedup_vs_full']:.2f}x", _verdict(None))
            rows[2] = (names[2], "epoch not measured; one step (`lora_step.py`): "
                       + (f"{share:.0%} of the {p} peak at the model's shapes" if share is not None
                          else f"{p} emulated"), _verdict(None))
        return rows
    tta, lora = train.get("time_to_accuracy_speedup_vs_tutorial"), train["lora_epoch_speedup"]
    delta = train["lora_accuracy_delta_vs_full"]
    share, precision, which = full_share(train)
    if precision != share_precision or share is None:
        share_cell, share_ok = f"trained in {precision}: the {share_precision} target does not apply", None
    else:
        share_cell, share_ok = f"{share:.0%} ({precision}, peak {which})", share >= share_goal
    return [(names[0], f"{tta:.2f}x" if tta else "target not reached within the epochs",
             _verdict(bool(tta and tta >= TTA_TARGET))),
            (names[1], f"{lora:.2f}x, {100 * delta:+.2f} points", _verdict(lora >= lora_goal and abs(delta) <= 0.01)),
            (names[2], share_cell, _verdict(share_ok))]


def _infer_targets(kind: str, infer: dict[str, Any] | None) -> list[tuple[str, str, str]]:
    goal = P50_TARGET_MS.get(kind, P50_TARGET_OTHER_MS)
    names = ("batch inference at least 4x the fp32 pipeline, at least 99.5% identical predictions",
             f"one sentence p50 latency at most {goal:g} ms (minilm-l6)")
    if infer is None:
        return [(n, "not measured on this kind (`python benchmarks/infer_speed.py`)", _verdict(None)) for n in names]
    sp, ag, p50 = infer["throughput_speedup_vs_pipeline"], infer["prediction_agreement"], infer["latency_p50_ms"]
    return [(names[0], f"{sp:.2f}x, {ag:.2%} identical", _verdict(sp >= 4 and ag >= 0.995)),
            (names[1], f"{p50:.2f} ms ({infer.get('latency_setting', infer['chosen'])})", _verdict(p50 <= goal))]


def render_targets(train: dict[str, dict[str, Any]], infer: dict[str, dict[str, Any]],
                   step: dict[str, dict[str, Any]]) -> str:
    """The speed targets against the latest measurements, one row each, for the two machine kinds of the
    project (AMX and AVX2) and any other kind measured."""
    kinds = [k for k in KIND_NAMES if k in train or k in infer or k in step or k in ("amx", "avx2")]
    rows = []
    for kind in kinds:
        for target, measured, verdict in (_train_targets(kind, train.get(kind), step.get(kind))
                                          + _infer_targets(kind, infer.get(kind))):
            rows.append((target, f"`{kind}`", measured, verdict))
    loads = [f"{kind} {r['load_average'][0]:.1f}" for kind in kinds for r in (train.get(kind), infer.get(kind))
             if r and r.get("load_average")]
    note = f" Load average (1 min) when each result was written: {', '.join(loads)}." if loads else ""
    return (markdown_table(["target", "machine kind", "measured", ""], rows, "lllr")
            + "\nEach row comes from the JSON of the latest run on that machine kind (tables below, with machine "
            "and date); a kind without a run says so." + note + "\n")


def by_kind(render_one, results: dict[str, dict[str, Any]], command: str) -> str:
    """One section per machine kind measured (headed by the kind), or the note naming the command."""
    if not results:
        return render_one(None)
    missing = [k for k in ("amx", "avx2") if k not in results]
    parts = [f"**{KIND_NAMES[kind]}** (`{kind}`)\n\n{render_one(res)}" for kind, res in results.items()]
    if missing:
        parts.append(f"*Not measured yet on {', '.join(f'`{k}`' for k in missing)}: run `{command}` there.*\n")
    return "\n".join(parts)


def render() -> dict[Path, str]:
    head = banner(SCRIPT)
    train, infer, step = load_by_kind("train_speed"), load_by_kind("infer_speed"), load_by_kind("lora_step")
    return {TARGETS_MD: head + render_targets(train, infer, step),
            TRAIN_MD: head + by_kind(render_train, train, "python benchmarks/train_speed.py"),
            ABLATION_MD: head + by_kind(render_ablation, load_by_kind("train_ablation"),
                                        "python benchmarks/train_speed.py --ablation"),
            LORA_STEP_MD: head + by_kind(render_lora_step, step, "python benchmarks/lora_step.py"),
            INFER_MD: head + by_kind(render_infer, infer, "python benchmarks/infer_speed.py")}


def main(argv: list[str] | None = None) -> int:
    return run_main(SCRIPT, render, argv=argv, description=__doc__.splitlines()[0])


if __name__ == "__main__":
    sys.exit(main())
