"""The from-scratch encoder: shapes, attention weights, save/load through the Auto classes,
training with ``train()`` from the registry, and attention extraction for ``attnlab explain``."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from conftest import TINY
from transformers import AutoModel, AutoModelForSequenceClassification

from attnlab.scratch import (
    MODEL_TYPE,
    ScratchEncoderConfig,
    ScratchEncoderForSequenceClassification,
    create_model_dir,
)

SMALL = dict(vocab_size=50, hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64,
             max_position_embeddings=16)


def _batch():
    ids = torch.tensor([[2, 5, 7, 9, 3, 0, 0], [2, 11, 12, 13, 14, 15, 3]])
    mask = (ids != 0).long()
    return ids, mask


@pytest.mark.parametrize("variant", [{}, {"norm": "post", "pooling": "cls", "position_encoding": "learned"}])
def test_forward_shapes_loss_and_attention(variant):
    torch.manual_seed(0)
    model = ScratchEncoderForSequenceClassification(ScratchEncoderConfig(**SMALL, **variant, num_labels=3)).eval()
    ids, mask = _batch()
    out = model(input_ids=ids, attention_mask=mask, labels=torch.tensor([0, 2]), output_attentions=True,
                output_hidden_states=True)
    assert out.logits.shape == (2, 3) and out.loss.ndim == 0 and torch.isfinite(out.loss)
    assert len(out.attentions) == 2 and len(out.hidden_states) == 3
    for att in out.attentions:
        assert att.shape == (2, 4, 7, 7)
        torch.testing.assert_close(att.sum(-1), torch.ones(2, 4, 7))  # every row is a distribution
        assert att[0, :, :, 5:].abs().max() == 0  # nobody attends to padding
    out.loss.backward()
    assert all(p.grad is not None for n, p in model.named_parameters() if p.requires_grad)
    # padding does not change the prediction for the padded sequence
    alone = model(input_ids=ids[:1, :5], attention_mask=mask[:1, :5]).logits
    torch.testing.assert_close(alone, out.logits[:1], atol=1e-5, rtol=1e-5)


def test_config_rejects_bad_settings():
    with pytest.raises(ValueError, match="divisible"):
        ScratchEncoderConfig(hidden_size=30, num_attention_heads=4)
    with pytest.raises(ValueError, match="pooling"):
        ScratchEncoderConfig(pooling="max")
    model = ScratchEncoderForSequenceClassification(ScratchEncoderConfig(**SMALL))
    with pytest.raises(ValueError, match="positions"):
        model(input_ids=torch.zeros(1, 17, dtype=torch.long))


def test_save_load_roundtrip_with_auto_classes(tmp_path):
    torch.manual_seed(0)
    model = ScratchEncoderForSequenceClassification(ScratchEncoderConfig(**SMALL, num_labels=2)).eval()
    model.save_pretrained(tmp_path)
    assert json.loads((tmp_path / "config.json").read_text())["model_type"] == MODEL_TYPE
    again = AutoModelForSequenceClassification.from_pretrained(tmp_path).eval()
    assert type(again) is ScratchEncoderForSequenceClassification
    ids, mask = _batch()
    torch.testing.assert_close(again(input_ids=ids, attention_mask=mask).logits,
                               model(input_ids=ids, attention_mask=mask).logits, atol=0, rtol=0)
    for (n, a), (_, b) in zip(model.state_dict().items(), again.state_dict().items(), strict=True):
        assert torch.equal(a, b), n
    torch.testing.assert_close(again.encoder.positions.pe, model.encoder.positions.pe)  # rebuilt buffer
    base = AutoModel.from_pretrained(tmp_path).eval()  # the encoder alone, from the classifier's folder
    torch.testing.assert_close(base(input_ids=ids, attention_mask=mask).last_hidden_state,
                               model.encoder(input_ids=ids, attention_mask=mask).last_hidden_state)


def test_create_model_dir_is_seeded(tmp_path):
    from attnlab.models.packaged import minilm_path

    if minilm_path() is None:
        pytest.skip("minilm-l6 (its tokenizer) is not installed")
    small = dict(hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64)
    a = create_model_dir(tmp_path / "a", minilm_path(), **small)
    b = create_model_dir(tmp_path / "b", minilm_path(), **small)
    ma, mb = (AutoModelForSequenceClassification.from_pretrained(p) for p in (a, b))
    assert all(torch.equal(x, y) for x, y in zip(ma.state_dict().values(), mb.state_dict().values(), strict=True))
    assert ma.config.vocab_size == 30522 and (a / "tokenizer.json").is_file()


@pytest.fixture(scope="module")
def scratch_run(tmp_path_factory, sst2_dir):
    """A scratch-encoder run trained from the registry's random init on the tiny SST-2 slice."""
    from attnlab.training import TrainConfig
    from attnlab.training.train import train

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("ATTNLAB_CACHE", str(tmp_path_factory.mktemp("cache")))
        out = tmp_path_factory.mktemp("scratch") / "run"
        cfg = TrainConfig.from_sources(data="sst2", data_dir=str(sst2_dir), model="scratch-encoder", method="full",
                                       output_dir=str(out), **TINY)
        return train(cfg, progress=False).path


def test_trains_from_the_registry(scratch_run):
    from attnlab.inference import Predictor
    from attnlab.training.rundir import open_run

    run = open_run(scratch_run)
    m = run.metrics
    assert m["model"] == "scratch-encoder" and m["method"] == "full"
    assert m["training"]["learning_rate"] == 5e-4  # the registry's suggestion for training from scratch
    assert m["params"]["trainable"] == m["params"]["total"] > 10_000_000
    history = [json.loads(x) for x in (scratch_run / "history.jsonl").read_text().splitlines()]
    assert any("loss" in h for h in history)
    assert json.loads((scratch_run / "model" / "config.json").read_text())["model_type"] == MODEL_TYPE
    probs = Predictor.from_run(run).predict_proba(["a warm, funny film", "a dull mess"])
    assert probs.shape == (2, 2) and np.allclose(probs.sum(1), 1, atol=1e-5)


def test_explain_extracts_its_attention(scratch_run):
    from attnlab.explain import extract_attention, load_for_attention

    loaded = load_for_attention(str(scratch_run))
    assert loaded.max_length == 128
    res = extract_attention("a moving and funny film", loaded)
    assert res.attentions.shape[:2] == (4, 4) and res.attentions.shape[2] == res.attentions.shape[3] == len(res.tokens)
    np.testing.assert_allclose(res.attentions.sum(-1), 1, atol=1e-5)
    assert not res.is_causal and res.tokens[0] == "[CLS]"
