"""``evaluate_run``: score a finished run on any labelled data."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

from attnlab.data import load_eval_split
from attnlab.evaluation.metrics import classification_metrics
from attnlab.inference.predictor import Predictor


def evaluate_run(run_dir: str | Path, data: str, *, split: str | None = None, data_dir: str | None = None,
                 text_column: str | None = None, label_column: str | None = None,
                 max_samples: int | None = None, batch_size: int = 32) -> dict[str, Any]:
    predictor = Predictor.from_run(run_dir, batch_size=batch_size)
    ds = load_eval_split(data, predictor.labels, split=split, data_dir=data_dir, text_column=text_column,
                         label_column=label_column, max_samples=max_samples)
    start = time.perf_counter()
    probs = predictor.predict_proba(ds["text"])
    seconds = time.perf_counter() - start
    metrics = classification_metrics(np.asarray(ds["label"]), probs.argmax(-1), predictor.labels)
    metrics.update({"run": str(run_dir), "data": data, "split": split or ("all" if Path(data).is_file() else "test"),
                    "sentences_per_second": len(ds) / seconds if seconds else None})
    return metrics
