"""Text and label columns found by what they hold when their names do not say (issue #20): the one
column of free text and the one column with few distinct values; the summary says which and why;
two columns that fit equally are a one-line error naming both."""

from __future__ import annotations

import json
import re

import pandas as pd
import pytest
from conftest import run_cli, write

from attnlab.data import load_data
from attnlab.data.files import detect_columns
from attnlab.errors import UserError

INTENTS = {"book_flight": "please book me a flight to {} on friday",
           "weather": "what will the weather be like in {} tomorrow",
           "play_music": "play some quiet music from {} for me"}
CITIES = ["paris", "rome", "oslo", "lima", "cairo", "tokyo", "quito", "dakar", "hanoi", "perth", "delhi", "sofia"]


def intent_rows() -> list[dict]:
    return [{"utterance": t.format(c), "intent": intent} for intent, t in INTENTS.items() for c in CITIES]


def review_rows() -> list[dict]:
    words = {1: "awful and boring", 2: "weak but watchable", 3: "fine, nothing special", 4: "really good fun",
             5: "a moving masterpiece"}
    return [{"body": f"review {i}: {words[s]} in every scene", "stars": s} for i in range(8) for s in words]


def test_utterance_intent_csv(tmp_path):
    f = write(tmp_path / "intents.csv", pd.DataFrame(intent_rows()).to_csv(index=False))
    ds = load_data(str(f))
    assert ds.labels == sorted(INTENTS)
    assert ds.columns["text"] == {"column": "utterance", "why": "named like a text column"}
    assert ds.columns["label"]["column"] == "intent"
    assert ds.columns["label"]["why"].startswith("the one column with few distinct values (3 in 36 rows")


def test_body_stars_jsonl_with_an_id_column(tmp_path):
    """No name helps for `msg`/`rating`; `id` (all distinct) is neither text nor a label."""
    rows = [{"id": i, "msg": r["body"], "rating": r["stars"]} for i, r in enumerate(review_rows())]
    f = write(tmp_path / "reviews.jsonl", "".join(json.dumps(r) + "\n" for r in rows))
    ds = load_data(str(f))
    assert ds.labels == ["1", "2", "3", "4", "5"]
    assert ds.columns["text"]["column"] == "msg" and "free text" in ds.columns["text"]["why"]
    assert ds.columns["label"]["column"] == "rating"
    total = sum(len(ds.splits[s]) for s in ds.splits)
    assert total == len(rows)


def test_flags_and_names_still_come_first(tmp_path):
    df = pd.DataFrame([{"note": r["body"], "text": r["body"] + " !", "stars": r["stars"], "label": r["stars"] % 2}
                       for r in review_rows()])
    c = detect_columns(df, None, None, "x.csv")
    assert (c.text, c.label) == ("text", "label")  # by name, though `note` is free text and `stars` has few values
    c = detect_columns(df, "note", "stars", "x.csv")
    assert (c.text, c.label) == ("note", "stars") and c.why["text"] == "given by --text-column"


@pytest.mark.parametrize("frame,needle", [
    (pd.DataFrame({"headline": [f"a long headline number {i}" for i in range(20)],
                   "abstract": [f"the abstract of paper {i} in words" for i in range(20)],
                   "y": [i % 2 for i in range(20)]}), "ambiguous text column: headline, abstract"),
    (pd.DataFrame({"utterance": [f"turn the lights {i} on please" for i in range(20)],
                   "intent": [i % 3 for i in range(20)], "domain": [i % 2 for i in range(20)]}),
     "ambiguous label column: intent (3 values), domain (2 values)"),
    (pd.DataFrame({"code": [f"x{i}" for i in range(20)], "intent": [i % 3 for i in range(20)]}), "no text column"),
])
def test_ambiguity_and_absence_are_one_line_errors(frame, needle):
    with pytest.raises(UserError, match=re.escape(needle)) as exc:
        detect_columns(frame, None, None, "f.csv")
    assert "\n" not in exc.value.one_line() and "--" in exc.value.one_line()


def test_data_summary_says_which_columns_and_why(tmp_path, capsys):
    f = write(tmp_path / "intents.csv", pd.DataFrame(intent_rows()).to_csv(index=False))
    code, out, err = run_cli(["data", "--data", str(f)], capsys)
    assert code == 0, err
    assert "text column: utterance (named like a text column)" in out
    assert "label column: intent (the one column with few distinct values (3 in 36 rows))" in out


@pytest.mark.train
@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
def test_trains_on_unusual_columns_without_flags(tmp_path, tiny_bert, capsys, fmt):
    rows = [{"words_said": r["utterance"], "goal": r["intent"]} for r in intent_rows()]
    df = pd.DataFrame(rows)
    f = tmp_path / f"data.{fmt}"
    write(f, df.to_csv(index=False) if fmt == "csv" else df.to_json(orient="records", lines=True))
    out = tmp_path / "run"
    code, _, err = run_cli(["train", "--data", str(f), "--model", str(tiny_bert), "--max-steps", "2",
                                 "--batch-size", "8", "--num-threads", "1", "--no-progress", "-o", str(out)], capsys)
    assert code == 0, err
    assert json.loads((out / "labels.json").read_text())["labels"] == sorted(INTENTS)
