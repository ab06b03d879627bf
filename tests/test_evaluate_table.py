"""`attnlab evaluate` prints tables a person reads (accuracy, macro-F1, per-class precision/recall/F1,
the confusion matrix) and JSON for a program with --json; --output still writes the JSON file."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import run_cli, write
from sklearn.metrics import confusion_matrix, f1_score

from attnlab.evaluation.metrics import classification_metrics
from attnlab.evaluation.report import confusion_table, format_metrics, per_class_table


def metrics() -> dict:
    truth = np.array([0, 0, 0, 1, 1, 2, 2, 2, 2])
    preds = np.array([0, 1, 0, 1, 1, 2, 0, 2, 2])
    return classification_metrics(truth, preds, ["cat", "dog", "bird"]) | {"run": "runs/x", "data": "d.csv",
                                                                             "split": "all"}


def test_tables_hold_the_numbers():
    m = metrics()
    lines = per_class_table(m).splitlines()
    assert lines[0] == "| class | precision | recall | F1 | support |"
    assert lines[2] == "| cat | 0.6667 | 0.6667 | 0.6667 | 3 |"  # 2 of 3 cats found; 2 of 3 "cat" calls right
    macro = f1_score([0, 0, 0, 1, 1, 2, 2, 2, 2], [0, 1, 0, 1, 1, 2, 0, 2, 2], average="macro")
    assert lines[-1].startswith("| (macro) |") and f"{macro:.4f}" in lines[-1] and lines[-1].endswith("| 9 |")
    cm = confusion_matrix([0, 0, 0, 1, 1, 2, 2, 2, 2], [0, 1, 0, 1, 1, 2, 0, 2, 2])
    rows = confusion_table(m).splitlines()
    assert rows[0] == "| true \\ predicted | cat | dog | bird |"
    assert [r.split(" | ")[1:] for r in rows[2:]] == [[*map(str, cm[i, :-1]), f"{cm[i, -1]} |"] for i in range(3)]


def test_format_is_short_and_headed():
    text = format_metrics(metrics())
    first, second = text.splitlines()[:2]
    assert first == "run: runs/x  data: d.csv  split: all  examples: 9"
    assert second.startswith("accuracy 0.7778  macro-F1 ")
    assert "confusion matrix (rows: true class, columns: predicted class)" in text
    assert len(text.splitlines()) < 20  # 3 classes: a screenful, not one number per line


@pytest.mark.train
def test_evaluate_cli_table_json_and_output(tiny_bert_runs, tmp_path, capsys):
    f = write(tmp_path / "mine.csv", "text,label\ngreat film,positive\nterrible film,negative\nfine,positive\n")
    run = str(tiny_bert_runs["full"])
    code, out, err = run_cli(["evaluate", run, "--data", str(f)], capsys)
    assert code == 0, err
    assert "| class | precision | recall | F1 | support |" in out and "| true \\ predicted |" in out
    assert "examples: 3" in out
    code, out, err = run_cli(["evaluate", run, "--data", str(f), "--json"], capsys)
    assert code == 0, err
    m = json.loads(out)
    assert m["examples"] == 3 and len(m["confusion_matrix"]) == 2
    target = tmp_path / "m.json"
    code, out, err = run_cli(["evaluate", run, "--data", str(f), "--output", str(target)], capsys)
    assert code == 0, err
    assert json.loads(target.read_text())["confusion_matrix"] == m["confusion_matrix"]
    assert "| class |" in out  # the table still goes to the screen
