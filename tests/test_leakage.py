"""Leakage and coverage warnings (issue #20): texts that are in two splits, classes train lacks;
one line each, in `attnlab data`'s summary and logged before training."""

from __future__ import annotations

import logging

import pytest
from conftest import run_cli, write
from datasets import Dataset, DatasetDict

from attnlab.data import TextDataset, load_data
from attnlab.data.checks import duplicate_texts


def split_folder(tmp_path, test_extra: list[str]):
    rows = lambda texts: "text,label\n" + "".join(f"{t},{'pos' if i % 2 else 'neg'}\n" for i, t in enumerate(texts))  # noqa: E731
    train = [f"training sentence number {i}" for i in range(20)]
    write(tmp_path / "d" / "train.csv", rows(train))
    write(tmp_path / "d" / "validation.csv", rows([f"validation sentence {i}" for i in range(6)]))
    write(tmp_path / "d" / "test.csv", rows([f"test sentence {i}" for i in range(6)] + test_extra))
    return tmp_path / "d"


def test_texts_in_two_splits_are_counted_with_examples(tmp_path):
    leaked = ["training sentence number 3", "training sentence number 7", "training sentence number 9",
              "training sentence number 11", "training sentence number 3"]
    ds = load_data(str(split_folder(tmp_path, leaked)))
    [d] = duplicate_texts(dict(ds.splits))
    assert d["splits"] == ["train", "test"] and d["rows"] == 5 and d["distinct"] == 4
    assert len(d["examples"]) == 3 and set(d["examples"]) <= set(leaked)
    [w] = [w for w in ds.summary(log_warnings=False)["warnings"] if w.startswith("leakage")]
    assert w.startswith("leakage: 5 of 11 test rows (4 distinct texts) are also in train, e.g. 'training sentence")
    assert "\n" not in w


def test_no_leakage_no_warning(tmp_path):
    ds = load_data(str(split_folder(tmp_path, [])))
    assert duplicate_texts(dict(ds.splits)) == []
    assert not [w for w in ds.summary(log_warnings=False)["warnings"] if "leakage" in w or "classes" in w]


def test_duplicates_inside_one_file_leak_through_the_carved_splits(tmp_path):
    text = "text,label\n" + "".join(f"the same review {i % 30},{'a' if i % 2 else 'b'}\n" for i in range(300))
    ds = load_data(str(write(tmp_path / "dups.csv", text)))
    pairs = {tuple(d["splits"]) for d in duplicate_texts(dict(ds.splits))}
    assert ("train", "test") in pairs and ("train", "validation") in pairs


def _dataset(train: list[int], test: list[int]) -> TextDataset:
    def split(name, ids):
        return Dataset.from_dict({"text": [f"{name} {i}-{k}" for k, i in enumerate(ids)], "label": ids})
    return TextDataset(DatasetDict({"train": split("train", train), "validation": split("validation", train[:2]),
                                    "test": split("test", test)}),
                       ["cat", "dog", "bird"], "mine")


def test_classes_missing_from_train():
    ds = _dataset([0, 1, 0, 1], [0, 2, 2])
    warnings = ds.summary(log_warnings=False)["warnings"]
    assert "1 of 3 classes have no training rows (bird): the model cannot learn them" in warnings
    assert "classes in test but absent from train: bird (2 rows it cannot get right)" in warnings
    assert not any("validation but absent" in w for w in warnings)


def test_summary_logs_each_warning_as_one_line(caplog):
    """What training calls (``summary(tokenizer)``) logs the warnings before it trains."""
    ds = _dataset([0, 1, 0, 1], [0, 2, 2])
    with caplog.at_level(logging.WARNING, logger="attnlab"):
        warnings = ds.summary()["warnings"]
    logged = [r.getMessage() for r in caplog.records if r.name.startswith("attnlab.data")]
    assert logged == [f"mine: {w}" for w in warnings if "carved" not in w]
    assert len(logged) == 2 and all("\n" not in m for m in logged)


def test_data_command_prints_warnings_once(tmp_path, capsys):
    folder = split_folder(tmp_path, ["training sentence number 1"])
    code, out, err = run_cli(["data", "--data", str(folder)], capsys)
    assert code == 0, err
    assert out.count("warning: leakage: 1 of 7 test rows (1 distinct text) are also in train") == 1
    assert "leakage" not in err  # printed with the summary, not logged as well


@pytest.mark.train
def test_training_warns_before_it_trains(tmp_path, tiny_bert, capsys):
    folder = split_folder(tmp_path, ["training sentence number 1", "training sentence number 2"])
    code, _, err = run_cli(["train", "--data", str(folder), "--model", str(tiny_bert), "--max-steps", "1",
                            "--batch-size", "8", "--num-threads", "1", "--no-progress", "-o", str(tmp_path / "run")],
                           capsys)
    assert code == 0, err
    [line] = [ln for ln in err.splitlines() if "leakage" in ln]
    assert line.startswith("WARNING attnlab.data.dataset: ") and "2 of 8 test rows" in line
