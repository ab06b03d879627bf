"""What a label column holds, per kind of task, and how its values become training targets.

- ``class`` (classification, text2text): one class per row; ids 0..K-1 (:mod:`attnlab.data.loading`).
- ``score`` (regression): one number per row, the target; ``labels`` is ``[the target's name]``
  (the label column's name, or the named data set's).
- ``multi`` (multi-label): a set of labels per row, as a list (JSON/JSONL/Parquet), a JSON list in a
  string (``'["a", "b"]'``; ``'[]'`` is the empty set: none of the labels apply), or a string cut at
  the one separator the column uses: ``|``, ``,`` or ``;`` (``"a|b"``, ``"a,b"``). A column that
  uses two of them is ambiguous and refused; an empty cell is a missing label, as in classification.
  ``labels`` is the vocabulary (sorted), and each row becomes a multi-hot float vector over it.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd

from attnlab.errors import UserError

CLASS, SCORE, MULTI = "class", "score", "multi"
LABEL_KINDS = (CLASS, SCORE, MULTI)
SEPARATORS = ("|", ",", ";")
SCORE_BINS = 5  # a regression split is carved stratified on this many quantile bins of the target


def _rows(mask: np.ndarray) -> str:
    """The first few flagged rows as file line numbers (header = line 1)."""
    return ", ".join(str(i + 2) for i in np.flatnonzero(mask)[:5])


def _missing(col: pd.Series) -> np.ndarray:
    empty = col.map(lambda v: isinstance(v, str) and not v.strip()).to_numpy(dtype=bool)
    return col.isna().to_numpy() & ~col.map(_is_list).to_numpy(dtype=bool) | empty


def _is_list(value: object) -> bool:
    return isinstance(value, list | tuple | np.ndarray)


def _require_values(col: pd.Series, split: str, where: str, what: str, fix: str) -> None:
    """A one-line UserError naming the rows of ``split`` that hold no ``what``."""
    missing = _missing(col)
    if missing.any():
        raise UserError(f"{int(missing.sum())} rows have no {what} in the {split} split (lines {_rows(missing)})",
                        where=where, fix=fix)


def parse_scores(values: dict[str, pd.Series], where: str) -> dict[str, np.ndarray]:
    """Each split's targets as float32; a missing, non-numeric or non-finite value is a UserError."""
    out = {}
    for split, col in values.items():
        _require_values(col, split, where, "target", "fill or remove those rows")
        nums = pd.to_numeric(col.map(lambda v: v.strip() if isinstance(v, str) else v), errors="coerce")
        bad = ~np.isfinite(nums.to_numpy(dtype=np.float64, na_value=np.nan))
        if bad.any():
            first = col.iloc[int(np.flatnonzero(bad)[0])]
            raise UserError(f"regression needs a number per row; {int(bad.sum())} rows of the {split} split are not "
                            f"(e.g. {str(first)[:30]!r}, lines {_rows(bad)})", where=where,
                            fix="pass a numeric label column, or --task classification for class names")
        out[split] = nums.to_numpy(dtype=np.float32)
    if "train" in out and np.ptp(out["train"]) == 0:
        raise UserError(f"every training target is {out['train'][0]:g}: there is nothing to learn", where=where,
                        fix="pass a target that varies")
    return out


def score_strata(scores: np.ndarray) -> np.ndarray:
    """Quantile bins of ``scores`` (0..SCORE_BINS-1): what a regression split is stratified on."""
    if len(scores) < 2 * SCORE_BINS:
        return np.zeros(len(scores), dtype=np.int64)
    edges = np.quantile(scores, np.linspace(0, 1, SCORE_BINS + 1)[1:-1])
    return np.searchsorted(edges, scores, side="right").astype(np.int64)


def _separator(strings: pd.Series, where: str) -> str | None:
    used = [s for s in SEPARATORS if strings.str.contains(s, regex=False).any()]
    if len(used) > 1:
        raise UserError(f"multi-label strings hold both {used[0]!r} and {used[1]!r}: which one separates labels is "
                        "ambiguous", where=where,
                        fix=f"use one separator ({' or '.join(SEPARATORS)}) in the whole column, or write each row's "
                            'labels as a JSON list such as ["a", "b"]')
    return used[0] if used else None


def _as_list(value: object, sep: str | None) -> list | None:
    """One row's labels as a list, or None when it is not a list nor a string (a number, an object)."""
    if _is_list(value):
        return list(value)
    if not isinstance(value, str):
        return None
    text = value.strip()
    if text.startswith("["):
        try:
            parsed = json.loads(text)
        except ValueError:
            return None
        return parsed if isinstance(parsed, list) else None
    return text.split(sep) if sep else [text]


def parse_label_sets(values: dict[str, pd.Series], where: str) -> dict[str, list[list[str]]]:
    """Each split's rows as lists of label names (stripped, each once, in the row's order)."""
    out = {}
    for split, col in values.items():
        _require_values(col, split, where, "labels", "fill them; write [] for a row that none of the labels apply to")
        strings = col[col.map(lambda v: isinstance(v, str) and not v.strip().startswith("["))].astype(str)
        sep = _separator(strings, where) if len(strings) else None
        rows: list[list[str]] = []
        for i, value in enumerate(col):
            items = _as_list(value, sep)
            if items is None or not all(isinstance(x, str | int) and not isinstance(x, bool) for x in items):
                raise UserError(f"line {i + 2} of the {split} split: {str(value)[:40]!r} is not a list of labels",
                                where=where, fix='write a list such as ["a", "b"] or a string such as "a|b"')
            names = [str(x).strip() for x in items]
            if any(not n for n in names):
                raise UserError(f"line {i + 2} of the {split} split has an empty label name ({str(value)[:40]!r})",
                                where=where, fix="remove the stray separator; write [] for no labels")
            rows.append(list(dict.fromkeys(names)))
        out[split] = rows
    return out


def encode_label_sets(sets: dict[str, list[list[str]]], where: str,
                      label_names: list[str] | None) -> tuple[dict[str, np.ndarray], list[str]]:
    """Multi-hot (N, K) float32 targets per split over ``label_names`` (default: the sorted labels that
    occur); labels outside a given vocabulary are refused (``unknown labels``, as for classes)."""
    if label_names is None:
        if "train" in sets:
            train = {n for row in sets["train"] for n in row}
            for split, rows in sets.items():
                unseen = sorted({n for row in rows for n in row} - train)
                if unseen:
                    raise UserError(f"unknown labels {unseen[:5]} in the {split} split: train has none of them",
                                    where=where, fix="add training rows for them, or drop those labels")
        label_names = sorted({n for rows in sets.values() for row in rows for n in row})
        if len(label_names) < 2:
            raise UserError(f"multi-label needs at least two labels; the data has {label_names or 'none'}",
                            where=where, fix="check the label column, or use --task classification")
    index = {n: i for i, n in enumerate(label_names)}
    out = {}
    for split, rows in sets.items():
        unknown = sorted({n for row in rows for n in row} - set(index))
        if unknown:
            raise UserError(f"unknown labels {unknown[:5]} in the {split} split", where=where,
                            fix=f"labels must be among {label_names}")
        hot = np.zeros((len(rows), len(label_names)), dtype=np.float32)
        for i, row in enumerate(rows):
            hot[i, [index[n] for n in row]] = 1.0
        out[split] = hot
    return out, label_names


def as_column(targets: np.ndarray) -> list | np.ndarray:
    """Targets as a DataFrame column: a (N,) array as it is, a (N, K) one as N rows of K values."""
    return list(targets) if targets.ndim == 2 else targets


__all__ = ["CLASS", "LABEL_KINDS", "MULTI", "SCORE", "SEPARATORS", "as_column", "encode_label_sets",
           "parse_label_sets", "parse_scores", "score_strata"]
