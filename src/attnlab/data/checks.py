"""What a data set's splits say about the evaluation they allow: texts that are in two splits
(leakage: the model is scored on what it trained on) and classes that train lacks. Columnar
(Arrow), so a split of millions of rows is checked in seconds."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from datasets import Dataset

EXAMPLES = 3  # duplicated texts quoted per warning
EXAMPLE_CHARS = 40  # each cut to this length
BATCH_ROWS = 200_000  # rows of a big split read at a time


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


def text_batches(ds: Dataset, rows: int | None = None) -> Iterator[pa.ChunkedArray]:
    """``ds``'s texts, ``rows`` (default :data:`BATCH_ROWS`) at a time: a split that reads a big file's
    table through an indices mapping is gathered batch by batch, never copied whole."""
    arrow, rows = ds.with_format("arrow"), rows or BATCH_ROWS
    for start in range(0, len(ds), rows):
        yield arrow[start:start + rows]["text"]


def _found(ds: Dataset, value_set: pa.ChunkedArray) -> pa.ChunkedArray:
    """The texts of ``ds`` (in its order, repeats kept) that are among ``value_set``."""
    hits = [c for t in text_batches(ds) for c in pc.filter(t, pc.is_in(t, value_set=value_set)).chunks]
    return pa.chunked_array(hits, type=value_set.type)


def duplicate_texts(splits: dict[str, Dataset]) -> list[dict]:
    """Per pair of splits (train first), the rows of the later split whose exact text (after stripping)
    is also in the earlier one: ``{"splits": [a, b], "rows": n, "distinct": k, "examples": [...]}``.

    Only the smaller split of a pair is hashed (a hash set holds a copy of every value it is built
    from: one of a big train split would cost as much memory as the split); the bigger one is read in
    batches against it, and what the two share (few texts) is then looked up in the later split."""
    names = list(splits)
    out = []
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            small, big = sorted((a, b), key=lambda s: len(splits[s]))
            common = pc.unique(_found(splits[big], column(splits[small], "text")))
            if not len(common):
                continue
            shared = _found(splits[b], common)  # b's rows whose text is also in a
            dup = pc.unique(shared)
            out.append({"splits": [a, b], "rows": len(shared), "distinct": len(dup),
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
