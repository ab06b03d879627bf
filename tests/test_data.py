import json

import pandas as pd
import pytest
from conftest import write

from attnlab.data import load_data, load_eval_split
from attnlab.data.dataset import format_summary
from attnlab.errors import UserError


def test_csv_detects_columns_and_string_labels(tiny_csv):
    ds = load_data(str(tiny_csv))
    assert ds.labels == ["neg", "pos"]
    sizes = {s: len(ds.splits[s]) for s in ds.splits}
    assert sizes == {"train": 48, "validation": 6, "test": 6}
    for split in ds.splits.values():  # stratified: both classes everywhere
        assert set(split["label"]) == {0, 1}
    # seeded: the same call gives the same split
    assert load_data(str(tiny_csv)).splits["test"]["text"] == ds.splits["test"]["text"]
    # no text appears in two splits
    seen = [set(ds.splits[s]["text"]) for s in ds.splits]
    assert not (seen[0] & seen[1] or seen[0] & seen[2] or seen[1] & seen[2])


@pytest.mark.parametrize("fmt", ["tsv", "jsonl", "json", "parquet"])
def test_other_formats(tmp_path, fmt):
    df = pd.DataFrame({"text": [f"text {i} \"quoted\"" for i in range(40)], "label": [i % 3 for i in range(40)]})
    path = tmp_path / f"d.{fmt}"
    if fmt == "tsv":
        df.to_csv(path, sep="\t", index=False, quoting=3)
    elif fmt == "jsonl":
        df.to_json(path, orient="records", lines=True)
    elif fmt == "json":
        df.to_json(path, orient="records")
    else:
        df.to_parquet(path)
    ds = load_data(str(path))
    assert ds.labels == ["0", "1", "2"]
    assert sum(len(s) for s in ds.splits.values()) == 40
    assert any('"quoted"' in t for t in ds.splits["train"]["text"])


def test_folder_of_splits_is_used_as_given(tmp_path):
    for split, n in (("train", 20), ("dev", 6), ("test", 8)):
        rows = [{"sentence": f"{split} {i}", "label": ["a", "b"][i % 2]} for i in range(n)]
        write(tmp_path / f"{split}.jsonl", "\n".join(json.dumps(r) for r in rows))
    ds = load_data(str(tmp_path))
    assert [len(ds.splits[s]) for s in ("train", "validation", "test")] == [20, 6, 8]
    assert ds.notes == []


def test_empty_texts_dropped_and_counted(tmp_path):
    text = "text,label\n" + "".join(f"t{i},{i % 2}\n" for i in range(30)) + ",1\n   ,0\n"
    ds = load_data(str(write(tmp_path / "d.csv", text)))
    assert sum(ds.dropped.values()) == 2
    assert "dropped 2 rows" in format_summary(ds.summary())


def test_sst2_local(sst2_dir):
    ds = load_data("sst2", data_dir=str(sst2_dir))
    assert [len(ds.splits[s]) for s in ("train", "validation", "test")] == [67349, 872, 1821]
    assert ds.labels == ["negative", "positive"]
    small = load_data("sst2", data_dir=str(sst2_dir), max_train_samples=40, max_eval_samples=10)
    assert len(small.splits["train"]) == 40 and len(small.splits["test"]) == 10


def test_movie_snippets():
    ds = load_data("movie-snippets")
    total = sum(len(s) for s in ds.splits.values())
    neutral = ds.dropped["rated exactly 0 (neutral)"]
    assert total + neutral == 10605 and neutral > 0
    assert ds.labels == ["negative", "positive"]


def test_summary_has_token_lengths_and_imbalance_warning(tmp_path):
    from transformers import AutoTokenizer

    from attnlab.models import resolve_model

    text = "text,label\n" + "".join(f"word {i},{'a' if i % 10 else 'b'}\n" for i in range(100))
    ds = load_data(str(write(tmp_path / "d.csv", text)))
    s = ds.summary(AutoTokenizer.from_pretrained(resolve_model("minilm-l6").path))
    assert s["token_length_percentiles"]["p50"] >= 3
    assert any("imbalance" in w for w in s["warnings"])


@pytest.mark.parametrize("content,name,needle", [
    ("", "empty.csv", "file is empty"),
    ("a,b\n1,2\n", "x.xlsx", "unknown file format"),
    ("words,stars\nok,1\nbad,2\n", "nocol.csv", "no text column"),
    ("review,stars\nok,1\nbad,2\n", "nolabel.csv", "no label column"),
    ("text,sentence,label\na,b,1\nc,d,0\n", "amb.csv", "ambiguous text column"),
    ("text,label\n" + "good,1\n" * 20, "one.csv", "only one label"),
    ("text,label\ngood,1\nbad,\nok,0\n", "nan.csv", "have no label"),
    ("text,label\n\"unclosed,1\n", "broken.csv", "could not parse"),
])
def test_bad_files(tmp_path, content, name, needle):
    with pytest.raises(UserError, match=needle):
        load_data(str(write(tmp_path / name, content)))


def test_missing_file_and_unknown_name():
    with pytest.raises(UserError, match="no data set or file named"):
        load_data("no-such-data")
    with pytest.raises(UserError, match=r"between 0 and 0\.5"):
        load_data("sst2", val_fraction=0.9)


def test_not_utf8(tmp_path):
    p = tmp_path / "latin.csv"
    p.write_bytes("text,label\ncaf\xe9,1\nbad,0\n".encode("latin-1"))
    with pytest.raises(UserError, match="not valid UTF-8"):
        load_data(str(p))


def test_eval_split_rejects_unseen_labels(tmp_path):
    p = write(tmp_path / "e.csv", "text,label\ngood,positive\nbad,negative\nmeh,neutral\n")
    with pytest.raises(UserError, match="never saw"):
        load_eval_split(str(p), ["negative", "positive"])
    q = write(tmp_path / "ids.csv", "text,label\ngood,1\nbad,0\n")
    assert load_eval_split(str(q), ["negative", "positive"])["label"] == [1, 0]


def test_tiny_split_keeps_class_shares_when_sklearn_cannot_stratify():
    """3 rows to carve and 4 classes: sklearn refuses to stratify; the fallback still follows each
    class's share (largest remainders) instead of drawing at random (which once gave 3 of one class)."""
    import numpy as np

    from attnlab.data.splits import stratified_split

    labels = np.array([0] * 9 + [1] * 8 + [2] * 2 + [3] * 2)
    keep, rest = stratified_split(labels, 0.1, seed=7)
    assert np.bincount(labels[rest], minlength=4).tolist() == [2, 1, 0, 0]
    assert sorted([*keep, *rest]) == list(range(len(labels)))
