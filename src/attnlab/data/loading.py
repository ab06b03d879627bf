"""``load_data``: any named data set, file or folder -> :class:`TextDataset`.

Split policy: given train/validation/test splits are used as they are; missing ones are carved
from train with a stratified, seeded split (a single file: 80/10/10). The test split is never
used for training or model selection.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path

import numpy as np
import pandas as pd
from datasets import Dataset, DatasetDict
from sklearn.model_selection import train_test_split

from attnlab.data import sources
from attnlab.data.dataset import SPLITS, TextDataset
from attnlab.data.files import SUFFIXES, find_columns, read_table
from attnlab.errors import UserError

log = logging.getLogger(__name__)

DATASETS = {
    "movie-snippets": "10,605 rated movie-review snippets from the vaderSentiment 3.3.2 sdist (MIT); offline default",
    "sst2": "SST-2 (GLUE): from --data-dir / ATTNLAB_SST2_DIR, or the hub (stanfordnlp/sst2)",
}
DEFAULT_DATA = "movie-snippets"


def _split_of(path: Path) -> str | None:
    stem = path.stem.lower()
    for split, names in {"train": ("train",), "validation": ("validation", "valid", "val", "dev"),
                         "test": ("test",)}.items():
        if stem in names:
            return split
    return None


def _folder_frames(root: Path) -> dict[str, pd.DataFrame]:
    frames: dict[str, pd.DataFrame] = {}
    for f in sorted(root.iterdir()):
        split = _split_of(f)
        if split and f.suffix.lower() in SUFFIXES:
            if split in frames:
                raise UserError(f"two files for the {split} split", where=str(root), fix="keep one per split")
            frames[split] = read_table(f)
    if "train" not in frames:
        raise UserError("folder has no train file", where=str(root),
                        fix="name files train/validation/test with a .csv/.tsv/.jsonl/.json/.parquet suffix")
    return frames


def _encode_labels(frames: dict[str, pd.DataFrame], label_col: str, where: str,
                   label_names: list[str] | None) -> tuple[dict[str, np.ndarray], list[str]]:
    """Map label values to ids 0..K-1. Integer-like labels keep their numeric order; strings sort."""
    values = {}
    for split, df in frames.items():
        col = df[label_col]
        missing = col.isna() | (col.astype(str).str.strip() == "")
        if missing.any():
            rows = ", ".join(str(i + 2) for i in np.flatnonzero(missing.to_numpy())[:5])
            raise UserError(f"{int(missing.sum())} rows have no label in the {split} split (lines {rows})",
                            where=where, fix="fill or remove those rows")
        values[split] = col.astype(str).str.strip()
    if label_names is None:
        if "train" in values:  # a class that only evaluation splits have cannot be learned
            unseen = sorted(set().union(*[set(v) for v in values.values()]) - set(values["train"]))
            if unseen:
                split = next(s for s, v in values.items() if set(unseen) & set(v))
                raise UserError(f"unknown labels {unseen[:5]} in the {split} split: train has none of them",
                                where=where, fix="add training rows for them, or drop those rows")
        uniq = sorted(set().union(*[set(v) for v in values.values()]))
        try:
            nums = {u: float(u) for u in uniq}
            if all(n.is_integer() for n in nums.values()):
                uniq = sorted(uniq, key=lambda u: nums[u])
                values = {s: v.map(lambda u: str(int(float(u)))) for s, v in values.items()}
                uniq = list(dict.fromkeys(str(int(nums[u])) for u in uniq))
        except ValueError:
            pass
        label_names = uniq
    index = {name: i for i, name in enumerate(label_names)}
    out = {}
    for split, v in values.items():
        unknown = sorted(set(v) - set(index))
        if unknown:
            raise UserError(f"unknown labels {unknown[:5]} in the {split} split", where=where,
                            fix=f"labels must be among {label_names}")
        out[split] = v.map(index).to_numpy(dtype=np.int64)
    if "train" in out and (len(label_names) < 2 or len(set(out["train"].tolist())) < 2):
        raise UserError(f"only one label ({label_names[0] if label_names else '?'}) in the training data",
                        where=where, fix="a classifier needs at least two classes")
    return out, label_names


def _stratified(n_total: int, labels: np.ndarray, size: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    idx = np.arange(n_total)
    counts = np.bincount(labels)
    if counts[counts > 0].min() >= 2:
        try:
            keep, rest = train_test_split(idx, test_size=size, random_state=seed, stratify=labels)
            return np.sort(keep), np.sort(rest)
        except ValueError:  # fewer rows to carve than classes: sklearn cannot stratify that
            pass
    return _proportional_split(labels, size, seed)


def _proportional_split(labels: np.ndarray, size: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(keep, rest) with ``rest`` as close to each class's share as whole rows allow (largest
    remainders get the leftover rows), drawn at random within each class: the split for data sets
    too small for sklearn's stratified one."""
    n = len(labels)
    n_rest = min(n - 1, math.ceil(size * n) if isinstance(size, float) else int(size))
    classes, counts = np.unique(labels, return_counts=True)
    exact = n_rest * counts / n
    alloc = np.floor(exact).astype(int)
    order = np.argsort(-(exact - alloc), kind="stable")
    alloc[order[:n_rest - int(alloc.sum())]] += 1
    rng = np.random.default_rng(seed)
    rest = np.concatenate([rng.choice(np.flatnonzero(labels == c), size=min(k, cnt), replace=False)
                           for c, k, cnt in zip(classes, alloc, counts, strict=True)])
    return np.setdiff1d(np.arange(n), rest), np.sort(rest)


def _subset(ds: Dataset, n: int | None, seed: int) -> Dataset:
    if n is None or n >= len(ds):
        return ds
    _, pick = _stratified(len(ds), np.asarray(ds["label"]), n, seed)
    return ds.select(pick)


def _source_frames(ref: str, data_dir: str | None, text_column: str | None, label_column: str | None,
                   label_names: list[str] | None, dropped: dict[str, int]):
    """(split frames, label names or None, text column, label column, where) for a named data set or
    a file/folder; rows a named source drops are counted in ``dropped``."""
    where = ref
    if ref == "sst2":
        frames, names = sources.sst2_frames(data_dir), label_names or sources.SST2_LABELS
        tcol, lcol = "text", "label"
        digits = {"0": "negative", "1": "positive"}
        frames = {s: df.assign(label=df["label"].astype(str).map(digits).fillna(df["label"]))
                  for s, df in frames.items()}
    elif ref == "movie-snippets":
        df, neutral = sources.movie_snippets_frame()
        frames, names, tcol, lcol = {"train": df}, label_names or sources.SNIPPETS_LABELS, "text", "label"
        dropped["rated exactly 0 (neutral)"] = neutral
    else:
        path = Path(ref).expanduser()
        if not path.exists():
            known = ", ".join(DATASETS)
            raise UserError(f"no data set or file named '{ref}'", where="--data",
                            fix=f"pass a file/folder path or one of: {known}")
        frames = _folder_frames(path) if path.is_dir() else {"train": read_table(path)}
        where = str(path)
        first = frames["train"]
        tcol, lcol = find_columns(first, text_column, label_column, where)
        for split, df in frames.items():
            missing = [c for c in (tcol, lcol) if c not in df.columns]
            if missing:
                raise UserError(f"the {split} file lacks column(s) {missing}", where=where,
                                fix="use the same columns in every split file")
        names = label_names
    return frames, names, tcol, lcol, where


def _carve_splits(dsets: dict[str, Dataset], val_fraction: float, test_fraction: float, seed: int, *,
                  single_file: bool, notes: list[str]) -> None:
    """Add the test and validation splits a source lacks, carved from train (stratified, seeded)."""
    if "test" not in dsets:
        keep, rest = _stratified(len(dsets["train"]), np.asarray(dsets["train"]["label"]), test_fraction, seed)
        dsets["test"], dsets["train"] = dsets["train"].select(rest), dsets["train"].select(keep)
        notes.append(f"test split carved from train ({test_fraction:.0%}, stratified, seed {seed})")
    if "validation" not in dsets:
        frac = val_fraction / (1 - test_fraction) if single_file else val_fraction
        keep, rest = _stratified(len(dsets["train"]), np.asarray(dsets["train"]["label"]), frac, seed + 1)
        dsets["validation"], dsets["train"] = dsets["train"].select(rest), dsets["train"].select(keep)
        notes.append(f"validation split carved from train (stratified, seed {seed})")


def load_data(
    ref: str | None = None,
    *,
    data_dir: str | None = None,
    text_column: str | None = None,
    label_column: str | None = None,
    val_fraction: float = 0.1,
    test_fraction: float = 0.1,
    seed: int = 42,
    max_train_samples: int | None = None,
    max_eval_samples: int | None = None,
    label_names: list[str] | None = None,
) -> TextDataset:
    """Load a named data set (``sst2``, ``movie-snippets``), a file or a folder of split files."""
    ref = ref or DEFAULT_DATA
    for name, frac in (("--val-fraction", val_fraction), ("--test-fraction", test_fraction)):
        if not 0 < frac < 0.5:
            raise UserError(f"{name} must be between 0 and 0.5, got {frac}", where=name, fix="pass e.g. 0.1")
    for name, n in (("--max-train-samples", max_train_samples), ("--max-eval-samples", max_eval_samples)):
        if n is not None and n < 2:
            raise UserError(f"{name} must be at least 2, got {n}", where=name, fix="pass a larger number")
    dropped: dict[str, int] = {}
    notes: list[str] = []
    frames, names, tcol, lcol, where = _source_frames(ref, data_dir, text_column, label_column, label_names,
                                                      dropped)
    # drop empty texts, encode labels
    clean: dict[str, pd.DataFrame] = {}
    for split, df in frames.items():
        text = df[tcol].where(df[tcol].notna(), "").astype(str).str.strip()
        empty = text == ""
        if empty.any():
            dropped[f"empty text ({split})"] = int(empty.sum())
        clean[split] = pd.DataFrame({"text": text[~empty].to_numpy(), "label": df[lcol][~empty].to_numpy()})
        if clean[split].empty:
            raise UserError(f"the {split} split has no non-empty texts", where=where, fix="check the text column")
    ids, names = _encode_labels(clean, "label", where, names)
    dsets = {s: Dataset.from_dict({"text": clean[s]["text"].tolist(), "label": ids[s].tolist()}) for s in clean}
    _carve_splits(dsets, val_fraction, test_fraction, seed, single_file=len(frames) == 1, notes=notes)
    dsets["train"] = _subset(dsets["train"], max_train_samples, seed)
    for s in ("validation", "test"):
        dsets[s] = _subset(dsets[s], max_eval_samples, seed)
    for s in SPLITS:
        if len(dsets[s]) == 0:
            raise UserError(f"the {s} split is empty", where=where, fix="provide more rows")
    return TextDataset(DatasetDict({s: dsets[s] for s in SPLITS}), names, ref, dropped, notes)


def load_eval_split(
    ref: str,
    labels: list[str],
    *,
    split: str | None = None,
    data_dir: str | None = None,
    text_column: str | None = None,
    label_column: str | None = None,
    seed: int = 42,
    max_samples: int | None = None,
) -> Dataset:
    """Labelled rows to score a trained model on, with labels mapped to the model's ids.

    A single file is scored whole unless ``split`` is given; a named data set or a folder gives its
    ``split`` (default ``test``). Labels the model never saw are a UserError."""
    path = Path(ref).expanduser()
    if path.is_file() and split is None:
        df = read_table(path)
        tcol, lcol = find_columns(df, text_column, label_column, str(path))
        text = df[tcol].where(df[tcol].notna(), "").astype(str).str.strip()
        df = pd.DataFrame({"text": text, "label": df[lcol]})[text != ""]
        if df.empty:
            raise UserError("no non-empty texts to evaluate", where=str(path), fix="check the text column")
        seen = set(labels) | {str(i) for i in range(len(labels))}
        found = set(df["label"].astype(str).str.strip())
        unseen = sorted(found - set(labels))
        if unseen and not found <= seen:
            raise UserError(f"labels the model never saw: {unseen[:5]}", where=str(path),
                            fix=f"the model knows {labels}; map or drop the other rows")
        if unseen:  # integer ids rather than names
            df["label"] = df["label"].astype(str).str.strip().map(lambda s: labels[int(s)])
        ids, _ = _encode_labels({"eval": df}, "label", str(path), labels)
        ds = Dataset.from_dict({"text": df["text"].tolist(), "label": ids["eval"].tolist()})
        return _subset(ds, max_samples, seed)
    try:
        data = load_data(ref, data_dir=data_dir, text_column=text_column, label_column=label_column, seed=seed,
                         label_names=labels, max_eval_samples=max_samples)
    except UserError as exc:
        if exc.what.startswith("unknown labels"):
            raise UserError(exc.what.replace("unknown labels", "labels the model never saw"), where=exc.where,
                            fix=f"the model knows {labels}; map or drop the other rows") from None
        raise
    split = split or "test"
    if split not in data.splits:
        raise UserError(f"unknown split '{split}'", where="--split", fix="pick train, validation or test")
    return data.splits[split]
