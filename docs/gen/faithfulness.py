"""Render the faithfulness benchmark into docs/gen/faithfulness_results.md, from the benchmark JSON only.

Reads ``benchmarks/results/faithfulness.json`` (written by ``benchmarks/faithfulness.py``) and writes,
per run (LoRA, attnlab's default method, first), a table of every attribution method against the
random ranking, the verdict (the method with the highest AOPC comprehensiveness, with its margin
over random) and the methods' rank agreement.

    python docs/gen/faithfulness.py            # write
    python docs/gen/faithfulness.py --check    # exit 1 if out of date
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from _docgen import GEN, banner, load_result, measured_on, not_measured, run_main

from attnlab.evaluation.tables import format_value as fmt
from attnlab.evaluation.tables import markdown_table

SCRIPT = "docs/gen/faithfulness.py"
OUT = GEN / "faithfulness_results.md"
RUN_NAMES = {"lora": "LoRA (attnlab's default method)", "full": "full fine-tuning"}


def _table(report: dict[str, Any]) -> str:
    ks = report["ks"]
    rows = [(f"**{m}**" if m == report["most_faithful"] else m, fmt(r["aopc_comprehensiveness"], ".4f"),
             fmt(r["aopc_sufficiency"], ".4f"), *(fmt(r["comprehensiveness"][k], ".3f") for k in ks),
             fmt(r.get("seconds_per_sentence"), ".3f")) for m, r in report["methods"].items()]
    return markdown_table(["method", "AOPC comp ↑", "AOPC suff ↓", *(f"comp@{k}" for k in ks), "s / sentence"],
                          rows, "l" + "r" * (3 + len(ks)))


def _verdict(report: dict[str, Any]) -> str:
    rows, best = report["methods"], report["most_faithful"]
    rand = rows["random"]
    att = rows.get("attention")
    lines = [f"Most faithful: **{best}**, AOPC comprehensiveness **{rows[best]['aopc_comprehensiveness']:.4f}** "
             f"against random's {rand['aopc_comprehensiveness']:.4f} "
             f"(+{rows[best]['aopc_comprehensiveness'] - rand['aopc_comprehensiveness']:.4f}), "
             f"AOPC sufficiency {rows[best]['aopc_sufficiency']:.4f} (random {rand['aopc_sufficiency']:.4f})."]
    worse = [m for m, r in rows.items()
             if m != "random" and r["aopc_comprehensiveness"] <= rand["aopc_comprehensiveness"]]
    if worse:
        lines.append(f"No better than random on comprehensiveness: {', '.join(worse)}.")
    if att is not None and best != "attention":
        lines.append(f"Raw attention: {att['aopc_comprehensiveness']:.4f} comprehensiveness, "
                     f"{att['aopc_sufficiency']:.4f} sufficiency.")
    return " ".join(lines)


def _agreement(report: dict[str, Any]) -> str:
    names = list(report["rank_agreement"])
    rows = [(a, *(fmt(report["rank_agreement"][a][b], "+.2f") for b in names)) for a in names]
    return markdown_table(["Spearman", *names], rows, "l" + "r" * len(names))


def render() -> dict[Path, str]:
    res = load_result("faithfulness")
    if res is None:
        return {OUT: banner(SCRIPT) + not_measured("python benchmarks/faithfulness.py", SCRIPT)}
    parts = [banner(SCRIPT), measured_on(res), f"{res['timing_note']}.\n"]
    for name in sorted(res["runs"], key=lambda n: list(RUN_NAMES).index(n) if n in RUN_NAMES else 99):
        r = res["runs"][name]
        t = r["training"]
        parts += [f"### {RUN_NAMES.get(name, name)}\n",
                  f"minilm-l6, {t['max_train_samples']:,} SST-2 training rows, {t['epochs']:g} epoch; explained: "
                  f"{r['n_sentences']} SST-2 dev sentences ({r['mean_tokens']:.1f} tokens on average), accuracy "
                  f"{r['accuracy']:.3f}; pooling `{r['pooling']}`; Integrated Gradients with {r['n_steps']} steps "
                  f"(largest completeness gap: {r['ig_max_completeness_delta']:.2g}).\n",
                  _table(r), "", _verdict(r) + "\n", "Rank agreement between the methods (mean per sentence):\n",
                  _agreement(r), ""]
    return {OUT: "\n".join(parts)}


def main(argv: list[str] | None = None) -> int:
    return run_main(SCRIPT, render, argv=argv, description=__doc__)


if __name__ == "__main__":
    sys.exit(main())
