"""Is attention an explanation? ERASER faithfulness of every attribution method on SST-2 dev.

Trains (or reuses) a full and a LoRA minilm-l6 run on a slice of SST-2 train, explains a stratified
subset of SST-2 dev (the ``validation`` split) with every method of ``attnlab.explain.attribution``
and measures each against a random ranking: comprehensiveness and sufficiency at k in
{1, 2, 5, 10, 20, 50} % of tokens, their AOPC, rank agreement, seconds per sentence. Writes
``benchmarks/results/faithfulness.json`` and deletion curves beside the runs. Accuracy, not speed:
it may run on a shared core (the JSON says how it ran)::

    nice -n 19 taskset -c 1 env OMP_NUM_THREADS=1 python benchmarks/faithfulness.py --num-threads 1
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from _common import add_budget_args, sst2_config, write_results

from attnlab.evaluation.tables import column_table

RUN_METHODS = ("lora", "full")  # LoRA, attnlab's default method, first
COLUMNS = [("run", "run", ""), ("method", "method", ""), ("aopc_comprehensiveness", "AOPC comp ↑", ".4f"),
           ("aopc_sufficiency", "AOPC suff ↓", ".4f"), ("seconds_per_sentence", "s/sentence", ".3f")]


def trained_run(method: str, a: argparse.Namespace) -> Path:
    """The run of ``method`` in ``--runs-dir``, trained now unless it already finished."""
    from attnlab.rundir import is_finished_run
    from attnlab.training.train import train

    out = Path(a.runs_dir) / method
    if is_finished_run(out) and not a.retrain:
        return out
    cfg = sst2_config(a.data_dir, method=method, epochs=a.epochs, batch_size=a.batch_size, seed=a.seed,
                      max_train_samples=a.max_train_samples or None, max_eval_samples=a.max_eval_samples or None,
                      precision=a.precision, num_threads=a.num_threads, output_dir=str(out), logging_steps=100)
    return train(cfg, overwrite=True, progress=False).path


def measure(run: Path, a: argparse.Namespace) -> dict:
    from attnlab.data import load_eval_split
    from attnlab.explain import faithfulness, load_classifier, write_faithfulness

    clf = load_classifier(str(run))
    rows = load_eval_split("sst2", clf.labels, split="validation", data_dir=a.data_dir, max_samples=a.limit)
    report = faithfulness(rows["text"], clf, methods=a.methods, gold=[clf.labels[i] for i in rows["label"]],
                          n_steps=a.ig_steps, batch_size=16, seed=a.seed)
    write_faithfulness(report, run / "faithfulness")  # deletion_curves.png beside the run
    return report


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_budget_args(p, "runs/faithfulness", max_train_samples=2000)
    p.set_defaults(max_eval_samples=200)
    p.add_argument("--limit", type=int, default=300, help="SST-2 dev sentences to explain (stratified)")
    p.add_argument("--methods", default="all", help="attribution methods (default: all)")
    p.add_argument("--ig-steps", type=int, default=64)
    p.add_argument("--num-threads", type=int, help="torch threads (default: all cores)")
    p.add_argument("--runs", default=",".join(RUN_METHODS), help="training methods of the runs to measure "
                   "(default: lora,full)")
    p.add_argument("--retrain", action="store_true", help="retrain runs that already finished")
    a = p.parse_args(argv)
    from attnlab import runtime

    runs, table = {}, []
    for method in a.runs.split(","):
        run = trained_run(method, a)
        report = measure(run, a)
        runs[method] = {"run": str(run), "training": {"method": method, "model": "minilm-l6",
                                                      "max_train_samples": a.max_train_samples,
                                                      "epochs": a.epochs}, **report}
        table += [{"run": method, "method": m, **r} for m, r in report["methods"].items()]
        write_results("faithfulness", {  # after every run: a cut-off benchmark keeps what it finished
            "cpu_kind": runtime.cpu_kind(), "num_threads": a.num_threads, "data": "sst2 validation (GLUE dev)",
            "timing_note": "seconds per sentence were measured on one core shared with other work (nice 19): "
                           "they rank the methods' cost, they are not speed benchmarks",
            "runs": runs})
    print(column_table(table, COLUMNS))
    return 0


if __name__ == "__main__":
    sys.exit(main())
