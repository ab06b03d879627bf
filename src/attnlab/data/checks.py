"""What a data set's splits say about the evaluation they allow: texts that are in two splits
(leakage: the model is scored on what it trained on) and classes that train lacks. Columnar
(Arrow), so a split of millions of rows is checked in seconds."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from datasets import Dataset

EXAMPLES = 3  # duplicated texts quoted per warning
EXAMPLE_CHARS = 40  # each cut to this length


def column(ds: Dataset, name: str) -> pa.ChunkedArray:
    """Column ``name`` of ``ds`` as Arrow (row selections applied), without walking rows in Python."""
    return ds.with_format("arrow")[name]


def label_counts(ds: Dataset, n_labels: int) -> np.ndarray:
    """Rows per class id 0..n_labels-1."""
    ids = column(ds, "label").to_numpy()
    return np.bincount(ids, minlength=n_labels)[:n_labels] if len(ids) else np.zeros(n_labels, dtype=np.int64)


def _quote(text: str) -> str:
    text = " ".join(text.split())
    return repr(text if len(text) <= EXAMPLE_CHARS else text[:EXAMPLE_CHARS - 1] + "…")


def duplicate_texts(splits: dict[str, Dataset]) -> list[dict]:
    """Per pair of splits (train first), the rows of the later split whose exact text (after stripping)
    is also in the earlier one: ``{"splits": [a, b], "rows": n, "distinct": k, "examples": [...]}``."""
    names = list(splits)
    texts = {s: column(splits[s], "text") for s in names}
    out = []
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            shared = pc.is_in(texts[b], value_set=texts[a])
            rows = int(pc.sum(shared).as_py() or 0)
            if rows:
                dup = pc.unique(pc.filter(texts[b], shared))
                out.append({"splits": [a, b], "rows": rows, "distinct": len(dup),
                            "examples": dup.slice(0, EXAMPLES).to_pylist()})
    return out


def leakage_warnings(splits: dict[str, Dataset]) -> list[str]:
    """One line per pair of splits that share texts: how many, and up to three of them."""
    lines = []
    for d in duplicate_texts(splits):
        a, b = d["splits"]
        total = len(splits[b])
        eg = ", ".join(_quote(t) for t in d["examples"])
        texts = f"{d['distinct']:,} distinct text{'' if d['distinct'] == 1 else 's'}"
        lines.append(f"leakage: {d['rows']:,} of {total:,} {b} rows ({texts}) are also in "
                     f"{a}, e.g. {eg}; their score measures memory, not generalisation: drop them from {b}")
    return lines


def coverage_warnings(per_split: dict[str, np.ndarray], labels: list[str]) -> list[str]:
    """Classes with no training rows, and those of them that validation/test still ask the model for."""
    train = per_split.get("train")
    if train is None:
        return []
    missing = [i for i, n in enumerate(train) if n == 0]
    if not missing:
        return []
    names = ", ".join(labels[i] for i in missing[:10]) + (", …" if len(missing) > 10 else "")
    lines = [f"{len(missing)} of {len(labels)} classes have no training rows ({names}): the model cannot learn them"]
    for split, counts in per_split.items():
        asked = [labels[i] for i in missing if split != "train" and counts[i] > 0]
        if asked:
            lines.append(f"classes in {split} but absent from train: {', '.join(asked[:10])}"
                         f"{', …' if len(asked) > 10 else ''} ({int(sum(counts[i] for i in missing))} rows "
                         "it cannot get right)")
    return lines
