"""Which sentence vector the classifier reads: pooler vs [CLS] vs mean, per method.

Trains each (method, pooling) pair on the quickstart's data and budget (movie snippets, minilm-l6,
``attnlab quickstart``'s settings) and reports validation and test accuracy. Rows are added to
``benchmarks/results/pooling.<cpu-kind>.json`` one at a time and a pair already there is skipped,
so a long sweep can be cut off and resumed; ``--redo`` retrains the pairs named.

    python benchmarks/pooling.py --methods head --poolings pooler,cls,mean
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

from _common import RESULTS, write_results

from attnlab.evaluation.tables import column_table

COLUMNS = [("method", "method", ""), ("pooling", "pooling", ""), ("validation_accuracy", "val acc", ".4f"),
           ("test_accuracy", "test acc", ".4f"), ("train_seconds", "train s", ".0f"), ("precision", "precision", "")]


def train_row(method: str, pooling: str, runs: Path, num_threads: int | None) -> dict:
    from attnlab.cli import QUICKSTART, QUICKSTART_LEARNING_RATES
    from attnlab.training import TrainConfig
    from attnlab.training.train import train

    cfg = TrainConfig.from_sources(None, **(QUICKSTART | {"pooling": pooling}), method=method,
                                   learning_rate=QUICKSTART_LEARNING_RATES.get(method), num_threads=num_threads,
                                   output_dir=str(runs / f"{method}-{pooling}"))
    m = train(cfg, overwrite=True, progress=False).metrics
    return {"method": method, "pooling": pooling, "validation_accuracy": m["validation"]["accuracy"],
            "test_accuracy": m["test"]["accuracy"], "train_seconds": m["training"]["wall_seconds"],
            "precision": m["training"].get("precision")}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--methods", default="head,lora,full")
    p.add_argument("--poolings", default="pooler,cls,mean")
    p.add_argument("--redo", action="store_true", help="retrain pairs already in the results")
    p.add_argument("--num-threads", type=int, help="torch threads (default: all cores); accuracy does not depend on it")
    a = p.parse_args(argv)
    from attnlab import runtime
    from attnlab.cli import QUICKSTART

    stem = f"pooling.{runtime.cpu_kind()}"
    path = RESULTS / f"{stem}.json"
    old = json.loads(path.read_text()) if path.is_file() else {}
    rows = old["rows"] if old.get("settings") == QUICKSTART else []  # rows of another recipe are not resumed
    with tempfile.TemporaryDirectory() as tmp:
        for method in a.methods.split(","):
            for pooling in a.poolings.split(","):
                if any(r["method"] == method and r["pooling"] == pooling for r in rows) and not a.redo:
                    continue
                row = train_row(method, pooling, Path(tmp), a.num_threads) | {"num_threads": a.num_threads}
                rows = [r for r in rows if (r["method"], r["pooling"]) != (method, pooling)] + [row]
                write_results("pooling", {"cpu_kind": runtime.cpu_kind(), "settings": QUICKSTART, "rows": rows},
                              file_stem=stem)  # after every row: a cut-off sweep keeps what it finished
    print(column_table(rows, COLUMNS))
    return 0


if __name__ == "__main__":
    sys.exit(main())
