"""``evaluate_run``: score a finished run on any labelled data, with its task's metrics
(classification: accuracy, macro-F1, per class, confusion matrix; regression: MSE, MAE, Pearson,
Spearman; multi-label: micro/macro-F1 and subset accuracy at the run's thresholds)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

from attnlab.data import load_eval_split
from attnlab.inference.predictor import Predictor
from attnlab.inference.tasks import run_task


def evaluate_run(run_dir: str | Path, data: str, *, split: str | None = None, data_dir: str | None = None,
                 text_column: str | None = None, label_column: str | None = None,
                 max_samples: int | None = None, batch_size: int = 32, long_text: str = "truncate",
                 long_text_aggregate: str = "mean", long_text_stride: int | None = None) -> dict[str, Any]:
    """The run's task's metrics on ``data``; ``long_text``...: how texts longer than the run's
    max_length are read (:mod:`attnlab.inference.long_text`; with ``chunk`` the metrics say how many
    texts were read in several windows)."""
    predictor = Predictor.from_run(run_dir, batch_size=batch_size, long_text=long_text,
                                   long_text_aggregate=long_text_aggregate, long_text_stride=long_text_stride)
    task = run_task(predictor.run)
    ds = load_eval_split(data, predictor.labels, split=split, data_dir=data_dir, text_column=text_column,
                         label_column=label_column, max_samples=max_samples, label_kind=task.label_kind)
    start = time.perf_counter()
    outputs, windows = predictor.predict_proba_windows(ds["text"])
    seconds = time.perf_counter() - start
    truth = ds.with_format("numpy")["label"]
    metrics = {"task": task.name} | task.score(np.asarray(truth), outputs, predictor.labels,
                                               getattr(predictor, "thresholds", {}))
    metrics.update({"run": str(run_dir), "data": data, "split": split or ("all" if Path(data).is_file() else "test"),
                    "sentences_per_second": len(ds) / seconds if seconds else None})
    if predictor.long_text.chunks:
        metrics["long_text"] = {"mode": predictor.long_text.mode, "aggregate": predictor.long_text.aggregate,
                                "texts_chunked": int((windows > 1).sum()), "windows": int(windows.sum())}
    return metrics
