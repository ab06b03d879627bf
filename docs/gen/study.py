"""Render the QLoRA measurement, the LoRA sweep and the from-scratch model into docs snippets and plots,
from the benchmark JSON only (no number on those pages is typed by hand).

Reads ``benchmarks/results/qlora.json`` (``benchmarks/qlora.py``), ``sweep.json``
(``benchmarks/sweep.py``), ``sst2_scratch.json`` and ``sst2.json`` (``benchmarks/sst2.py``) and writes

* ``docs/gen/qlora_results.md``    LoRA vs QLoRA: base bytes, peak RSS, time, accuracy, the verdicts
* ``docs/gen/sweep_results.md``    the sweep table, its two plots and what they show (computed)
* ``docs/gen/scratch_results.md``  scratch-encoder against the pretrained minilm-l6 on SST-2
* ``docs/img/study/sweep_accuracy.png``, ``docs/img/study/sweep_epoch_time.png``

A result that does not exist yet renders as a note naming the command that produces it.

    python docs/gen/study.py            # write
    python docs/gen/study.py --check    # exit 1 if out of date
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from _docgen import GEN, IMG, banner, load_result, measured_on, not_measured, run_main, save_figure

from attnlab.evaluation.tables import format_value as fmt
from attnlab.evaluation.tables import markdown_table

SCRIPT = "docs/gen/study.py"
QLORA_MD, SWEEP_MD, SCRATCH_MD = GEN / "qlora_results.md", GEN / "sweep_results.md", GEN / "scratch_results.md"
FIG_DIR = IMG / "study"
ACC_PNG, TIME_PNG = FIG_DIR / "sweep_accuracy.png", FIG_DIR / "sweep_epoch_time.png"
TIE = 0.005  # accuracy differences below half a point are treated as ties in the computed findings


def _pct(value: float | None) -> str:
    return fmt(None if value is None else 100 * value, ".2f")


# -- QLoRA ----------------------------------------------------------------------------------------

def render_qlora(res: dict[str, Any] | None) -> str:
    if res is None:
        return not_measured("python benchmarks/qlora.py", SCRIPT)
    s = res["settings"]
    by = {r["method"]: r for r in res["runs"]}
    lo, q = by["lora"], by["qlora"]

    def both(key: str, spec: str, scale: float = 1.0) -> list[str]:
        return [fmt(None if r.get(key) is None else r[key] * scale if scale != 1 else r[key], spec) for r in (lo, q)]

    rows = [
        ("frozen base weights in memory (MiB)", *both("base_weight_mib", ",.1f")),
        ("peak RSS of the training process (MiB)", *both("peak_rss_mib", ",.0f")),
        ("peak GPU memory (MiB)", *both("peak_gpu_mib", ",.0f")),
        ("seconds per epoch", *both("epoch_seconds", ",.1f")),
        ("validation accuracy (%)", *both("validation_accuracy", ".2f", 100)),
        ("test accuracy (%)", *both("test_accuracy", ".2f", 100)),
        ("trainable parameters", *both("trainable_params", ",")),
        ("device, precision", *(f"{r['device']}, {r['precision']}" for r in (lo, q))),
    ]
    ratio, dval = res["base_bytes_ratio"], res["validation_accuracy_difference"]
    rows_n = s.get("max_train_samples")
    lines = [
        measured_on(res),
        f"{s['model']} on SST-2 ({f'{rows_n:,} stratified training rows' if rows_n else 'the whole training set'}, "
        f"{s['epochs']:g} epochs, batch {s['batch_size']}, LoRA r {s['lora_r']} alpha {s['lora_alpha']}, learning "
        f"rate {s['learning_rate']:g}, seed {s['seed']}; full validation and test sets; {s['process']}).\n",
        markdown_table(["", "lora (fp32 base)", "qlora (NF4 base)"], rows, "lrr"),
        f"- **Memory:** the 4-bit base takes **{ratio:.3f}x** the bytes of the fp32 base "
        f"({'within' if ratio <= 0.3 else 'above'} the 0.3x target). The peak RSS of the whole training process "
        f"is {res['peak_rss_ratio']:.2f}x LoRA's: a process peak also counts the Python runtime and libraries, "
        "the activations, the optimizer state and the bitsandbytes kernels and buffers; on a "
        "model this small those outweigh the weights, so the saving shows in the weights, not in the peak.",
        f"- **Accuracy:** QLoRA - LoRA = **{100 * dval:+.2f} points** on validation "
        f"({'within' if abs(dval) <= 0.02 else 'outside'} the 2-point target), "
        f"{100 * res['test_accuracy_difference']:+.2f} on test.",
    ]
    if res.get("epoch_time_ratio"):
        lines.append(f"- **Time:** a QLoRA epoch takes {res['epoch_time_ratio']:.2f}x as long as a LoRA epoch on "
                     "this machine (each 4-bit layer dequantizes its weights in the forward and backward pass).")
    return "\n".join(lines) + "\n"


# -- sweep ----------------------------------------------------------------------------------------

def _series(rows: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        if r.get("targets"):
            out.setdefault(r["targets"], []).append(r)
    return {t: sorted(v, key=lambda r: r["rank"]) for t, v in out.items()}


def sweep_findings(rows: list[dict[str, Any]]) -> list[str]:
    """Sentences computed from the rows: the knee per target set, the best run, the baselines' gap."""
    series = _series(rows)
    out = []
    best = max(rows, key=lambda r: r["test_accuracy"])
    out.append(f"- **Best test accuracy:** `{best['name']}`, {_pct(best['test_accuracy'])}% with "
               f"{best['trainable_params']:,} trainable parameters ({best['trainable_percent']:.2f}% of the model).")
    for t, rs in series.items():
        top = max(r["test_accuracy"] for r in rs)
        knee = next(r for r in rs if r["test_accuracy"] >= top - TIE)
        out.append(f"- **{t}:** test accuracy from {_pct(rs[0]['test_accuracy'])}% at rank {rs[0]['rank']} to "
                   f"{_pct(rs[-1]['test_accuracy'])}% at rank {rs[-1]['rank']}; the smallest rank within "
                   f"{100 * TIE:.1f} point of the set's best ({_pct(top)}%) is {knee['rank']} "
                   f"({knee['trainable_params']:,} trainable parameters).")
    if len(series) > 1:
        ranks = sorted(set.intersection(*({r["rank"] for r in rs} for rs in series.values())))
        wins: dict[str, int] = {}
        for k in ranks:
            at = {t: next(r for r in rs if r["rank"] == k) for t, rs in series.items()}
            t_best = max(at, key=lambda t: at[t]["test_accuracy"])
            wins[t_best] = wins.get(t_best, 0) + 1
        out.append("- **Which layers:** at equal rank the most accurate target set was "
                   + ", ".join(f"`{t}` at {n} of {len(ranks)} ranks" for t, n in sorted(wins.items(),
                                                                                    key=lambda x: -x[1])) + ".")
    lora = [r for rs in series.values() for r in rs]
    for b in (r for r in rows if not r.get("targets")):
        smallest = min(lora, key=lambda r: r["trainable_params"]) if lora else None
        if smallest:
            gap = 100 * (smallest["test_accuracy"] - b["test_accuracy"])
            out.append(f"- **{b['name']}:** {_pct(b['test_accuracy'])}% with {b['trainable_params']:,} trainable "
                       f"parameters; the smallest LoRA (`{smallest['name']}`, {smallest['trainable_params']:,}) is "
                       f"{gap:+.2f} points from it.")
    times = [r["epoch_seconds"] for r in rows if r.get("epoch_seconds")]
    if lora and times:
        lt = [r["epoch_seconds"] for r in lora if r.get("epoch_seconds")]
        out.append(f"- **Time per epoch:** LoRA runs {min(lt):.0f}-{max(lt):.0f} s whatever the rank "
                   "(every batch still goes forward and backward through the whole frozen model); "
                   + "; ".join(f"{r['name']} {r['epoch_seconds']:.0f} s" for r in rows
                               if not r.get("targets") and r.get("epoch_seconds")) + ".")
    return out


def render_sweep(res: dict[str, Any] | None) -> str:
    if res is None:
        return not_measured("python benchmarks/sweep.py", SCRIPT)
    s, rows = res["settings"], res["runs"]
    table = [(f"`{r['name']}`", r["targets"] or r["method"], r["rank"] or "—", r.get("adapted_modules") or "—",
              f"{r['trainable_params']:,}", fmt(r["trainable_percent"], ".3f"), _pct(r["test_accuracy"]),
              _pct(r["validation_accuracy"]), fmt(r["epoch_seconds"], ".1f")) for r in rows]
    n = s.get("train_rows") or s.get("max_train_samples")
    lines = [
        measured_on(res),
        f"{s['model']} on SST-2: {n:,} stratified training rows, {s['epochs']:g} epoch(s), batch {s['batch_size']}, "
        f"seed {s['seed']}, LoRA alpha = {s['lora_alpha']}; validation {s.get('validation_rows', '?')} and test "
        f"{s.get('test_rows', '?')} rows; {s['selection']}.\n",
        markdown_table(["run", "targets", "rank", "adapted layers", "trainable params", "trainable %", "test acc %",
                        "val acc %", "s / epoch"], table, "llrrrrrrr"),
        "![Test accuracy against trainable parameters](img/study/sweep_accuracy.png)\n",
        "![Seconds per epoch against trainable parameters](img/study/sweep_epoch_time.png)\n",
        "What the numbers say (computed from the table by the generator; differences under "
        f"{100 * TIE:.1f} point are within seed noise at this size):\n",
        *sweep_findings(rows),
    ]
    return "\n".join(lines) + "\n"


def _sweep_plot(rows: list[dict[str, Any]], y: str, ylabel: str, title: str, path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.5, 4))
    for t, rs in _series(rows).items():
        pts = [(r["trainable_params"], r[y] * (100 if "accuracy" in y else 1), r["rank"]) for r in rs if r.get(y)]
        ax.plot([p[0] for p in pts], [p[1] for p in pts], "o-", label=f"{rs[0]['method']}: {t}")
        for x, v, k in pts:
            ax.annotate(f"r={k}", (x, v), fontsize=7, xytext=(3, 3), textcoords="offset points")
    for r, color in zip((r for r in rows if not r.get("targets") and r.get(y)), ("black", "tab:gray", "tab:brown"),
                        strict=False):
        ax.scatter(r["trainable_params"], r[y] * (100 if "accuracy" in y else 1), marker="s", s=45, color=color,
                   label=r["name"])
    ax.set_xscale("log")
    ax.set_xlabel("trainable parameters (log scale)")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return save_figure(fig, path)


def figures() -> list[Path]:
    res = load_result("sweep")
    if res is None:
        return []
    rows = res["runs"]
    return [_sweep_plot(rows, "test_accuracy", "SST-2 test accuracy (%)", "Accuracy vs trainable parameters", ACC_PNG),
            _sweep_plot(rows, "epoch_seconds", "seconds per training epoch", "Training time vs trainable parameters",
                        TIME_PNG)]


# -- scratch vs pretrained ------------------------------------------------------------------------

def render_scratch(res: dict[str, Any] | None, pretrained: dict[str, Any] | None) -> str:
    if res is None:
        return not_measured("python benchmarks/sst2.py --models scratch-encoder --methods full "
                            "--results-name sst2_scratch", SCRIPT)
    s = res["settings"]
    rows = [(r["model"], r["method"], f"{r['trainable_params']:,}", _pct(r["validation_accuracy"]),
             _pct(r["test_accuracy"]), fmt(r["epoch_seconds"], ",.0f"), fmt(r.get("learning_rate"), ".0e"))
            for r in res["runs"]]
    lines = [measured_on(res),
             f"SST-2, {s['train_rows']:,} training rows, {s['epochs']:g} epoch(s), batch {s['batch_size']}, seed "
             f"{s['seed']}; {s['selection']}; validation {s['validation_rows']} and test {s['test_rows']} rows.\n",
             markdown_table(["model", "method", "trainable params", "val acc %", "test acc %", "s / epoch",
                             "learning rate"], rows, "llrrrrr")]
    if pretrained:
        p = pretrained["settings"]
        ref = [(r["model"], r["method"], f"{r['trainable_params']:,}", _pct(r["validation_accuracy"]),
                _pct(r["test_accuracy"]), fmt(r["epoch_seconds"], ",.0f"), fmt(r.get("learning_rate"), ".0e"))
               for r in pretrained["runs"]]
        lines += [f"The pretrained encoder on the same task (`python benchmarks/{pretrained['command']}`, "
                  f"{p['train_rows']:,} training rows, {p['epochs']:g} epoch(s), {pretrained['date']}):\n",
                  markdown_table(["model", "method", "trainable params", "val acc %", "test acc %", "s / epoch",
                                  "learning rate"], ref, "llrrrrr")]
        best_s = max(r["validation_accuracy"] for r in res["runs"])
        best_p = max(r["validation_accuracy"] for r in pretrained["runs"])
        lines.append(f"Pretraining is worth **{100 * (best_p - best_s):.1f} points** of validation accuracy here "
                     "(best pretrained run minus best from-scratch run).\n")
    return "\n".join(lines) + "\n"


def render_scratch_same_budget(models: dict[str, Any] | None) -> str:
    """scratch-encoder next to the pretrained encoders, same split, seed and budget (benchmarks/models.py)."""
    if models is None:
        return not_measured("python benchmarks/models.py", SCRIPT)
    s = models["settings"]
    runs = [r for r in models["rows"] if r.get("method") in ("full", "lora")]
    rows = [(r["model"], r["method"], f"{r['trainable_params']:,}", _pct(r["validation_accuracy"]),
             _pct(r["test_accuracy"]), fmt(r.get("train_wall_seconds"), ",.0f")) for r in runs]
    lines = [measured_on(models),
             f"SST-2, {s['train_rows']:,} stratified training rows, {s['epochs']:g} epoch(s), batch "
             f"{s['batch_size']}, seed {s['seed']}, validation {s['validation_rows']} and test {s['test_rows']} rows; "
             f"learning rate: {s['learning_rate']}; {s['selection'].split(';')[0]}.\n",
             markdown_table(["model", "method", "trainable params", "val acc %", "test acc %", "train s"], rows,
                            "llrrrr")]
    scratch = [r["validation_accuracy"] for r in runs if r["model"] == "scratch-encoder"]
    pre = [r for r in runs if r["model"] != "scratch-encoder"]
    if scratch and pre:
        best = max(pre, key=lambda r: r["validation_accuracy"])
        small = max((r for r in pre if r["model"] == "minilm-l6"), key=lambda r: r["validation_accuracy"],
                    default=None)
        lines.append(f"**scratch-encoder reaches {_pct(max(scratch))}% validation accuracy** on this budget. "
                     + (f"The pretrained minilm-l6, about twice its size, reaches "
                        f"{_pct(small['validation_accuracy'])}% "
                        f"({100 * (small['validation_accuracy'] - max(scratch)):+.1f} points) "
                        if small else "")
                     + f"and the best pretrained run ({best['model']} {best['method']}) "
                     f"{_pct(best['validation_accuracy'])}%: that gap is what pretraining buys when labelled data "
                     "is scarce.\n")
    return "\n".join(lines) + "\n"


def render() -> dict[Path, str]:
    head = banner(SCRIPT)
    return {QLORA_MD: head + render_qlora(load_result("qlora")),
            SWEEP_MD: head + render_sweep(load_result("sweep")),
            SCRATCH_MD: head + render_scratch_same_budget(load_result("models"))
            + ("\n### On the whole training set\n\n" + render_scratch(load_result("sst2_scratch"), load_result("sst2"))
               if load_result("sst2_scratch") else "")}


def main(argv: list[str] | None = None) -> int:
    paths = [ACC_PNG, TIME_PNG] if load_result("sweep") else []
    return run_main(SCRIPT, render, figures=figures, figure_paths=paths, argv=argv, description=__doc__.splitlines()[0])


if __name__ == "__main__":
    sys.exit(main())
