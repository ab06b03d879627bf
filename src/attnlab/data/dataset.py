"""The value every data source produces, and its summary."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from datasets import DatasetDict

from attnlab.data.checks import column, coverage_warnings, label_counts, leakage_warnings
from attnlab.data.labels import CLASS, MULTI, SCORE

log = logging.getLogger(__name__)

SPLITS = ("train", "validation", "test")
IMBALANCE_RATIO = 4.0  # warn when the largest class is this many times the smallest


@dataclass
class TextDataset:
    """Splits with ``text`` and ``label`` columns; ``labels[i]`` names class ``i``. ``label_kind``
    (:mod:`attnlab.data.labels`) says what ``label`` holds: a class id 0..K-1 (``class``), a float
    target (``score``; ``labels`` is the target's name) or a multi-hot row over ``labels`` (``multi``)."""

    splits: DatasetDict
    labels: list[str]
    name: str
    dropped: dict[str, int] = field(default_factory=dict)  # reason -> rows dropped
    notes: list[str] = field(default_factory=list)
    columns: dict[str, dict[str, str]] = field(default_factory=dict)  # role -> {"column", "why"} (files)
    label_kind: str = CLASS

    @property
    def label2id(self) -> dict[str, int]:
        return {name: i for i, name in enumerate(self.labels)}

    def summary(self, tokenizer: Any | None = None, *, log_warnings: bool = True) -> dict[str, Any]:
        """Rows per split and label, the columns chosen and why, rows dropped and why, warnings (class
        imbalance, texts shared between splits, classes train lacks) and (with a tokenizer)
        token-length percentiles of the training texts. ``log_warnings`` also logs each warning
        (one line each: what training shows before it starts)."""
        out: dict[str, Any] = {"dataset": self.name, "labels": self.labels, "splits": {}, "dropped": self.dropped}
        if self.columns:
            out["columns"] = self.columns
        if self.label_kind == SCORE:  # a target's spread, not counts per class
            for split in self.splits:
                y = column(self.splits[split], "label").to_numpy()
                out["splits"][split] = {"rows": len(y), "target": {
                    "mean": float(y.mean()), "std": float(y.std()), "min": float(y.min()), "max": float(y.max())}}
            warnings = leakage_warnings(dict(self.splits))
        else:
            counts = {split: self._counts(split) for split in self.splits}
            for split, per in counts.items():
                out["splits"][split] = {"rows": len(self.splits[split]),
                                        "per_label": {name: int(n) for name, n in zip(self.labels, per, strict=True)}}
            warnings = self._imbalance(counts.get("train"))
            warnings += coverage_warnings(counts, self.labels) + leakage_warnings(dict(self.splits))
        if tokenizer is not None:
            texts = column(self.splits["train"].select(range(min(5000, len(self.splits["train"])))),
                           "text").to_pylist()
            lengths = [len(ids) for ids in tokenizer(texts, truncation=False)["input_ids"]]
            out["token_length_percentiles"] = {
                f"p{q}": int(np.percentile(lengths, q)) for q in (50, 90, 95, 99, 100)
            }
            out["token_length_sampled_rows"] = len(texts)
        if log_warnings:
            for w in warnings:
                log.warning("%s: %s", self.name, w)
        out["warnings"] = warnings + self.notes
        return out

    def _counts(self, split: str) -> np.ndarray:
        """Rows per label: of each class, or (multi-label) that carry each label."""
        if self.label_kind != MULTI:
            return label_counts(self.splits[split], len(self.labels))
        hot = column(self.splits[split], "label").combine_chunks().flatten().to_numpy()
        return hot.reshape(-1, len(self.labels)).sum(0).astype(np.int64)

    @staticmethod
    def _imbalance(train: np.ndarray | None) -> list[str]:
        if train is None or not len(train) or train.min() == 0 or train.max() / train.min() < IMBALANCE_RATIO:
            return []
        return [f"heavy class imbalance in train: largest/smallest = {train.max() / train.min():.1f}; "
                "watch macro-F1, not only accuracy"]


def format_summary(summary: dict[str, Any]) -> str:
    """Human-readable lines for the CLI."""
    lines = [f"data: {summary['dataset']}  labels: {', '.join(summary['labels'])}"]
    for role, chosen in summary.get("columns", {}).items():
        lines.append(f"  {role} column: {chosen['column']} ({chosen['why']})")
    for split, info in summary["splits"].items():
        if "target" in info:  # regression: the target's spread
            t = info["target"]
            per = f"target mean {t['mean']:.3g}, std {t['std']:.3g}, range {t['min']:.3g}..{t['max']:.3g}"
        else:
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
