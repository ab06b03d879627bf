"""``load_data``: any named data set, file or folder -> :class:`TextDataset`.

Split policy: given train/validation/test splits are used as they are; missing ones are carved
from train with a stratified, seeded split (a single file: 80/10/10). The test split is never
used for training or model selection.
"""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from datasets import Dataset, DatasetDict
from datasets.table import InMemoryTable

from attnlab.data import labels as label_kinds
from attnlab.data import sources
from attnlab.data.dataset import SPLITS, TextDataset
from attnlab.data.files import SUFFIXES, Columns, detect_columns, find_columns, read_table
from attnlab.data.labels import CLASS, MULTI, SCORE
from attnlab.data.splits import stratified_split
from attnlab.data.text import EDGE_SPACE_PATTERN, blank_mask
from attnlab.errors import UserError

log = logging.getLogger(__name__)

DATASETS = {
    "movie-snippets": "10,605 rated movie-review snippets from the vaderSentiment 3.3.2 sdist (MIT); offline default",
    "movie-snippet-ratings": "the same 10,605 snippets with their mean human rating (-4..4) as the target: "
                             "--task regression",
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


def _label_factors(frames: dict[str, pd.DataFrame], label_col: str, where: str
                   ) -> dict[str, tuple[np.ndarray, list[str]]]:
    """Each split's labels as (codes, names): ``names[codes[i]]`` is row i's label as a stripped string.
    Each column is factorized as it is and only its distinct values are stripped (values that strip to
    the same name merge), so no label is copied per row; a row without one is a UserError."""
    out = {}
    for split, df in frames.items():
        codes, uniques = pd.factorize(df[label_col])  # a missing value: -1
        stripped = [str(u).strip() for u in uniques]
        ids: dict[str, int] = {}
        remap = np.array([ids.setdefault(n, len(ids)) for n in stripped] + [-1], dtype=np.int64)
        codes = remap[codes]  # -1 indexes the trailing -1: missing stays missing
        empty = ids.get("")
        missing = (codes < 0) | (codes == empty) if empty is not None else codes < 0
        if missing.any():
            rows = ", ".join(str(i + 2) for i in np.flatnonzero(missing)[:5])
            raise UserError(f"{int(missing.sum())} rows have no label in the {split} split (lines {rows})",
                            where=where, fix="fill or remove those rows")
        out[split] = (codes, list(ids))
    return out


def _integer_names(uniq: list[str]) -> dict[str, str] | None:
    """{value: canonical name} when every value is integer-like ("1", "1.0" -> "1"), else None."""
    try:
        nums = {u: float(u) for u in uniq}
    except ValueError:
        return None
    if not all(n.is_integer() for n in nums.values()):
        return None
    return {u: str(int(n)) for u, n in nums.items()}


def _encode_labels(frames: dict[str, pd.DataFrame], label_col: str, where: str,
                   label_names: list[str] | None) -> tuple[dict[str, np.ndarray], list[str]]:
    """Map label values to ids 0..K-1. Integer-like labels keep their numeric order; strings sort.
    Vectorised: each split is factorized once and only its distinct values are looked at."""
    factors = _label_factors(frames, label_col, where)
    distinct = {s: names for s, (_, names) in factors.items()}
    canon: dict[str, str] = {}
    if label_names is None:
        if "train" in distinct:  # a class that only evaluation splits have cannot be learned
            train = set(distinct["train"])
            for split, names in distinct.items():
                unseen = sorted(set(names) - train)
                if unseen:
                    raise UserError(f"unknown labels {unseen[:5]} in the {split} split: train has none of them",
                                    where=where, fix="add training rows for them, or drop those rows")
        uniq = sorted(set().union(*distinct.values()))
        canon = _integer_names(uniq) or {}
        if canon:
            uniq = list(dict.fromkeys(canon[u] for u in sorted(uniq, key=lambda u: float(u))))
        label_names = uniq
    index = {name: i for i, name in enumerate(label_names)}
    out = {}
    for split, (codes, _) in factors.items():
        names = [canon.get(u, u) for u in distinct[split]]
        unknown = sorted(set(names) - set(index))
        if unknown:
            raise UserError(f"unknown labels {unknown[:5]} in the {split} split", where=where,
                            fix=f"labels must be among {label_names}")
        out[split] = np.asarray([index[n] for n in names], dtype=np.int64)[codes]
    if "train" in out and (len(label_names) < 2 or np.count_nonzero(np.bincount(out["train"])) < 2):
        raise UserError(f"only one label ({label_names[0] if label_names else '?'}) in the training data",
                        where=where, fix="a classifier needs at least two classes")
    return out, label_names


Rows = tuple[str, np.ndarray]  # (source split, row numbers in it): a split before its Dataset is built


def _subset(rows: Rows, labels: np.ndarray, n: int | None, seed: int) -> Rows:
    """A stratified, seeded subset of ``n`` of ``rows`` (all of them when ``n`` is None or not smaller);
    ``labels`` are the source split's label ids."""
    src, idx = rows
    if n is None or n >= len(idx):
        return rows
    _, pick = stratified_split(labels[idx], n, seed)
    return src, idx[pick]


LABEL_TYPES = {CLASS: pa.int64(), SCORE: pa.float32(), MULTI: pa.list_(pa.float32())}  # per label kind
def _arrow_table(df: pd.DataFrame, label_kind: str) -> pa.Table:
    """``df``'s ``text`` and ``label`` as an Arrow table (the texts not copied: pandas holds them in Arrow)."""
    table = pa.Table.from_pandas(df[["text", "label"]], preserve_index=False).replace_schema_metadata()
    return table.cast(pa.schema([("text", table.schema.field("text").type), ("label", LABEL_TYPES[label_kind])]))


def _dataset(table: pa.Table) -> Dataset:
    return Dataset(InMemoryTable(table), fingerprint=_fingerprint(table))


def to_dataset(df: pd.DataFrame, rows: np.ndarray | None = None, label_kind: str = CLASS) -> Dataset:
    """A ``text`` / ``label`` Dataset of ``df``'s ``rows`` (default: all), built in Arrow: the strings are
    not copied into Python objects, and only the rows taken are copied at all. ``label`` is int64 (a
    class id), float32 (a regression target) or a list of float32 (multi-label: multi-hot)."""
    table = _arrow_table(df, label_kind)
    if rows is not None and not (len(rows) == len(df) and np.array_equal(rows, np.arange(len(df)))):
        if len(rows) and np.all(np.diff(rows) > 0):  # ascending (how splits are carved): a filter works
            mask = np.zeros(len(df), dtype=bool)   # chunk by chunk, where a take first joins all chunks
            mask[rows] = True
            table = table.filter(pa.array(mask))
        else:
            table = table.take(pa.array(rows))
    return _dataset(table)


def _split_datasets(clean: dict[str, pd.DataFrame], targets: dict[str, np.ndarray], rows: dict[str, Rows],
                    label_kind: str) -> dict[str, Dataset]:
    """Every split's Dataset, its rows taken from its source frame (which ``clean`` gives up) one record
    batch at a time, each batch released once its rows are taken: a file's texts are never in memory
    twice, where taking whole splits from a whole table would hold the table and its copy at once."""
    out: dict[str, Dataset] = {}
    for src in list(clean):
        wanted = {s: idx for s, (source, idx) in rows.items() if source == src}
        table = _arrow_table(clean.pop(src).assign(label=label_kinds.as_column(targets[src])), label_kind)
        if not all(len(idx) < 2 or np.all(np.diff(idx) > 0) for idx in wanted.values()):  # not ascending
            out |= {s: _dataset(table.take(pa.array(idx))) for s, idx in wanted.items()}
            continue
        batches, schema = table.to_batches(), table.schema
        del table  # the batches are all that holds the texts now
        pieces: dict[str, list[pa.RecordBatch]] = {s: [] for s in wanted}
        start = 0
        while batches:
            batch = batches.pop(0)
            for s, idx in wanted.items():
                lo, hi = np.searchsorted(idx, [start, start + batch.num_rows])
                if hi - lo == batch.num_rows:  # every row: the batch itself, no copy
                    pieces[s].append(batch)
                elif hi > lo:
                    pieces[s].append(batch.take(pa.array(idx[lo:hi] - start)))
            start += batch.num_rows
            del batch
        out |= {s: _dataset(pa.Table.from_batches(pieces[s], schema=schema)) for s in wanted}
    return out


def _fingerprint(table: pa.Table) -> str:
    """A hash of ``table``'s bytes: what datasets would compute by pickling the whole table, at a
    fraction of the time and without a second copy in memory."""
    h = hashlib.blake2b(digest_size=16)
    for col in table.columns:
        for chunk in col.chunks:
            for buf in chunk.buffers():
                if buf is not None:
                    h.update(buf)
    return h.hexdigest()


def _source_frames(ref: str, data_dir: str | None, text_column: str | None, label_column: str | None,
                   label_names: list[str] | None, dropped: dict[str, int], label_kind: str = CLASS):
    """(split frames, label names or None, the columns chosen, where) for a named data set or a
    file/folder; rows a named source drops are counted in ``dropped``."""
    where, builtin = ref, {"text": "built-in data set", "label": "built-in data set"}
    if ref == "sst2":
        frames, names = sources.sst2_frames(data_dir), label_names or sources.SST2_LABELS
        columns = Columns("text", "label", builtin)
        digits = {"0": "negative", "1": "positive"}
        frames = {s: df.assign(label=df["label"].astype(str).map(digits).fillna(df["label"]))
                  for s, df in frames.items()}
    elif ref == "movie-snippets":
        df, neutral = sources.movie_snippets_frame()
        frames, names = {"train": df}, label_names or sources.SNIPPETS_LABELS
        columns = Columns("text", "label", builtin)
        dropped["rated exactly 0 (neutral)"] = neutral
    elif ref == "movie-snippet-ratings":
        if label_kind != SCORE:
            raise UserError("movie-snippet-ratings holds a rating per text, not classes", where="--data",
                            fix="pass --task regression, or --data movie-snippets for the positive/negative labels")
        frames, names = {"train": sources.movie_snippet_ratings_frame()}, [sources.SNIPPETS_TARGET]
        columns = Columns("text", "label", builtin)
    else:
        path = Path(ref).expanduser()
        if not path.exists():
            known = ", ".join(DATASETS)
            raise UserError(f"no data set or file named '{ref}'", where="--data",
                            fix=f"pass a file/folder path or one of: {known}")
        frames = _folder_frames(path) if path.is_dir() else {"train": read_table(path)}
        where = str(path)
        columns = detect_columns(frames["train"], text_column, label_column, where, label_kind=label_kind)
        for split, df in frames.items():
            missing = [c for c in (columns.text, columns.label) if c not in df.columns]
            if missing:
                raise UserError(f"the {split} file lacks column(s) {missing}", where=where,
                                fix="use the same columns in every split file")
        names = label_names or ([columns.label] if label_kind == SCORE else None)
    return frames, names, columns, where


def _targets(clean: dict[str, pd.DataFrame], label_kind: str, where: str, names: list[str] | None):
    """(targets per split, strata per split, label names): class ids for classes, float32 scores, or
    multi-hot rows; the strata are what carved splits and subsets are stratified on (the class, a
    quantile bin of the score, nothing for label sets)."""
    if label_kind == CLASS:
        ids, names = _encode_labels(clean, "label", where, names)
        return ids, ids, names
    values = {s: df["label"] for s, df in clean.items()}
    if label_kind == SCORE:
        scores = label_kinds.parse_scores(values, where)
        return scores, {s: label_kinds.score_strata(v) for s, v in scores.items()}, names
    hot, names = label_kinds.encode_label_sets(label_kinds.parse_label_sets(values, where), where, names)
    return hot, {s: np.zeros(len(v), dtype=np.int64) for s, v in hot.items()}, names


def _as_text(col: pd.Series) -> pd.Series:
    """``col`` as strings, missing values as "" (Arrow-backed string columns are kept as they are: no
    Python string per row)."""
    col = col.fillna("")
    return col if isinstance(col.dtype, pd.StringDtype) else col.astype(str)


def _clean_frames(frames: dict[str, pd.DataFrame], tcol: str, lcol: str, where: str,
                  dropped: dict[str, int]) -> dict[str, pd.DataFrame]:
    """Each split as ``text`` (stripped) and raw ``label`` columns, rows whose text shows nothing dropped
    and counted (the rule of :mod:`attnlab.data.text`, the one the CLI, REST and UI apply)."""
    clean: dict[str, pd.DataFrame] = {}
    for split, df in frames.items():
        text = _as_text(df[tcol])
        arr = pa.array(text)
        keep = ~blank_mask(arr)  # empty, or only whitespace, control or zero-width characters
        if pc.any(pc.match_substring_regex(arr, EDGE_SPACE_PATTERN)).as_py():  # stripping copies every text
            text = text.str.strip()
        if keep.all():
            clean[split] = pd.DataFrame({"text": text, "label": df[lcol]})
        else:
            dropped[f"empty text ({split})"] = int((~keep).sum())
            clean[split] = pd.DataFrame({"text": text[keep], "label": df[lcol][keep]}).reset_index(drop=True)
        if clean[split].empty:
            raise UserError(f"the {split} split has no non-empty texts", where=where, fix="check the text column")
    return clean


def _carve_splits(ids: dict[str, np.ndarray], val_fraction: float, test_fraction: float, seed: int, *,
                  notes: list[str]) -> dict[str, Rows]:
    """Every split's rows: the given splits whole, and the test and validation splits a source lacks
    carved from train (stratified, seeded)."""
    rows: dict[str, Rows] = {s: (s, np.arange(len(v))) for s, v in ids.items()}

    def carve(frac: float, seed: int) -> tuple[Rows, Rows]:
        src, idx = rows["train"]
        keep, rest = stratified_split(ids[src][idx], frac, seed)
        return (src, idx[rest]), (src, idx[keep])

    single_file = len(ids) == 1
    if "test" not in rows:
        rows["test"], rows["train"] = carve(test_fraction, seed)
        notes.append(f"test split carved from train ({test_fraction:.0%}, stratified, seed {seed})")
    if "validation" not in rows:
        rows["validation"], rows["train"] = carve(val_fraction / (1 - test_fraction) if single_file
                                                  else val_fraction, seed + 1)
        notes.append(f"validation split carved from train (stratified, seed {seed})")
    return rows


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
    label_kind: str = CLASS,
) -> TextDataset:
    """Load a named data set (``sst2``, ``movie-snippets``, ``movie-snippet-ratings``), a file or a folder
    of split files. ``label_kind`` is what the label column holds (:mod:`attnlab.data.labels`): a class,
    a regression target (``score``) or a set of labels (``multi``)."""
    ref = ref or DEFAULT_DATA
    for name, frac in (("--val-fraction", val_fraction), ("--test-fraction", test_fraction)):
        if not 0 < frac < 0.5:
            raise UserError(f"{name} must be between 0 and 0.5, got {frac}", where=name, fix="pass e.g. 0.1")
    for name, n in (("--max-train-samples", max_train_samples), ("--max-eval-samples", max_eval_samples)):
        if n is not None and n < 2:
            raise UserError(f"{name} must be at least 2, got {n}", where=name, fix="pass a larger number")
    dropped: dict[str, int] = {}
    notes: list[str] = []
    frames, names, columns, where = _source_frames(ref, data_dir, text_column, label_column, label_names, dropped,
                                                   label_kind)
    clean = _clean_frames(frames, columns.text, columns.label, where, dropped)
    del frames  # the file's other columns are not needed any more
    targets, ids, names = _targets(clean, label_kind, where, names)
    rows = _carve_splits(ids, val_fraction, test_fraction, seed, notes=notes)
    rows["train"] = _subset(rows["train"], ids[rows["train"][0]], max_train_samples, seed)
    for s in ("validation", "test"):
        rows[s] = _subset(rows[s], ids[rows[s][0]], max_eval_samples, seed)
    for s in SPLITS:
        if len(rows[s][1]) == 0:
            raise UserError(f"the {s} split is empty", where=where, fix="provide more rows")
    splits = DatasetDict({s: d for s, d in sorted(_split_datasets(clean, targets, rows, label_kind).items(),
                                                  key=lambda kv: SPLITS.index(kv[0]))})
    chosen = {role: {"column": col, "why": columns.why[role]}
              for role, col in (("text", columns.text), ("label", columns.label)) if role in columns.why}
    return TextDataset(splits, names, ref, dropped, notes, columns=chosen, label_kind=label_kind)


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
    label_kind: str = CLASS,
) -> Dataset:
    """Labelled rows to score a trained model on, with labels mapped to the model's ids.

    A single file is scored whole unless ``split`` is given; a named data set or a folder gives its
    ``split`` (default ``test``). Labels the model never saw are a UserError."""
    path = Path(ref).expanduser()
    if path.is_file() and split is None:
        df = read_table(path)
        tcol, lcol = find_columns(df, text_column, label_column, str(path), label_kind=label_kind)
        df = _clean_frames({"eval": df}, tcol, lcol, str(path), {})["eval"]
        if label_kind != CLASS:
            targets, strata, _ = _eval_targets(df, label_kind, str(path), labels)
            return to_dataset(df.assign(label=label_kinds.as_column(targets)),
                              _subset(("eval", np.arange(len(df))), strata, max_samples, seed)[1], label_kind)
        seen = set(labels) | {str(i) for i in range(len(labels))}
        found = set(df["label"].astype(str).str.strip())
        unseen = sorted(found - set(labels))
        if unseen and not found <= seen:
            raise UserError(f"labels the model never saw: {unseen[:5]}", where=str(path),
                            fix=f"the model knows {labels}; map or drop the other rows")
        if unseen:  # integer ids rather than names
            df["label"] = df["label"].astype(str).str.strip().map(dict(zip(map(str, range(len(labels))), labels,
                                                                           strict=True)))
        ids, _ = _encode_labels({"eval": df}, "label", str(path), labels)
        return to_dataset(df.assign(label=ids["eval"]), _subset(("eval", np.arange(len(df))), ids["eval"],
                                                                 max_samples, seed)[1])
    try:
        data = load_data(ref, data_dir=data_dir, text_column=text_column, label_column=label_column, seed=seed,
                         label_names=labels, max_eval_samples=max_samples, label_kind=label_kind)
    except UserError as exc:
        if exc.what.startswith("unknown labels"):
            raise UserError(exc.what.replace("unknown labels", "labels the model never saw"), where=exc.where,
                            fix=f"the model knows {labels}; map or drop the other rows") from None
        raise
    split = split or "test"
    if split not in data.splits:
        raise UserError(f"unknown split '{split}'", where="--split", fix="pick train, validation or test")
    return data.splits[split]


def _eval_targets(df: pd.DataFrame, label_kind: str, where: str, labels: list[str]):
    """:func:`_targets` of one file scored against a trained model's labels (its vocabulary, for label sets)."""
    try:
        targets, strata, _ = _targets({"eval": df}, label_kind, where, labels if label_kind == MULTI else None)
    except UserError as exc:
        if exc.what.startswith("unknown labels"):
            raise UserError(exc.what.replace("unknown labels", "labels the model never saw"), where=exc.where,
                            fix=f"the model knows {labels}; map or drop the other labels") from None
        raise
    return targets["eval"], strata["eval"], None
