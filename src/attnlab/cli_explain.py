"""``attnlab faithfulness``: which explanation of a run to believe, measured on the user's own data
(ERASER comprehensiveness and sufficiency of every attribution method against a random ranking).
Registered with the other commands (``cli.py``) through ``cli_args.command``."""

from __future__ import annotations

import argparse

from attnlab.cli_args import _positive_int, add_data_args, command


def _faithfulness_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("run", help="a finished run directory (or a model folder, e.g. a merged run)")
    add_data_args(p, default="sst2")
    p.add_argument("--split", choices=["train", "validation", "test"], default="validation",
                   help="split of a named data set or folder (default: validation, SST-2's dev set)")
    p.add_argument("--limit", type=_positive_int, default=200, help="sentences to explain, a stratified subset "
                   "(default: 200)")
    p.add_argument("--methods", default="all", help="comma-separated attention, rollout, grad-rollout, ig, "
                   "gradxinput, occlusion (default: all)")
    p.add_argument("--ig-steps", type=_positive_int, default=64, help="Integrated Gradients steps (default: 64)")
    p.add_argument("--batch-size", type=_positive_int, default=16, help="sentences per pass (default: 16)")
    p.add_argument("--seed", type=int, default=0, help="seed of the random baseline (default: 0)")
    p.add_argument("--out", "-o", default="faithfulness-out", help="folder for faithfulness.json and "
                   "deletion_curves.png (default: faithfulness-out)")


@command("faithfulness", _faithfulness_args)
def cmd_faithfulness(a: argparse.Namespace) -> int:
    """Measure how faithful each explanation method is for a run: comprehensiveness, sufficiency, AOPC vs random."""
    from attnlab.data import load_eval_split
    from attnlab.evaluation.tables import column_table
    from attnlab.explain import faithfulness, load_classifier, write_faithfulness
    from attnlab.explain.attribution import parse_methods

    methods = parse_methods(a.methods)
    clf = load_classifier(a.run)
    rows = load_eval_split(a.data, clf.labels, split=a.split, data_dir=a.data_dir, text_column=a.text_column,
                           label_column=a.label_column, max_samples=a.limit if a.limit >= 2 else None)
    rows = rows.select(range(min(a.limit, len(rows))))
    report = faithfulness(rows["text"], clf, methods=methods, gold=[clf.labels[i] for i in rows["label"]],
                          n_steps=a.ig_steps, batch_size=a.batch_size, seed=a.seed)
    report |= {"data": a.data, "split": a.split}
    paths = write_faithfulness(report, a.out)
    table = [{"method": m, **r} for m, r in report["methods"].items()]
    print(column_table(table, [("method", "method", ""), ("aopc_comprehensiveness", "AOPC comp ↑", ".4f"),
                               ("aopc_sufficiency", "AOPC suff ↓", ".4f"),
                               ("seconds_per_sentence", "s/sentence", ".3f")]))
    print(f"\nmost faithful (AOPC comprehensiveness): {report['most_faithful']}  "
          f"({report['n_sentences']} sentences, accuracy {report.get('accuracy', float('nan')):.3f})")
    for name, path in paths.items():
        print(f"{name:<20} {path}")
    return 0
