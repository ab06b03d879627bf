"""Faithfulness (ERASER erasure) and the known-token check of every attribution method.

A tiny BERT (CLS pooler: the key must travel through attention) is trained in a few seconds on
synthetic sentences whose label is 1 exactly when the word ``great`` is in them. On a sentence with
``great`` every method that reads the classifier's output must rank ``great`` first, and deleting
its top token must hurt the prediction more than deleting a random one.
"""

from __future__ import annotations

import numpy as np
import pytest

from attnlab.explain.attribution import GRADIENT_METHODS, SentenceAttribution, attribute, load_classifier
from attnlab.explain.extract import LoadedModel
from attnlab.explain.faithfulness import (
    KS,
    RANDOM,
    _erased,
    erasure,
    faithfulness,
    random_scores,
    rank_agreement,
    ranking,
    top_count,
)

KEY = "great"
FILLER = ["the", "film", "was", "a", "plot", "and", "it", "story", "actor", "scene", "long", "very", "quite",
          "movie", "of", "this", "with", "some"]


@pytest.fixture(scope="module")
def key_model():
    """A 2-layer BERT whose label is 1 iff ``great`` occurs (trained to ~100 % on held-out sentences).

    Trained in float64, so every CPU trains the same model: in float32, rounding (which differs by CPU
    kind and thread count) amplified through the optimizer's steps gave each machine its own model,
    and on some of them gradient methods failed. Negatives get a filler word where positives get the
    key, so sentence length says nothing about the label (with the key inserted into positives only,
    a model learned "9 words means positive", and occlusion rightly found the key irrelevant there)."""
    import torch
    from transformers import BertConfig, BertForSequenceClassification, BertTokenizerFast

    tok = BertTokenizerFast(vocab={w: i for i, w in enumerate(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", KEY,
                                                                 *FILLER])})
    torch.manual_seed(0)
    cfg = BertConfig(vocab_size=len(FILLER) + 6, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                     intermediate_size=64, max_position_embeddings=32, attn_implementation="eager",
                     hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    model = BertForSequenceClassification(cfg).double()
    rng = np.random.default_rng(0)

    def batch(n: int) -> tuple[list[str], list[int]]:
        texts, labels = [], []
        for _ in range(n):
            words = list(rng.choice(FILLER, size=int(rng.integers(4, 9))))
            label = int(rng.random() < 0.5)
            words.insert(int(rng.integers(0, len(words) + 1)), KEY if label else str(rng.choice(FILLER)))
            texts.append(" ".join(words))
            labels.append(label)
        return texts, labels

    # label smoothing keeps the output unsaturated (p ~ 0.9): a step-like, saturated model is where local
    # gradients and a coarse IG path are known to fail, not what this test is about
    opt = torch.optim.AdamW(model.parameters(), lr=2e-3)
    model.train()
    for _ in range(200):
        texts, labels = batch(32)
        enc = tok(texts, padding=True, return_tensors="pt")
        loss = torch.nn.functional.cross_entropy(model(**enc).logits, torch.tensor(labels), label_smoothing=0.2)
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.float().eval()
    texts, labels = batch(64)
    with torch.no_grad():
        pred = model(**tok(texts, padding=True, return_tensors="pt")).logits.argmax(-1).tolist()
    assert np.mean(np.array(pred) == np.array(labels)) > 0.95
    return load_classifier(LoadedModel(model, tok, "key-token-bert", "test"))


SENTENCES = ["the film was great and very long", "a great story with some actor", "it was quite a great movie",
             "the plot of this scene was long and great"]


def test_every_method_that_reads_the_output_ranks_the_key_token_first(key_model):
    results = attribute(SENTENCES, key_model, methods="all", n_steps=32, batch_size=3)
    for sent in results:
        assert sent.label == "LABEL_1" and sent.probability > 0.85
        key = sent.tokens.index(KEY)
        for method in GRADIENT_METHODS:
            assert ranking(sent, sent.scores[method])[0] == key, (method, sent.text, sent.scores[method])
        assert sent.words[sent.word_ids[key]] == KEY
        assert sent.word_scores("ig")[sent.word_ids[key]] == pytest.approx(sent.scores["ig"][key])


def test_comprehensiveness_beats_random_on_the_key_token(key_model):
    results = attribute(SENTENCES, key_model, methods=list(GRADIENT_METHODS), n_steps=32)
    rand = erasure(key_model, results, random_scores(results, seed=0))
    for method in GRADIENT_METHODS:
        row = erasure(key_model, results, [s.scores[method] for s in results])
        # the top token is the key: deleting it flips the prediction; keeping it alone keeps it
        assert row["comprehensiveness"]["1%"] > 0.5
        assert row["aopc_comprehensiveness"] > rand["aopc_comprehensiveness"] + 0.1, method
        assert row["aopc_sufficiency"] < rand["aopc_sufficiency"], method


def test_faithfulness_report(key_model):
    gold = ["LABEL_1"] * len(SENTENCES)
    report = faithfulness(SENTENCES, key_model, methods="ig,occlusion,attention", gold=gold, n_steps=16)
    assert set(report["methods"]) == {"ig", "occlusion", "attention", RANDOM}
    assert report["ks"] == ["1%", "2%", "5%", "10%", "20%", "50%"] and report["accuracy"] == 1.0
    for row in report["methods"].values():
        assert len(row["deletion_curve"]) == len(KS) + 1
        assert row["aopc_comprehensiveness"] == pytest.approx(np.mean(list(row["comprehensiveness"].values())),
                                                              abs=1e-5)
    best = max(r["aopc_comprehensiveness"] for m, r in report["methods"].items() if m != RANDOM)
    assert report["methods"][report["most_faithful"]]["aopc_comprehensiveness"] == best
    assert best > report["methods"][RANDOM]["aopc_comprehensiveness"]
    assert "seconds_per_sentence" in report["methods"]["ig"] and "seconds_per_sentence" not in report["methods"][RANDOM]
    assert report["rank_agreement"]["ig"]["occlusion"] == report["rank_agreement"]["occlusion"]["ig"]


def _sentence(scores: dict[str, list[float]]) -> SentenceAttribution:
    n = len(next(iter(scores.values())))
    special = [True] + [False] * (n - 2) + [True]
    sent = SentenceAttribution("x", [f"t{i}" for i in range(n)], list(range(100, 100 + n)), special,
                               [None, *range(n - 2), None], [f"t{i}" for i in range(1, n - 1)],
                               "pos", 0, 0.9)
    sent.scores = {m: np.asarray(v, dtype=float) for m, v in scores.items()}
    return sent


def test_erasure_keeps_special_tokens_and_counts_k():
    sent = _sentence({"a": [9, 0.1, 0.5, 0.3, 0.2, 9]})
    order = ranking(sent, sent.scores["a"])
    assert order.tolist() == [2, 3, 4, 1]  # special tokens never ranked, however high their score
    assert _erased(sent, order, 1, keep=False) == [100, 101, 103, 104, 105]
    assert _erased(sent, order, 1, keep=True) == [100, 102, 105]
    assert [top_count(10, k) for k in KS] == [1, 1, 1, 1, 2, 5]
    assert top_count(3, 0.5) == 2 and top_count(1, 0.01) == 1


def test_rank_agreement():
    sent = _sentence({"a": [0, 1, 2, 3, 4, 0], "b": [0, 4, 3, 2, 1, 0], "c": [0, 1, 2, 3, 4, 0],
                      "flat": [0, 1, 1, 1, 1, 0]})
    agree = rank_agreement([sent], ["a", "b", "c", "flat"])
    assert agree["a"]["b"] == pytest.approx(-1.0) and agree["a"]["c"] == pytest.approx(1.0)
    assert agree["a"]["flat"] is None  # constant scores have no ranking
