"""Classic baselines in ``compare`` (TF-IDF + logistic regression, the VADER lexicon) and
``--models`` beyond BERT: tiny random DistilBERT and RoBERTa folders trained with full and LoRA,
all in one table; fitted baselines are saved without pickle and reused."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from conftest import write

from attnlab.cli import main
from attnlab.errors import UserError
from attnlab.experiments.baselines import _best_threshold, load_baseline, run_baseline, vader_label_roles

PICKLE_SUFFIXES = {".pkl", ".pickle", ".joblib", ".bin", ".pt", ".pth", ".npy"}


def assert_no_pickle(root: Path) -> None:
    for f in root.rglob("*"):
        if f.is_file():
            assert f.suffix not in PICKLE_SUFFIXES, f
            if f.suffix != ".safetensors":  # a safetensors header length may start with any byte
                assert not f.read_bytes()[:1] == b"\x80", f"{f} looks like a pickle"


@pytest.fixture(scope="module")
def slice_data(sst2_dir):
    from attnlab.data import load_data

    return load_data("sst2", data_dir=str(sst2_dir), max_train_samples=200, max_eval_samples=60, seed=42)


@pytest.fixture(scope="module")
def tiny_archs(tmp_path_factory) -> dict[str, Path]:
    """Random 2-layer DistilBERT and RoBERTa (hidden 32) with the minilm-l6 tokenizer, vocab sized to it."""
    import torch
    from transformers import (
        AutoTokenizer,
        DistilBertConfig,
        DistilBertForSequenceClassification,
        RobertaConfig,
        RobertaForSequenceClassification,
    )

    from attnlab.models import resolve_model

    tok = AutoTokenizer.from_pretrained(resolve_model("minilm-l6").path)
    root = tmp_path_factory.mktemp("archs")
    torch.manual_seed(0)
    models = {
        "tiny-distilbert": DistilBertForSequenceClassification(DistilBertConfig(
            vocab_size=tok.vocab_size, dim=32, n_layers=2, n_heads=2, hidden_dim=64, max_position_embeddings=130,
            pad_token_id=tok.pad_token_id)),
        "tiny-roberta": RobertaForSequenceClassification(RobertaConfig(
            vocab_size=tok.vocab_size, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
            intermediate_size=64, max_position_embeddings=132, type_vocab_size=1, pad_token_id=tok.pad_token_id)),
    }
    for name, model in models.items():
        model.save_pretrained(root / name)
        tok.save_pretrained(root / name)
    return {name: root / name for name in models}


def test_baselines_fit_save_and_reload(slice_data, tmp_path):
    rows = {name: run_baseline(name, slice_data, tmp_path, seed=42) for name in ("tfidf-lr", "vader")}
    test = slice_data.splits["test"]
    for name, row in rows.items():
        assert row["model"] == name and row["method"] == "baseline"
        assert 0.3 < row["test_accuracy"] <= 1 and 0 < row["test_macro_f1"] <= 1
        assert row["train_seconds"] > 0 and row["inference_sentences_per_second"] > 0
        assert row["checkpoint_mib"] > 0
        # the saved folder alone reproduces the test accuracy
        preds = load_baseline(row["run_dir"]).predict(list(test["text"]))
        assert np.mean(preds == np.asarray(test["label"])) == pytest.approx(row["test_accuracy"])
    tfidf, vader = rows["tfidf-lr"], rows["vader"]
    assert tfidf["trainable_params"] == tfidf["total_params"] > 100
    assert vader["trainable_params"] == 0 and vader["total_params"] > 7000 and vader["trainable_percent"] == 0
    assert "C = " in tfidf["notes"] and "threshold" in vader["notes"]
    assert sorted(p.name for p in (tmp_path / "tfidf-lr").iterdir()) == [
        "baseline.json", "vocabulary.json", "weights.safetensors"]
    assert_no_pickle(tmp_path)
    # the same rows again: reused, not refitted
    meta = tmp_path / "tfidf-lr" / "baseline.json"
    before = meta.stat().st_mtime_ns
    again = run_baseline("tfidf-lr", slice_data, tmp_path, seed=42)
    assert meta.stat().st_mtime_ns == before and again["test_accuracy"] == tfidf["test_accuracy"]


def test_vader_labels_and_threshold():
    assert vader_label_roles(["negative", "positive"]) == {"negative": 0, "positive": 1}
    assert vader_label_roles(["POS", "neg"]) == {"positive": 0, "negative": 1}
    assert vader_label_roles(["negative", "neutral", "positive"])["neutral"] == 1
    for labels in (["0", "1"], ["negative", "positive", "mixed"], ["positive", "pos"], ["sports", "politics"]):
        with pytest.raises(UserError, match="VADER") as err:
            vader_label_roles(labels)
        assert "\n" not in str(err.value)
    rng = np.random.default_rng(0)  # the O(n log n) threshold search agrees with trying every threshold
    for _ in range(20):
        scores = np.round(rng.uniform(-1, 1, 40), 1)
        pos = rng.random(40) < 0.5
        best = max(np.mean((scores > t) == pos) for t in [-1.01, *scores])
        assert np.mean((scores > _best_threshold(scores, pos)) == pos) == best


def test_compare_errors_are_one_line(tmp_path, sst2_dir, capsys):
    base = ["compare", "--data", "sst2", "--data-dir", str(sst2_dir), "-o", str(tmp_path / "c"),
            "--max-train-samples", "16", "--max-eval-samples", "8", "--no-progress"]
    assert main([*base, "--models", "none", "--baselines", "tfidf-lr,bogus"]) == 2
    err = capsys.readouterr().err.strip()
    assert "unknown baseline 'bogus'" in err and "\n" not in err
    assert main([*base, "--models", "none", "--baselines", "none"]) == 2
    assert "nothing to compare" in capsys.readouterr().err
    # labels VADER cannot read fail before anything is trained
    csv = write(tmp_path / "topics.csv", "text,label\n" + "".join(
        f"match report {i},sports\nelection news {i},politics\n" for i in range(20)))
    args = ["compare", "--data", str(csv), "-o", str(tmp_path / "t"), "--models", "minilm-l6", "--methods", "full",
            "--baselines", "vader", "--no-progress"]
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert "cannot map the labels" in err and "\n" not in err
    assert not (tmp_path / "t" / "minilm-l6-full").exists()


def test_compare_models_and_baselines_in_one_table(tmp_path, sst2_dir, tiny_archs, capsys):
    out = tmp_path / "cmp"
    models = ",".join(str(p) for p in tiny_archs.values())
    args = ["compare", "--data", "sst2", "--data-dir", str(sst2_dir), "--models", models, "--methods", "full,lora",
            "--baselines", "tfidf-lr,vader", "-o", str(out), "--max-train-samples", "32", "--max-eval-samples", "16",
            "--max-steps", "2", "--batch-size", "8", "--lora-r", "2", "--num-threads", "1", "--no-progress"]
    assert main(args) == 0
    printed = capsys.readouterr().out
    header = next(line for line in printed.splitlines() if line.startswith("| model |"))
    for title in ("test acc", "test macro-F1", "total params", "trainable params", "train wall s", "infer sent/s",
                  "size on disk MiB"):
        assert f"| {title} |" in header, title
    res = json.loads((out / "comparison.json").read_text())
    rows = {(r["model"], r["method"]): r for r in res["rows"]}
    assert set(rows) == {("tiny-distilbert", "full"), ("tiny-distilbert", "lora"), ("tiny-roberta", "full"),
                         ("tiny-roberta", "lora"), ("tfidf-lr", "baseline"), ("vader", "baseline")}
    for (_model, method), r in rows.items():
        assert r["inference_sentences_per_second"] > 0 and r["checkpoint_mib"] > 0 and r["total_params"] > 0
        if method == "lora":  # adapters on the encoder's linears, the head in full: a small share trains
            assert 0 < r["trainable_params"] < 0.01 * r["total_params"]
            assert r["speedup_vs_full"] > 0
    assert res["baselines"] == ["tfidf-lr", "vader"] and res["budget"]["train_rows"] == 32
    md = (out / "comparison.md").read_text()
    assert "| vader | baseline |" in md and "Baselines:" in md and "measured" in md
    for name in ("comparison.csv", "accuracy_vs_time.png", "accuracy_vs_params.png"):
        assert (out / name).stat().st_size > 0
    assert_no_pickle(out)
    # a second compare with the same settings reuses every run and baseline
    stamps = {p: p.stat().st_mtime_ns for p in [*out.glob("*/metrics.json"), *out.glob("*/baseline.json")]}
    assert len(stamps) == 6
    assert main(args) == 0
    assert all(p.stat().st_mtime_ns == t for p, t in stamps.items())
