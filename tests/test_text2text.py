"""Text-to-text classification (``--task text2text``): a tiny random T5 writes the label word.

No T5 weights or SentencePiece tokenizer are reachable offline, so the model is a random 2-layer
T5 (d_model 32) built here and saved with the packaged minilm-l6 WordPiece tokenizer (its [PAD]
starts the decoder, its [SEP] ends a target). The runs train 4 steps on 32 SST-2 rows: these tests
check the machinery (run directory, scoring, predict, merge, errors), not accuracy."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from agreement import assert_same_accuracy, assert_same_predictions
from conftest import write

from attnlab.cli import build_parser, config_from_args, main

# fp32 on every machine kind: the tests below recompute the evaluation's loss to 1e-4
TINY = dict(max_steps=4, batch_size=8, eval_batch_size=16, lora_r=2, num_threads=1, text_prefix="sst2 sentence: ",
            precision="fp32")


@pytest.fixture(scope="module")
def tiny_t5(tmp_path_factory):
    from transformers import AutoTokenizer, T5Config, T5ForConditionalGeneration

    from attnlab.models import resolve_model

    folder = tmp_path_factory.mktemp("tiny-t5")
    tok = AutoTokenizer.from_pretrained(resolve_model("minilm-l6").path,
                                        model_input_names=["input_ids", "attention_mask"])  # no token_type_ids
    cfg = T5Config(vocab_size=tok.vocab_size, d_model=32, d_kv=16, d_ff=64, num_layers=2, num_decoder_layers=2,
                   num_heads=2, pad_token_id=tok.pad_token_id, eos_token_id=tok.sep_token_id,
                   decoder_start_token_id=tok.pad_token_id)
    torch.manual_seed(0)
    T5ForConditionalGeneration(cfg).save_pretrained(folder)
    tok.save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def runs(tmp_path_factory, tiny_t5, sst2_dir):
    """Finished full and LoRA text2text runs of ``tiny_t5`` (SST-2 loaded once for both)."""
    from attnlab.training import TrainConfig
    from attnlab.training.build import load_config_data
    from attnlab.training.train import train

    root = tmp_path_factory.mktemp("t2t-runs")
    threads, out = torch.get_num_threads(), {}
    base = dict(data="sst2", data_dir=str(sst2_dir), model=str(tiny_t5), task="text2text", max_train_samples=32,
                max_eval_samples=16, **TINY)
    data = load_config_data(TrainConfig.from_sources(None, **base))
    for method in ("full", "lora"):
        cfg = TrainConfig.from_sources(None, **base, method=method, output_dir=str(root / method))
        out[method] = train(cfg, data=data, progress=False).path
    torch.set_num_threads(threads)
    return out | {"data": data}


def test_run_directory_and_metrics(runs):
    from attnlab.training.rundir import open_run

    for method in ("full", "lora"):
        run = open_run(runs[method])
        m = run.metrics
        assert run.config["task"] == m["task"] == "text2text" and run.config["text_prefix"] == "sst2 sentence: "
        assert m["text2text"]["label_tokens"]["positive"] == ["[CLS]", "positive", "[SEP]"]
        for split in ("validation", "test"):
            assert 0 <= m[split]["accuracy"] <= 1 and 0 <= m[split]["macro_f1"] <= 1
            assert 0 <= m[split]["generation_exact_match"] <= 1
            assert np.array(m[split]["confusion_matrix"]).sum() == m[split]["examples"]
        assert "text2text" in (run.path / "README.md").read_text()
    assert (runs["full"] / "model" / "model.safetensors").is_file()
    assert (runs["lora"] / "model" / "adapter_model.safetensors").is_file()


def test_inference_scores_what_training_evaluated(runs):
    """The saved run, reloaded, gives the validation loss and accuracy training recorded: the
    predictor scores the label words exactly as the Trainer's evaluation did."""
    from attnlab.inference import Predictor
    from attnlab.models.seq2seq import label_targets

    val = runs["data"].splits["validation"]
    for method in ("full", "lora"):
        p = Predictor.from_run(runs[method], merge=False, precision="fp32")
        assert p.run.metrics["training"]["precision"] == "fp32"
        enc = p.tokenizer([p.prefix + t for t in val["text"]], padding=True, return_tensors="pt")
        with torch.no_grad():
            scores = p._logits(enc)  # (N, K) label log-likelihoods
        y = torch.tensor(val["label"])
        n_tokens = sum(len(label_targets(p.tokenizer, p.labels)[i]) for i in y.tolist())
        loss = float(-scores[torch.arange(len(y)), y].sum() / n_tokens)
        m = p.run.metrics["validation"]
        assert loss == pytest.approx(m["loss"], rel=1e-4)
        assert_same_accuracy(torch.softmax(scores, -1).numpy(), y.numpy(), m["accuracy"])


def test_predict_labels_and_probabilities(runs):
    import attnlab
    from attnlab.inference.text2text import Text2TextPredictor

    texts = ["a gorgeous, moving film", "a dull and tired mess", "fine"]
    p = attnlab.load(str(runs["lora"]))
    assert isinstance(p, Text2TextPredictor)
    rows = p.predict(texts)
    assert [r["text"] for r in rows] == texts
    for r in rows:
        assert r["label"] in ("negative", "positive")
        assert sum(r["probabilities"].values()) == pytest.approx(1.0, abs=1e-5)
        assert r["score"] == max(r["probabilities"].values())
    one = p.predict_proba([texts[1]])[0]  # one text skips batching: same numbers
    assert np.allclose(one, p.predict_proba(texts)[1], atol=1e-5)


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_lora_adapter_targets_and_merge(runs, tmp_path, capsys, precision):
    from transformers import AutoModelForSeq2SeqLM

    from attnlab.inference import Predictor
    from attnlab.inference.text2text import Text2TextPredictor

    adapter = json.loads((runs["lora"] / "model" / "adapter_config.json").read_text())
    assert adapter["task_type"] == "SEQ_2_SEQ_LM"
    assert set(adapter["target_modules"]) == {"q", "k", "v", "o", "wi", "wo"}  # every linear but lm_head
    texts = ["a gorgeous, moving film", "a dull and tired mess"]
    unmerged = Predictor.from_run(runs["lora"], merge=False, precision=precision).predict_proba(texts)
    assert main(["merge", str(runs["lora"]), str(tmp_path / "merged")]) == 0
    assert "AutoModelForSeq2SeqLM" in capsys.readouterr().out
    merged = AutoModelForSeq2SeqLM.from_pretrained(tmp_path / "merged")  # a plain transformers folder
    p = Text2TextPredictor(merged, Predictor.from_run(runs["lora"]).tokenizer, ["negative", "positive"],
                           prefix="sst2 sentence: ", precision=precision)
    assert_same_predictions(p.predict_proba(texts), unmerged, precision)


def test_cli_flags_predict_and_evaluate(runs, tmp_path, capsys):
    a = build_parser().parse_args(["train", "-o", str(tmp_path / "r"), "--task", "text2text", "--text-prefix",
                                   "review: ", "--model", "t5-small", "--method", "full"])
    cfg = config_from_args(a)
    assert (cfg.task, cfg.text_prefix) == ("text2text", "review: ")
    assert main(["predict", str(runs["full"]), "a gorgeous film", "a tedious mess"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert len(rows) == 2 and all(r["label"] in ("negative", "positive") for r in rows)
    csv = write(tmp_path / "eval.csv", "sentence,label\n\"a gorgeous film\",positive\n\"a tedious mess\",negative\n"
                "\"warm and funny\",positive\n\"flat and dull\",negative\n")
    assert main(["evaluate", str(runs["full"]), "--data", str(csv), "--json"]) == 0
    m = json.loads(capsys.readouterr().out)
    assert m["examples"] == 4 and 0 <= m["accuracy"] <= 1


def test_user_errors(tmp_path, capsys):
    from attnlab.errors import UserError
    from attnlab.training import TrainConfig

    out = str(tmp_path / "r")
    assert main(["train", "-o", out, "--task", "text2text", "--model", "minilm-l6", "--method", "lora"]) == 2
    err = capsys.readouterr().err.strip()
    assert "model minilm-l6 is not an encoder-decoder; text2text needs a seq2seq model such as t5-small" in err
    assert len(err.splitlines()) == 1
    assert main(["train", "-o", out, "--task", "text2text", "--method", "head"]) == 2
    assert "--method full or lora" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:  # argparse choices
        main(["train", "-o", out, "--task", "seq2seq"])
    assert exc.value.code == 2
    with pytest.raises(UserError, match="task"):
        TrainConfig.from_sources(None, task="seq2seq")


def test_t5_with_classification_task_still_works(runs, tiny_t5, tmp_path):
    """``--task classification`` (the default) on a T5 trains T5ForSequenceClassification."""
    from attnlab.inference import Predictor
    from attnlab.training import TrainConfig
    from attnlab.training.train import train

    cfg = TrainConfig.from_sources(None, model=str(tiny_t5), method="lora", output_dir=str(tmp_path / "cls"),
                                   **(TINY | {"max_steps": 2, "text_prefix": None}))
    run = train(cfg, data=runs["data"], progress=False)
    assert run.metrics["task"] == "classification" and 0 <= run.metrics["test"]["accuracy"] <= 1
    assert Predictor.from_run(run.path).predict(["a fine film"])[0]["label"] in ("negative", "positive")


def test_label_scoring_matches_separate_forward_passes(tiny_t5):
    """``label_log_likelihoods`` (encoder once, B*K decoder rows) equals scoring each label alone
    with the model's own loss; ``class_ids`` recovers the class of padded targets."""
    from transformers import AutoTokenizer, T5ForConditionalGeneration

    from attnlab.models.seq2seq import IGNORE, class_ids, label_log_likelihoods, label_targets, targets_tensor

    model = T5ForConditionalGeneration.from_pretrained(tiny_t5).eval()
    tok = AutoTokenizer.from_pretrained(tiny_t5)
    labels = ["negative", "positive", "so so"]  # "so so" is longer: padding with -100 is exercised
    targets = targets_tensor(label_targets(tok, labels))
    enc = tok(["a fine film", "bad"], padding=True, return_tensors="pt")
    with torch.no_grad():
        scores = label_log_likelihoods(model, enc["input_ids"], enc["attention_mask"], targets)
        for k in range(len(labels)):
            row = targets[k][targets[k] != IGNORE]
            out = model(**enc, labels=row.repeat(2, 1))
            per_text = -torch.nn.functional.cross_entropy(out.logits.transpose(1, 2), row.repeat(2, 1),
                                                          reduction="none").sum(-1)
            assert torch.allclose(scores[:, k], per_text, atol=1e-4)
    padded = torch.nn.functional.pad(targets[[2, 0, 1]], (0, 2), value=IGNORE)
    assert class_ids(padded, targets).tolist() == [2, 0, 1]
