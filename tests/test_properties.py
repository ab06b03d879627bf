"""Property-based tests (hypothesis): random tables through the data loaders, random unicode
through tokenisation and prediction.

Loaders: whatever texts and labels a CSV or JSONL holds (quotes, commas, newlines, emoji, numbers
as text), ``load_data`` keeps every row with a non-blank text exactly once (stripped), maps each
label name to one id, splits disjointly, and carves validation/test stratified by label.
Tokenisation: any unicode text, of any length, predicts without error, truncated to ``max_length``.
"""

from __future__ import annotations

import csv
import json
import tempfile
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from attnlab.data import load_data
from attnlab.errors import UserError

SETTINGS = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# texts: anything printable or not, except lone surrogates (not encodable as UTF-8 at all)
ANY_CHAR = st.characters(blacklist_categories=("Cs",))
TRICKY = st.sampled_from([
    "\u200b", "\u200c", "\u200d", "\ufeff", "\u2028", "\u00a0", "\r\n", "\n", "\t", '"', ",", "'", "\\",
    "😀", "👩\u200d👩\u200d👧", "🇫🇷", "e\u0301", "\u202e", "ﷺ", "\x00", "NaN", "null", "None", "1e5", "  ",
])
TEXT = st.lists(st.one_of(st.text(ANY_CHAR, max_size=12), TRICKY), max_size=6).map("".join)
LABEL_NAMES = st.lists(st.text(st.characters(whitelist_categories=("L", "N"), max_codepoint=0x2FFF), min_size=1,
                                 max_size=8).filter(lambda s: not _numeric(s)), min_size=2, max_size=4, unique=True)


def _numeric(s: str) -> bool:
    try:
        float(s)
    except ValueError:
        return False
    return True


@st.composite
def tables(draw, min_rows: int = 20, max_rows: int = 60):
    """(texts, label names per row): every label at least twice, so stratification applies."""
    names = draw(LABEL_NAMES)
    n = draw(st.integers(min_rows, max_rows))
    labels = [names[i % len(names)] for i in range(2 * len(names))]  # each at least twice
    labels += draw(st.lists(st.sampled_from(names), min_size=n - len(labels), max_size=n - len(labels)))
    labels = draw(st.permutations(labels))
    texts = draw(st.lists(TEXT, min_size=len(labels), max_size=len(labels)))
    # enough non-blank texts per label for three non-empty splits
    from attnlab.data.text import text_problem

    texts = [t if text_problem(t) is None else t + f"filler {i}" for i, t in enumerate(texts)]
    return texts, labels


def write_csv(path: Path, texts: list[str], labels: list[str]) -> None:
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["text", "label"])
        w.writerows(zip(texts, labels, strict=True))


def write_jsonl(path: Path, texts: list[str], labels: list[str]) -> None:
    with open(path, "w", encoding="utf-8") as f:
        for t, lab in zip(texts, labels, strict=True):
            f.write(json.dumps({"text": t, "label": lab}, ensure_ascii=False) + "\n")


def check_round_trip(texts: list[str], labels: list[str], suffix: str) -> None:
    writer = write_csv if suffix == ".csv" else write_jsonl
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"data{suffix}"
        writer(path, texts, labels)
        ds = load_data(str(path), seed=7)
    from attnlab.data.text import text_problem  # a text that shows nothing is dropped, like an empty one

    expected = Counter((t.strip(), lab) for t, lab in zip(texts, labels, strict=True) if text_problem(t) is None)
    assert ds.labels == sorted(set(labels))
    got: Counter = Counter()
    per_split = {}
    for split, d in ds.splits.items():
        rows = list(zip(d["text"], (ds.labels[i] for i in d["label"]), strict=True))
        per_split[split] = Counter(lab for _, lab in rows)
        got.update(rows)
        assert len(d) > 0
    # every kept row exactly once across the three splits: the splits are disjoint and complete
    assert got == expected
    assert sum(len(d) for d in ds.splits.values()) == sum(expected.values())
    assert ds.dropped.get("empty text (train)", 0) == sum(1 for t in texts if text_problem(t) is not None)
    # stratified: each class's share of test is its share of the data, to within rounding
    totals = Counter(lab for _, lab in expected.elements())
    if min(totals.values()) >= 2:
        for lab, n in totals.items():
            assert abs(per_split["test"][lab] - 0.1 * n) <= 2, (lab, n, per_split)


EDGES = (['a "quoted", comma', "line\nbreak", "crlf\r\nend", "  padded  ", "   ", "", "NaN", "null", "\u2028sep",
          "zero\u200bwidth", "😀", "\ufeffbom", "1e5", "x"], ["pos", "neg"] * 7)


@SETTINGS
@given(tables())
@example(EDGES)
def test_csv_round_trip(table):
    check_round_trip(*table, ".csv")


@SETTINGS
@given(tables())
@example(EDGES)
def test_jsonl_round_trip(table):
    check_round_trip(*table, ".jsonl")


@SETTINGS
@given(st.integers(2, 5), st.integers(20, 50), st.randoms(use_true_random=False))
def test_integer_labels_keep_numeric_order_and_ids_are_consistent(k, n, rnd):
    """Labels 0..k-1 (written as 0, 1, ... 10 would sort before 2 as text) keep numeric order, and
    every row's id names its original label."""
    values = [i % k for i in range(n)]
    rnd.shuffle(values)
    values = [v * 5 for v in values]  # 0, 5, 10, ...: text order differs from numeric order
    texts = [f"row {i} value {v}" for i, v in enumerate(values)]
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "d.csv"
        write_csv(path, texts, [str(v) for v in values])
        ds = load_data(str(path))
    assert ds.labels == [str(5 * i) for i in range(k)]
    truth = dict(zip(texts, values, strict=True))
    for d in ds.splits.values():
        for text, label_id in zip(d["text"], d["label"], strict=True):
            assert ds.labels[label_id] == str(truth[text])


@SETTINGS
@given(tables(min_rows=30, max_rows=60), st.integers(0, 10_000))
def test_splits_are_a_deterministic_function_of_the_seed(table, seed):
    texts, labels = table
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "d.jsonl"
        write_jsonl(path, texts, labels)
        a, b = (load_data(str(path), seed=seed) for _ in range(2))
    for split in a.splits:
        assert a.splits[split]["text"] == b.splits[split]["text"]


# -- tokenisation and prediction on any text ---------------------------------------------------------


@pytest.fixture(scope="module")
def predictor(tiny_bert):
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from attnlab.inference import Predictor

    model = AutoModelForSequenceClassification.from_pretrained(tiny_bert)
    tok = AutoTokenizer.from_pretrained(tiny_bert)
    return Predictor(model, tok, ["negative", "positive"], max_length=32, batch_size=4, device="cpu")


LONG = st.tuples(TEXT, st.integers(1, 3000)).map(lambda p: p[0] * p[1])


@SETTINGS
@given(st.lists(st.one_of(TEXT, LONG), min_size=1, max_size=6))
def test_any_unicode_text_tokenises_truncates_and_predicts(predictor, texts):
    enc = predictor.tokenizer(texts, truncation=True, max_length=predictor.max_length)
    assert all(2 <= len(ids) <= predictor.max_length for ids in enc["input_ids"])  # [CLS] ... [SEP]
    from attnlab.data.text import text_problem

    if any(text_problem(t) for t in texts):  # nothing visible, or not valid Unicode: refused, never classified
        with pytest.raises(UserError, match=r"empty|Unicode"):
            predictor.predict(texts)
        return
    out = predictor.predict(texts)
    assert [r["text"] for r in out] == texts
    probs = np.array([[r["probabilities"][k] for k in predictor.labels] for r in out])
    assert np.isfinite(probs).all() and np.allclose(probs.sum(1), 1, atol=1e-5)
