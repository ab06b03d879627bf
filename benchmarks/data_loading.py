"""Loading big files: ``attnlab data --data FILE --json`` on a synthetic labelled CSV and JSON-lines file.

Writes a file of ``--rows`` movie-review-like rows (random words from a small vocabulary and a row
number, so texts are distinct; one row in 200 repeats an earlier text, so the leakage check has
work to do; three classes) in each ``--formats`` format, then runs the whole command a user runs
(``python -m attnlab.cli data --data FILE --json``: start-up, reading, label encoding, the stratified
splits, the summary with its leakage and coverage checks and the token lengths of 5,000 rows) in a
child process and measures its wall time, CPU time (``os.wait4``) and peak resident memory (VmHWM). The same command
on a 100-row file gives the memory any ``attnlab data`` needs (the interpreter, pandas, Arrow,
transformers, the tokenizer); ``extra_rss_per_file_byte`` is the peak above that, per byte of the file.

Prints a table and writes ``benchmarks/results/data_loading.<cpu-kind>.json``.

    python benchmarks/data_loading.py                       # 2.4 M rows, CSV and JSONL
    nice -n 19 taskset -c 1 python benchmarks/data_loading.py --rows 2400000 --formats csv
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
from _common import write_results

from attnlab.evaluation.tables import column_table

WORDS = ("the a film movie was is great terrible plot actor scene boring lovely warm dull music story ending slow "
         "fast funny sad not very quite script cast director moving tedious").split()
LABELS = ("negative", "neutral", "positive")
WORDS_PER_ROW = 12
DUPLICATE_EVERY = 200  # one row in this many repeats an earlier row's text
MIB = 2**20
COLUMNS = [("format", "format", ""), ("rows", "rows", ","), ("file_mib", "file MiB", ".0f"),
           ("wall_seconds", "wall s", ".1f"), ("cpu_seconds", "CPU s", ".1f"), ("rows_per_second", "rows/s", ",.0f"),
           ("peak_rss_mib", "peak RSS MiB", ".0f"), ("baseline_rss_mib", "baseline MiB", ".0f"),
           ("extra_rss_per_file_byte", "extra RSS / file byte", ".2f")]


def synthetic_frame(rows: int, seed: int = 0) -> pd.DataFrame:
    """``review`` (12 random words and the row number) and ``sentiment`` (one of three) columns."""
    rng = np.random.default_rng(seed)
    words = np.asarray(WORDS, dtype=object)[rng.integers(0, len(WORDS), size=(rows, WORDS_PER_ROW))]
    text = pd.Series(words[:, 0])
    for j in range(1, WORDS_PER_ROW):
        text = text + " " + words[:, j]
    text = text + " " + pd.Series(np.arange(rows)).astype(str)
    dup = np.arange(DUPLICATE_EVERY, rows, DUPLICATE_EVERY)
    text.iloc[dup] = text.iloc[dup - DUPLICATE_EVERY // 2].to_numpy()
    return pd.DataFrame({"review": text, "sentiment": np.asarray(LABELS)[rng.integers(0, len(LABELS), rows)]})


def write_file(df: pd.DataFrame, path: Path) -> Path:
    if path.suffix == ".csv":
        df.to_csv(path, index=False)
    else:
        df.to_json(path, orient="records", lines=True, force_ascii=False)
    return path


def _hwm_bytes(pid: int) -> int:
    """The peak resident memory of process ``pid`` so far (VmHWM), 0 once it is gone."""
    try:
        with open(f"/proc/{pid}/status") as f:
            return next((int(line.split()[1]) * 1024 for line in f if line.startswith("VmHWM:")), 0)
    except OSError:
        return 0


def measure(path: Path) -> dict:
    """Wall and CPU seconds, peak RSS and the summary of ``attnlab data --data PATH --json`` in a child process.

    Peak RSS is the child's VmHWM, read every 20 ms until it exits: the kernel's ``ru_maxrss`` of a child
    also counts the memory of the process that started it (this one holds the whole data frame)."""
    out_path, err_path = path.with_suffix(".out"), path.with_suffix(".err")
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC
    actions = [(os.POSIX_SPAWN_OPEN, 1, str(out_path), flags, 0o644),
               (os.POSIX_SPAWN_OPEN, 2, str(err_path), flags, 0o644)]
    start = time.perf_counter()
    pid = os.posix_spawn(sys.executable, [sys.executable, "-m", "attnlab.cli", "data", "--data", str(path), "--json"],
                         os.environ, file_actions=actions)
    peak = 0
    while True:
        done, status, usage = os.wait4(pid, os.WNOHANG)
        if done:
            break
        peak = max(peak, _hwm_bytes(pid))
        time.sleep(0.02)
    wall = time.perf_counter() - start
    stderr = err_path.read_text()
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"attnlab data {path} failed: {stderr.strip()[-2000:]}")
    return {"wall_seconds": wall, "cpu_seconds": usage.ru_utime + usage.ru_stime, "peak_rss_bytes": peak,
            "summary": json.loads(out_path.read_text()), "stderr_lines": len(stderr.strip().splitlines())}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rows", type=int, default=2_400_000)
    p.add_argument("--formats", default="csv,jsonl", help="comma-separated: csv, jsonl")
    p.add_argument("--note", default="", help="added to the result's notes (e.g. how the machine was shared)")
    a = p.parse_args(argv)
    from attnlab import runtime

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        df = synthetic_frame(a.rows)
        small = write_file(df.head(100), Path(tmp) / "small.csv")
        baseline = measure(small)["peak_rss_bytes"]
        for fmt in a.formats.split(","):
            path = write_file(df, Path(tmp) / f"reviews.{fmt}")
            m = measure(path)
            size = path.stat().st_size
            total = sum(s["rows"] for s in m["summary"]["splits"].values())
            rows.append({"format": fmt, "rows": total, "file_mib": size / MIB, "wall_seconds": m["wall_seconds"],
                         "cpu_seconds": m["cpu_seconds"], "rows_per_second": total / m["wall_seconds"],
                         "peak_rss_mib": m["peak_rss_bytes"] / MIB,
                         "baseline_rss_mib": baseline / MIB,
                         "extra_rss_per_file_byte": (m["peak_rss_bytes"] - baseline) / size,
                         "warnings": [w for w in m["summary"]["warnings"] if w.startswith("leakage")],
                         "stderr_lines": m["stderr_lines"]})
            path.unlink()
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    notes = (f"timed on {cores} core(s) it was allowed; other work on the machine makes wall times approximate "
             "(see load_average; CPU seconds are less affected)" + (f"; {a.note}" if a.note else ""))
    path = write_results("data_loading", {"cpu_kind": runtime.cpu_kind(), "cores": cores, "notes": notes,
                                          "settings": {"rows": a.rows, "formats": a.formats,
                                                       "words_per_row": WORDS_PER_ROW,
                                                       "duplicate_every": DUPLICATE_EVERY},
                                          "rows": rows}, file_stem=f"data_loading.{runtime.cpu_kind()}")
    print(column_table(rows, COLUMNS))
    print(f"\nwritten: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
