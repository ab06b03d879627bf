"""The value every data source produces, and its summary."""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from datasets import DatasetDict

log = logging.getLogger(__name__)

SPLITS = ("train", "validation", "test")
IMBALANCE_RATIO = 4.0  # warn when the largest class is this many times the smallest


@dataclass
class TextDataset:
    """Splits with ``text`` and ``label`` (0..K-1) columns; ``labels[i]`` names class ``i``."""

    splits: DatasetDict
    labels: list[str]
    name: str
    dropped: dict[str, int] = field(default_factory=dict)  # reason -> rows dropped
    notes: list[str] = field(default_factory=list)

    @property
    def label2id(self) -> dict[str, int]:
        return {name: i for i, name in enumerate(self.labels)}

    def summary(self, tokenizer: Any | None = None) -> dict[str, Any]:
        """Rows per split and label, rows dropped and why, imbalance warnings and (with a
        tokenizer) token-length percentiles of the training texts."""
        out: dict[str, Any] = {"dataset": self.name, "labels": self.labels, "splits": {}, "dropped": self.dropped}
        warnings: list[str] = []
        for split in self.splits:
            counts = Counter(self.splits[split]["label"])
            out["splits"][split] = {
                "rows": len(self.splits[split]),
                "per_label": {self.labels[i]: counts.get(i, 0) for i in range(len(self.labels))},
            }
        train_counts = [c for c in out["splits"]["train"]["per_label"].values()]
        if train_counts and min(train_counts) > 0 and max(train_counts) / min(train_counts) >= IMBALANCE_RATIO:
            warnings.append(
                f"heavy class imbalance in train: largest/smallest = {max(train_counts) / min(train_counts):.1f}; "
                "watch macro-F1, not only accuracy"
            )
        if tokenizer is not None:
            texts = self.splits["train"]["text"][:5000]
            lengths = [len(ids) for ids in tokenizer(texts, truncation=False)["input_ids"]]
            out["token_length_percentiles"] = {
                f"p{q}": int(np.percentile(lengths, q)) for q in (50, 90, 95, 99, 100)
            }
            out["token_length_sampled_rows"] = len(texts)
        out["warnings"] = warnings + self.notes
        return out


def format_summary(summary: dict[str, Any]) -> str:
    """Human-readable lines for the CLI."""
    lines = [f"data: {summary['dataset']}  labels: {', '.join(summary['labels'])}"]
    for split, info in summary["splits"].items():
        per = ", ".join(f"{k}={v}" for k, v in info["per_label"].items())
        lines.append(f"  {split:<10} {info['rows']:>7} rows  ({per})")
    for reason, n in summary.get("dropped", {}).items():
        if n:
            lines.append(f"  dropped {n} rows: {reason}")
    if "token_length_percentiles" in summary:
        pct = ", ".join(f"{k}={v}" for k, v in summary["token_length_percentiles"].items())
        lines.append(f"  train token lengths: {pct}")
    for w in summary.get("warnings", []):
        lines.append(f"  warning: {w}")
    return "\n".join(lines)
