"""Long texts (issue #20 item 3): ``long_text="chunk"`` reads every token in overlapping windows, through
the Predictor, ``attnlab predict``/``evaluate``, ``/v1/classify`` and the ONNX engine; a text that fits
is one window, scored exactly as ``truncate`` scores it; training reports the rows it truncated."""

from __future__ import annotations

import json
import math
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from conftest import run_cli, write

from attnlab.errors import UserError
from attnlab.inference import Predictor
from attnlab.inference.long_text import LongText, aggregate, window_stride

DECISIVE = "wonderful"
LONG = "dull " * 600 + f"{DECISIVE} " * 1400  # 2,002 tokens: the decisive words from token 601 on
SHORT = ["a wonderful film", "dull", "a long and rather dull film about nothing much", "wonderful wonderful"]


@pytest.fixture(scope="module")
def tokenizer():
    from transformers import AutoTokenizer

    from attnlab.models import load_pretrained, resolve_model

    return load_pretrained(AutoTokenizer.from_pretrained, resolve_model("minilm-l6"))


class KeywordModel(torch.nn.Module):
    """A classifier whose decision is known: logit(pos) = 8 x (share of the window's tokens that are
    DECISIVE) - 2, logit(neg) = 0."""

    def __init__(self, keyword_id: int):
        super().__init__()
        self.keyword_id = keyword_id
        self.unused = torch.nn.Parameter(torch.zeros(1))  # a module with a parameter, like a model

    def forward(self, input_ids, attention_mask=None, token_type_ids=None):
        mask = attention_mask.float()
        share = ((input_ids == self.keyword_id).float() * mask).sum(1) / mask.sum(1)
        return SimpleNamespace(logits=torch.stack([torch.zeros_like(share), 8 * share - 2], 1))


@pytest.fixture(scope="module")
def keyword(tokenizer) -> Predictor:
    model = KeywordModel(tokenizer.convert_tokens_to_ids(DECISIVE))
    return Predictor(model, tokenizer, ["negative", "positive"], max_length=512, device="cpu")


def _windows(tokenizer, text: str, max_length: int, stride: int) -> list[list[int]]:
    return tokenizer(text, truncation=True, max_length=max_length, stride=stride,
                     return_overflowing_tokens=True)["input_ids"]


def test_chunking_reads_the_words_after_token_512(keyword, tokenizer):
    n_tokens = len(tokenizer(LONG, truncation=False)["input_ids"])
    assert n_tokens > 1900 and tokenizer(LONG)["input_ids"][1:601] == [tokenizer.convert_tokens_to_ids("dull")] * 600
    cut = keyword.predict([LONG])[0]
    assert cut["label"] == "negative" and "windows" not in cut  # the first 512 tokens hold no decisive word
    stride = 512 // 4
    room = 512 - 2  # [CLS] and [SEP]
    expected_windows = 1 + math.ceil((n_tokens - 2 - room) / (room - stride))
    for how in ("mean", "max"):
        row = keyword.predict([LONG], long_text="chunk", aggregate=how)[0]
        assert row["label"] == "positive", how
        assert row["windows"] == expected_windows and row["long_text"] == "chunk" and row["aggregate"] == how
        assert sum(row["probabilities"].values()) == pytest.approx(1.0, abs=1e-6)


def test_mean_and_max_are_those_of_the_windows_scored_one_by_one(keyword, tokenizer):
    per_window = np.concatenate([keyword.predict_proba([tokenizer.decode(ids, skip_special_tokens=True)])
                                 for ids in _windows(tokenizer, LONG, 512, 128)])
    assert per_window[0].argmax() == 0 and per_window[-1].argmax() == 1  # the windows disagree
    mean = keyword.predict_proba([LONG], long_text="chunk")[0]
    np.testing.assert_allclose(mean, per_window.mean(0), rtol=1e-5)
    top = keyword.predict_proba([LONG], long_text="chunk", aggregate="max")[0]
    np.testing.assert_allclose(top, per_window.max(0) / per_window.max(0).sum(), rtol=1e-5)
    # a larger overlap: more windows, same machinery
    more = keyword.predict([LONG], long_text="chunk", stride=400)[0]["windows"]
    assert more == len(_windows(tokenizer, LONG, 512, 400)) > len(_windows(tokenizer, LONG, 512, 128))


def test_a_text_that_fits_is_one_window_scored_as_truncate_scores_it(tiny_bert, tokenizer):
    from transformers import AutoModelForSequenceClassification

    torch.manual_seed(0)
    model = AutoModelForSequenceClassification.from_pretrained(tiny_bert, num_labels=2)
    p = Predictor(model, tokenizer, ["a", "b"], max_length=64, device="cpu", precision="fp32", batch_size=2)
    cut, windows = p.predict_proba_windows(SHORT)
    chunked, n = p.predict_proba_windows(SHORT, long_text="chunk")
    assert windows.tolist() == n.tolist() == [1] * len(SHORT)
    assert np.array_equal(cut, chunked)  # the same tokens in the same batches: bit for bit
    assert np.array_equal(p.predict_proba(SHORT[:1]), p.predict_proba(SHORT[:1], long_text="chunk"))
    # long and short texts in one call: the short ones keep their scores (batches pad differently)
    mixed, n = p.predict_proba_windows([LONG, *SHORT], long_text="chunk")
    assert n[0] > 1 and n[1:].tolist() == [1] * len(SHORT)
    np.testing.assert_allclose(mixed[1:], cut, atol=1e-5)
    assert not np.allclose(mixed[0], p.predict_proba([LONG])[0], atol=1e-7)  # the long one read whole


def test_aggregate_of_one_window_per_text_is_the_windows_own():
    probs = np.array([[0.2, 0.8], [0.6, 0.4]], dtype=np.float32)
    assert aggregate(probs, np.arange(2), 2, "max") is probs
    out = aggregate(np.array([[0.2, 0.8], [0.6, 0.4], [0.9, 0.1]], dtype=np.float32), np.array([0, 0, 1]), 2, "max")
    np.testing.assert_allclose(out, [[0.6 / 1.4, 0.8 / 1.4], [0.9, 0.1]], rtol=1e-6)


def test_bad_settings_are_one_line_errors(keyword, tokenizer):
    with pytest.raises(UserError, match="unknown long-text mode"):
        keyword.predict(["x"], long_text="split")
    with pytest.raises(UserError, match="unknown long-text aggregate"):
        keyword.predict(["x"], long_text="chunk", aggregate="median")
    with pytest.raises(UserError, match="leaves no new tokens") as exc:
        keyword.predict([LONG], long_text="chunk", stride=510)
    assert "\n" not in exc.value.one_line()
    assert window_stride(LongText("chunk"), tokenizer, 512) == 128
    assert window_stride(LongText("chunk"), tokenizer, 4) == 1  # the default shrinks to fit a tiny window


def test_text2text_refuses_chunking_in_one_line():
    from attnlab.inference.text2text import Text2TextPredictor

    p = object.__new__(Text2TextPredictor)  # the check needs no model
    with pytest.raises(UserError, match="cannot read long texts by 'chunk'"):
        p._long_text(LongText("chunk"))


# -- a tiny trained run: CLI, evaluate, serve, ONNX, training's truncation count ------------------

TRAIN_MAX_LENGTH = 32


@pytest.fixture(scope="module")
def long_run(tmp_path_factory, tiny_bert, tokenizer):
    """A 2-step run of the tiny random BERT on a folder whose train split has long texts (some cut at
    32 tokens), and how many training texts are longer than that."""
    from attnlab.training import TrainConfig
    from attnlab.training.train import train

    root = tmp_path_factory.mktemp("long-text")
    rows = {"train": [(f"a lovely warm film {i}" + " and more" * (i % 2 * 20), "pos") for i in range(12)]
            + [(f"a dull tired film {i}", "neg") for i in range(12)],
            "validation": [("lovely", "pos"), ("dull", "neg"), ("warm", "pos"), ("tired", "neg")],
            "test": [("lovely film", "pos"), ("dull film", "neg"), ("warm film", "pos"), ("tired film", "neg")]}
    for split, pairs in rows.items():
        write(root / "data" / f"{split}.csv", "text,label\n" + "".join(f"{t},{y}\n" for t, y in pairs))
    long = sum(len(tokenizer(t)["input_ids"]) > TRAIN_MAX_LENGTH for t, _ in rows["train"])
    threads = torch.get_num_threads()
    cfg = TrainConfig.from_sources(None, data=str(root / "data"), model=str(tiny_bert), method="full",
                                   output_dir=str(root / "run"), max_steps=2, batch_size=8, num_threads=1,
                                   max_length=TRAIN_MAX_LENGTH)
    run = train(cfg, progress=False)
    torch.set_num_threads(threads)
    return SimpleNamespace(path=run.path, root=root, long_train_rows=long)


def test_training_reports_the_rows_it_truncated(long_run):
    training = json.loads((long_run.path / "metrics.json").read_text())["training"]
    assert long_run.long_train_rows == 6  # the 6 texts with 40 extra tokens; the other 18 fit in 32
    assert training["truncated_train_rows"] == long_run.long_train_rows
    assert training["max_length"] == TRAIN_MAX_LENGTH


def test_predict_cli_chunks_a_2000_token_text_into_one_prediction(long_run, capsys):
    code, out, err = run_cli(["predict", str(long_run.path), LONG, "--long-text", "chunk"], capsys)
    assert code == 0 and err == ""
    lines = out.splitlines()
    assert len(lines) == 1  # one text, one prediction
    row = json.loads(lines[0])
    assert row["long_text"] == "chunk" and row["aggregate"] == "mean"
    assert row["windows"] == 1 + math.ceil((2002 - 2 - 30) / (30 - TRAIN_MAX_LENGTH // 4))
    code, out, _ = run_cli(["predict", str(long_run.path), LONG], capsys)
    cut = json.loads(out)
    assert "windows" not in cut and cut["probabilities"] != row["probabilities"]
    code, out, err = run_cli(["predict", str(long_run.path), LONG, "--long-text", "chunk",
                              "--long-text-stride", "30"], capsys)
    assert code == 2 and out == "" and len(err.strip().splitlines()) == 1 and "stride" in err


def test_evaluate_cli_records_the_windows(long_run, tmp_path, capsys):
    data = write(tmp_path / "eval.csv", f"text,label\n{LONG},pos\ndull,neg\nlovely,pos\n")
    code, out, err = run_cli(["evaluate", str(long_run.path), "--data", str(data), "--long-text", "chunk",
                              "--long-text-aggregate", "max", "--json"], capsys)
    assert code == 0, err
    m = json.loads(out)
    assert m["examples"] == 3
    assert m["long_text"] == {"mode": "chunk", "windows": m["long_text"]["windows"], "aggregate": "max",
                              "texts_chunked": 1}
    assert m["long_text"]["windows"] > 3
    code, out, _ = run_cli(["evaluate", str(long_run.path), "--data", str(data), "--long-text", "chunk"], capsys)
    assert "long texts: 1 of 3 texts read in several windows" in out


def test_classify_endpoint_takes_the_server_default_or_the_request_s(long_run):
    from fastapi.testclient import TestClient

    from attnlab.serve import create_app

    text = "dull " * 100  # 102 tokens: windows of 30 text tokens, 8 shared: 5 of them
    for default in ("truncate", "chunk"):
        app = create_app([long_run.path], ui=False, chat=False, explain_models=[], long_text=default)
        with TestClient(app) as c:
            plain = c.post("/v1/classify", json={"texts": [text, "dull"]}).json()["results"]
            asked = c.post("/v1/classify", json={"texts": [text], "long_text": "chunk",
                                                 "long_text_aggregate": "max"}).json()["results"][0]
            cut = c.post("/v1/classify", json={"texts": [text], "long_text": "truncate"}).json()["results"][0]
            bad = c.post("/v1/classify", json={"texts": [text], "long_text": "split"})
        assert ("windows" in plain[0]) == (default == "chunk")
        assert asked["windows"] == 1 + math.ceil((100 - 30) / (30 - 8)) and asked["aggregate"] == "max"
        assert "windows" not in cut
        assert bad.status_code == 422


def test_onnx_engine_chunks_like_torch(long_run):
    pytest.importorskip("onnxruntime")
    torch_p = Predictor.from_run(long_run.path, long_text="chunk", precision="fp32")
    onnx_p = Predictor.from_run(long_run.path, long_text="chunk", engine="onnxruntime")
    texts = [LONG, "lovely", "dull " * 100]
    a, na = torch_p.predict_proba_windows(texts)
    b, nb = onnx_p.predict_proba_windows(texts)
    assert na.tolist() == nb.tolist() and na[0] > 1
    np.testing.assert_allclose(a, b, atol=1e-4)
