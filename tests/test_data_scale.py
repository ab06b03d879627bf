"""Loading scales (issue #20): no column is walked row by row in Python (a 2.4 M-row file once took
minutes that way: benchmarks/data_loading.py measures the whole command), labels are encoded by
factorizing each split once, and the Arrow readers and the pandas ones give the same data."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from conftest import write
from datasets import arrow_dataset

from attnlab.data import load_data, load_eval_split
from attnlab.data.files import read_table
from attnlab.data.loading import _encode_labels


@pytest.fixture
def no_row_walks(monkeypatch):
    """Iterating a Dataset or one of its columns in Python fails the test."""
    def refuse(*_args, **_kwargs):
        raise AssertionError("a Dataset column was walked row by row")

    monkeypatch.setattr(arrow_dataset.Column, "__iter__", refuse)
    monkeypatch.setattr(arrow_dataset.Dataset, "__iter__", refuse)


def frame(rows: int) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    return pd.DataFrame({"review": [f"review {i} with words {rng.integers(1000)}" for i in range(rows)],
                         "sentiment": rng.choice(["bad", "good", "meh"], size=rows)})


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
def test_load_and_summary_walk_no_rows(tmp_path, no_row_walks, fmt):
    df = frame(20_000)
    f = tmp_path / f"big.{fmt}"
    write(f, df.to_csv(index=False) if fmt == "csv" else df.to_json(orient="records", lines=True))
    ds = load_data(str(f), max_train_samples=5000)
    s = ds.summary(log_warnings=False)
    rows = {split: v["rows"] for split, v in s["splits"].items()}
    assert rows["train"] == 5000 and rows["test"] == 2000 and abs(rows["validation"] - 2000) <= 1
    counts = df["sentiment"].value_counts()
    test_counts = s["splits"]["test"]["per_label"]
    for name in ("bad", "good", "meh"):  # the carved test split keeps every class's share (stratified)
        assert abs(test_counts[name] / 2000 - counts[name] / len(df)) < 0.01


def test_eval_split_walks_no_rows(tmp_path, no_row_walks):
    f = write(tmp_path / "e.csv", frame(3000).to_csv(index=False))
    ds = load_eval_split(str(f), ["bad", "good", "meh"], text_column="review", label_column="sentiment",
                         max_samples=1000)
    assert len(ds) == 1000


def test_labels_are_the_same_as_one_by_one():
    """The vectorised encoding against the plain definition: integer-like labels in numeric order
    ("1.0" is "1"), others sorted as strings; each row's id is its label's position."""
    values = ["10", "2", "1.0", "2", "1", "10.0"] * 50
    ids, names = _encode_labels({"train": pd.DataFrame({"label": values})}, "label", "x", None)
    assert names == ["1", "2", "10"]
    assert ids["train"].tolist() == [names.index(str(int(float(v)))) for v in values]
    strings = ["b", " a", "c ", "a"] * 10
    ids, names = _encode_labels({"train": pd.DataFrame({"label": strings})}, "label", "x", None)
    assert names == ["a", "b", "c"] and ids["train"].tolist() == [names.index(v.strip()) for v in strings]
    assert ids["train"].dtype == np.int64


def test_arrow_and_pandas_readers_agree(tmp_path):
    """Arrow reads the plain files; a quoted line break (CSV) or a column of mixed types (JSON lines)
    sends the file to pandas; all of them give the same columns and values."""
    plain = write(tmp_path / "plain.csv", '\ufefftext,label\n"a, b",1\n,0\nc,\n')
    df = read_table(plain)
    assert list(df.columns) == ["text", "label"]
    assert df["text"].tolist()[0] == "a, b" and pd.isna(df["text"].iloc[1]) and pd.isna(df["label"].iloc[2])
    multi = write(tmp_path / "multi.csv", 'text,label\n"line one\nline two",1\nok,0\n')
    assert read_table(multi)["text"].tolist() == ["line one\nline two", "ok"]
    mixed = write(tmp_path / "mixed.jsonl", json.dumps({"t": "a b", "l": 1}) + "\n" + json.dumps({"t": "c", "l": "x"})
                  + "\n")
    assert read_table(mixed)["l"].tolist() == [1, "x"]
    lists = write(tmp_path / "lists.jsonl", json.dumps({"t": "a b", "l": [1, 2]}) + "\n")
    assert read_table(lists)["l"].tolist() == [[1, 2]]


def test_splits_are_reproducible_and_disjoint(tmp_path):
    f = write(tmp_path / "d.csv", frame(2000).to_csv(index=False))
    a, b = load_data(str(f), seed=3), load_data(str(f), seed=3)
    for s in ("train", "validation", "test"):
        assert a.splits[s]["text"][:] == b.splits[s]["text"][:]
    seen = [set(a.splits[s]["text"][:]) for s in ("train", "validation", "test")]
    assert sum(map(len, seen)) == 2000 and len(set().union(*seen)) == 2000


@pytest.mark.parametrize("size", [0.1, 0.1 / 0.9, 7])
@pytest.mark.parametrize("seed", [0, 42])
def test_the_numpy_split_draws_the_rows_sklearn_draws(size, seed):
    """The same seed carves the same rows as scikit-learn's stratified train_test_split (what carved
    every split before, so runs and benchmark rows stay reproducible), in index arrays rather than
    Python lists; label sets balanced, skewed with tied shares, and of many classes (where sklearn
    refuses 7 rows for 12 classes, the proportional split carves them)."""
    from sklearn.model_selection import train_test_split

    from attnlab.data.splits import proportional_split, stratified_split

    rng = np.random.default_rng(seed)
    for labels in (rng.integers(0, 3, 997), np.repeat([0, 1, 2, 3, 4], [500, 120, 120, 40, 3]),
                   rng.permutation(np.repeat(np.arange(12), 40))):
        keep, rest = stratified_split(labels, size, seed)
        assert keep.dtype.kind == rest.dtype.kind == "i"
        try:
            want_keep, want_rest = train_test_split(np.arange(len(labels)), test_size=size, random_state=seed,
                                                    stratify=labels)
        except ValueError:  # fewer rows to carve than classes
            want_keep, want_rest = proportional_split(labels, size, seed)
            assert size == 7
        assert rest.tolist() == sorted(want_rest) and keep.tolist() == sorted(want_keep)
