"""Render the speed measurements into snippets for docs/speed.md, from the benchmark JSON only.

Reads ``benchmarks/results/train_speed.json``, ``train_ablation.json`` and ``infer_speed.json``
(written by ``benchmarks/train_speed.py`` and ``benchmarks/infer_speed.py``) and writes

* ``docs/gen/speed_train.md``     tutorial recipe vs attnlab full vs attnlab LoRA
* ``docs/gen/speed_ablation.md``  each training speed choice, one setting changed at a time
* ``docs/gen/speed_lora_step.md`` full vs LoRA vs the frozen floor, phase by phase (``lora_step.json``)
* ``docs/gen/speed_infer.md``     Predictor settings vs ``transformers.pipeline``, and latency

A result that does not exist yet renders as a note naming the command that produces it.

    python docs/gen/speed.py            # write
    python docs/gen/speed.py --check    # exit 1 if out of date
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from _docgen import GEN, banner, load_result, measured_on, not_measured, run_main

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
             fmt(r["mfu_fp32"], ".0%")) for r in res["runs"]]
    peaks = res["gemm_peaks"]
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
                        "s to target", "GFLOP/s", "of fp32 GEMM peak"], rows, "lrrrrrrrrr"),
        "- **Time to accuracy:** attnlab full fine-tuning reaches the target "
        + (f"**{tta:.2f}x** sooner than the tutorial recipe" if tta else "**not at all** within its epochs")
        + "; attnlab LoRA " + (f"{tta_lora:.2f}x sooner." if tta_lora else "not within its epochs."),
        f"- **LoRA vs full:** LoRA's epoch is **{lora:.2f}x** as fast as full fine-tuning's at the same batches; "
        f"validation accuracy differs by {100 * res['lora_accuracy_delta_vs_full']:+.1f} points.",
        f"- **GEMM peaks measured in the same run:** fp32 {peaks['fp32']['flops_per_second'] / 1e9:.3g} GFLOP/s, "
        f"bf16 {peaks['bf16']['flops_per_second'] / 1e9:.3g} GFLOP/s. attnlab full reaches "
        f"{res['mfu_fp32']:.0%} of the fp32 peak"
        + (f" ({res['mfu_bf16']:.0f}x the bf16 peak: bf16 is emulated on this CPU)." if res["mfu_bf16"] > 1
           else f" and {res['mfu_bf16']:.0%} of the bf16 peak."),
        "",
    ]
    return "\n".join(lines)


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


def render_targets(train: dict[str, Any] | None, infer: dict[str, Any] | None) -> str:
    """The project's speed targets against the latest measurements, one row each."""
    rows = []
    if train:
        tta, lora = train.get("time_to_accuracy_speedup_vs_tutorial"), train["lora_epoch_speedup"]
        delta = train["lora_accuracy_delta_vs_full"]
        rows += [
            ("attnlab full reaches the tutorial's final validation accuracy (-0.5 point) at least 5x sooner",
             f"{tta:.2f}x" if tta else "target not reached within the epochs", _verdict(bool(tta and tta >= 5))),
            ("LoRA epoch at least 1.5x faster than full, validation accuracy within 1 point",
             f"{lora:.2f}x, {100 * delta:+.2f} points", _verdict(lora >= 1.5 and abs(delta) <= 0.01)),
            ("training reaches at least 50% of the bf16 GEMM peak measured in the same run",
             f"{train['mfu_bf16']:.0%} (fp32: {train['mfu_fp32']:.0%} of the fp32 peak)",
             _verdict(train["mfu_bf16"] >= 0.5)),
        ]
    if infer:
        sp, ag = infer["throughput_speedup_vs_pipeline"], infer["prediction_agreement"]
        p50 = infer["latency_p50_ms"]
        rows += [
            ("batch inference at least 4x the fp32 pipeline, at least 99.5% identical predictions",
             f"{sp:.2f}x, {ag:.2%} identical", _verdict(sp >= 4 and ag >= 0.995)),
            ("one sentence p50 latency at most 10 ms (minilm-l6)",
             f"{p50:.2f} ms ({infer.get('latency_setting', infer['chosen'])})", _verdict(p50 <= 10)),
        ]
    if not rows:
        return not_measured("python benchmarks/train_speed.py && python benchmarks/infer_speed.py", SCRIPT)
    loads = [r.get("load_average") for r in (train, infer) if r and r.get("load_average")]
    cores = (train or infer or {}).get("hardware", {}).get("cpu_cores", "?")
    note = (f" Load average (1 min) when the results were written: "
            f"{', '.join(f'{x[0]:.1f}' for x in loads)} on {cores} cores." if loads else "")
    return (markdown_table(["target", "measured", ""], rows, "lrl")
            + "\nThe rows come from the JSON of the latest runs (tables below, with machine and date)." + note
            + "\n")


def render() -> dict[Path, str]:
    head = banner(SCRIPT)
    return {TARGETS_MD: head + render_targets(load_result("train_speed"), load_result("infer_speed")),
            TRAIN_MD: head + render_train(load_result("train_speed")),
            ABLATION_MD: head + render_ablation(load_result("train_ablation")),
            LORA_STEP_MD: head + render_lora_step(load_result("lora_step")),
            INFER_MD: head + render_infer(load_result("infer_speed"))}


def main(argv: list[str] | None = None) -> int:
    return run_main(SCRIPT, render, argv=argv, description=__doc__.splitlines()[0])


if __name__ == "__main__":
    sys.exit(main())
