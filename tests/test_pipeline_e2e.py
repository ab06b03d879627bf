"""End to end on a tiny SST-2 slice: train (full, lora, head) -> predict -> evaluate -> merge ->
compare, and the saved artifacts load with plain transformers / peft."""

import json
import subprocess
import sys

import numpy as np
import pytest
import torch
from agreement import assert_rows_distinguishable, assert_same_predictions
from conftest import TINY

from attnlab.cli import main


def test_run_directory_contract(tiny_runs):
    for method, path in tiny_runs.items():
        for name in ("config.yaml", "labels.json", "metrics.json", "history.jsonl", "README.md",
                     "confusion_matrix.png", "loss.png", "model"):
            assert (path / name).exists(), (method, name)
        assert not (path / "checkpoints").exists()
        m = json.loads((path / "metrics.json").read_text())
        assert m["method"] == method
        for split in ("validation", "test"):
            assert 0 <= m[split]["accuracy"] <= 1
            assert np.asarray(m[split]["confusion_matrix"]).sum() == m[split]["examples"] == 24
        assert m["params"]["trainable"] <= m["params"]["total"]
        assert m["training"]["epoch_seconds"] and m["checkpoint_bytes"] > 0 and m["peak_rss_bytes"] > 0
        assert "torch" in m["versions"] and m["hardware"]["cpu_cores"] >= 1
        history = [json.loads(line) for line in (path / "history.jsonl").read_text().splitlines()]
        assert any("loss" in h for h in history) and any("eval_accuracy" in h for h in history)
        assert all(h["wall_seconds"] >= 0 for h in history)  # streamed times survive the final rewrite
    pct = {k: json.loads((p / "metrics.json").read_text())["params"]["trainable_percent"] for k, p in tiny_runs.items()}
    assert pct["head"] < pct["lora"] < 5 < pct["full"] == 100


def test_plain_transformers_and_peft_load_the_runs(tiny_runs):
    from peft import AutoPeftModelForSequenceClassification, PeftModel
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from attnlab import load

    texts = ["a moving and funny film", "a dull, lifeless mess", "fine"]
    for method in ("full",):  # head pools by mean: tests/test_pooling.py runs the documented lines for that
        model = AutoModelForSequenceClassification.from_pretrained(tiny_runs[method] / "model").eval()
        tok = AutoTokenizer.from_pretrained(tiny_runs[method] / "model")
        with torch.no_grad():
            probs = torch.softmax(model(**tok(texts, padding=True, return_tensors="pt")).logits, -1).numpy()
        assert_rows_distinguishable(probs)
        assert_same_predictions(load(str(tiny_runs[method]), precision="fp32").predict_proba(texts), probs)
        assert_same_predictions(load(str(tiny_runs[method]), precision="bf16").predict_proba(texts), probs, "bf16")
    lora_dir = tiny_runs["lora"] / "model"
    peft_model = AutoPeftModelForSequenceClassification.from_pretrained(lora_dir, num_labels=2).eval()
    assert isinstance(peft_model, PeftModel)
    tok = AutoTokenizer.from_pretrained(lora_dir)
    with torch.no_grad():
        probs = torch.softmax(peft_model(**tok(texts, padding=True, return_tensors="pt")).logits, -1).numpy()
    assert_rows_distinguishable(probs)
    merged = load(str(tiny_runs["lora"]), precision="fp32").predict_proba(texts)  # merged adapters by default
    unmerged = load(str(tiny_runs["lora"]), merge=False, precision="fp32").predict_proba(texts)
    assert_same_predictions(merged, probs)
    assert_same_predictions(unmerged, probs)


def test_predict_cli(tiny_runs, tmp_path, capsys):
    assert main(["predict", str(tiny_runs["lora"]), "a great film", "awful"]) == 0
    lines = [json.loads(x) for x in capsys.readouterr().out.strip().splitlines()]
    assert [r["text"] for r in lines] == ["a great film", "awful"]
    for r in lines:
        assert r["label"] in ("negative", "positive")
        assert abs(sum(r["probabilities"].values()) - 1) < 1e-5 and r["score"] == max(r["probabilities"].values())
    txt = tmp_path / "in.txt"
    txt.write_text("one\n\ntwo\nthree\n")
    assert main(["predict", str(tiny_runs["full"]), "--input", str(txt)]) == 0
    assert len(capsys.readouterr().out.strip().splitlines()) == 3
    jl = tmp_path / "in.jsonl"
    jl.write_text('{"text": "fine"}\n{"text": "bad"}\n')
    assert main(["predict", str(tiny_runs["head"]), "-i", str(jl)]) == 0
    assert len(capsys.readouterr().out.strip().splitlines()) == 2


def test_evaluate_cli(tiny_runs, sst2_dir, tmp_path, capsys):
    out = tmp_path / "eval.json"
    assert main(["evaluate", str(tiny_runs["full"]), "--data", "sst2", "--data-dir", str(sst2_dir),
                 "--split", "validation", "--max-samples", "20", "--output", str(out)]) == 0
    capsys.readouterr()
    m = json.loads(out.read_text())
    assert m["examples"] == 20 and set(m["per_class"]) == {"negative", "positive"}
    f = tmp_path / "mine.csv"
    f.write_text("text,label\ngreat,positive\nterrible,negative\nfine,positive\n")
    assert main(["evaluate", str(tiny_runs["lora"]), "--data", str(f), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["examples"] == 3


def test_merge_cli_gives_same_predictions(tiny_runs, tmp_path):
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from attnlab import load

    out = tmp_path / "merged"
    assert main(["merge", str(tiny_runs["lora"]), str(out)]) == 0
    assert not (out / "adapter_config.json").exists() and (out / "model.safetensors").exists()
    model = AutoModelForSequenceClassification.from_pretrained(out).eval()
    tok = AutoTokenizer.from_pretrained(out)
    texts = ["not bad at all", "worst film of the year"]
    with torch.no_grad():
        probs = torch.softmax(model(**tok(texts, padding=True, return_tensors="pt")).logits, -1).numpy()
    assert_same_predictions(probs, load(str(tiny_runs["lora"]), merge=False, precision="fp32").predict_proba(texts))
    assert main(["merge", str(tiny_runs["lora"]), str(out)]) == 2  # not empty, no --overwrite


def test_compare_cli(sst2_dir, tmp_path, capsys):
    out = tmp_path / "cmp"
    args = ["compare", "--data", "sst2", "--data-dir", str(sst2_dir), "--methods", "full,lora", "-o", str(out),
            "--max-train-samples", "32", "--max-eval-samples", "16", "--epochs", "1", "--batch-size", "16",
            "--no-progress"]
    assert main(args) == 0
    text = capsys.readouterr().out
    assert "| minilm-l6 | full |" in text or "| minilm-l6 | lora |" in text
    res = json.loads((out / "comparison.json").read_text())
    assert {r["method"] for r in res["rows"]} == {"full", "lora"}
    for r in res["rows"]:
        assert r["inference_sentences_per_second"] > 0 and r["epoch_seconds"] > 0
        assert r["speedup_vs_full"] > 0
    for name in ("comparison.md", "comparison.csv", "accuracy_vs_time.png", "accuracy_vs_params.png"):
        assert (out / name).stat().st_size > 0


def test_train_cli_and_refuses_to_clobber(sst2_dir, tmp_path, capsys):
    out = tmp_path / "run"
    args = ["train", "--data", "sst2", "--data-dir", str(sst2_dir), "--method", "head", "-o", str(out),
            "--max-train-samples", "24", "--max-eval-samples", "12", "--max-steps", "2", "--no-progress"]
    assert main(args) == 0
    assert "test accuracy" in capsys.readouterr().out
    before = (out / "metrics.json").read_bytes()
    assert main(args) == 2
    assert "already holds a finished run" in capsys.readouterr().err
    assert (out / "metrics.json").read_bytes() == before


def test_resume_continues_from_checkpoint(sst2_dir, tmp_path):
    """A run stopped after a checkpoint continues with --resume (here: more epochs)."""
    from attnlab.training import TrainConfig
    from attnlab.training.train import train

    base = dict(data="sst2", data_dir=str(sst2_dir), method="head", output_dir=str(tmp_path / "r"),
                max_train_samples=32, max_eval_samples=8, batch_size=16, keep_checkpoints=True,
                early_stopping_patience=None)
    train(TrainConfig.from_sources(None, epochs=1.0, **base), progress=False)
    run = train(TrainConfig.from_sources(None, epochs=2.0, **base), resume=True, progress=False)
    assert run.metrics["training"]["steps"] == 4 and run.metrics["training"]["resumed"]


def test_user_errors_are_one_line_without_traceback(tmp_path, tiny_runs):
    cases = [
        ["train", "-o", str(tmp_path / "a"), "--data", str(tmp_path / "missing.csv")],
        ["train", "-o", str(tmp_path / "b"), "--method", "prefix"],
        ["train", "-o", str(tmp_path / "c"), "--model", "no/such/model/id"],
        ["train", "-o", str(tmp_path / "d"), "--learning-rate", "3"],
        ["predict", str(tmp_path), "hello"],
        ["predict", str(tiny_runs["full"]), "  "],
    ]
    for args in cases:
        proc = subprocess.run([sys.executable, "-m", "attnlab.cli", *args], capture_output=True, text=True)
        assert proc.returncode == 2, (args, proc.stderr)
        err = proc.stderr.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("error: "), (args, proc.stderr)
        assert "Traceback" not in proc.stderr
    for d in "abcd":
        assert not (tmp_path / d).exists()  # nothing half-written


@pytest.mark.parametrize("method", ["full", "lora"])
def test_tiny_random_bert_from_local_folder(tmp_path, sst2_dir, method):
    """Any local HF folder works as --model: here a tiny random BERT saved in the test."""
    from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification

    from attnlab.models import resolve_model
    from attnlab.training import TrainConfig
    from attnlab.training.train import train

    folder = tmp_path / "tiny-bert"
    cfg = BertConfig(vocab_size=30522, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                     intermediate_size=64)
    BertForSequenceClassification(cfg).save_pretrained(folder)
    AutoTokenizer.from_pretrained(resolve_model("minilm-l6").path).save_pretrained(folder)
    run = train(TrainConfig.from_sources(None, data="sst2", data_dir=str(sst2_dir), model=str(folder), method=method,
                                         output_dir=str(tmp_path / "run"), **TINY), progress=False)
    assert run.metrics["model"] == "tiny-bert"
