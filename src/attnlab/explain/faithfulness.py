"""How far to trust an explanation: ERASER's erasure tests (DeYoung et al., 2020) for every method.

For one sentence with predicted class ``c`` and probability ``p = p(c | x)``, a method ranks the
(non-special) tokens; ``top_k`` is its first ``ceil(k * n)`` tokens (at least one) for a fraction ``k``:

    comprehensiveness(k) = p - p(c | x without top_k)      higher = the method found what the model used
    sufficiency(k)       = p - p(c | only top_k)            lower  = those tokens alone carry the prediction

Tokens are *deleted*, as in ERASER (special tokens always stay). AOPC is the mean over
k in {1, 2, 5, 10, 20, 50} %. A ``random`` ranking (seeded) is the baseline every method must beat.
``rank_agreement`` is the mean Spearman correlation of two methods' token scores per sentence.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from attnlab.explain.attribution import (
    DEFAULT_BATCH,
    DEFAULT_STEPS,
    METHODS,
    Classifier,
    SentenceAttribution,
    attribute,
    load_classifier,
)
from attnlab.explain.views_attribution import RANDOM

KS = (0.01, 0.02, 0.05, 0.10, 0.20, 0.50)


def ranking(sent: SentenceAttribution, scores: np.ndarray) -> np.ndarray:
    """Positions of the non-special tokens, highest score first (ties: earlier token first)."""
    real = np.flatnonzero(~np.asarray(sent.special, dtype=bool))
    return real[np.argsort(-np.asarray(scores)[real], kind="stable")]


def top_count(n: int, k: float) -> int:
    """How many of ``n`` tokens a fraction ``k`` names: ``ceil(k * n)``, at least 1, at most ``n``."""
    return min(n, max(1, math.ceil(k * n - 1e-9)))


def _erased(sent: SentenceAttribution, order: np.ndarray, count: int, keep: bool) -> list[int]:
    top = set(order[:count].tolist())
    return [t for pos, t in enumerate(sent.input_ids)
            if sent.special[pos] or ((pos in top) == keep)]


def predict_ids(clf: Classifier, id_lists: list[list[int]], targets: list[int],
                batch_size: int = 64) -> np.ndarray:
    """p(target | ids) for each token-id list (padded per batch)."""
    import torch

    tok, model = clf.loaded.tokenizer, clf.loaded.model
    dev = next(model.parameters()).device
    pad = tok.pad_token_id if tok.pad_token_id is not None else tok.mask_token_id
    out = []
    for lo in range(0, len(id_lists), batch_size):
        chunk = id_lists[lo:lo + batch_size]
        width = max(len(x) for x in chunk)
        ids = torch.tensor([x + [pad] * (width - len(x)) for x in chunk], device=dev)
        mask = torch.tensor([[1] * len(x) + [0] * (width - len(x)) for x in chunk], device=dev)
        with torch.inference_mode():
            probs = torch.softmax(model(input_ids=ids, attention_mask=mask).logits.float(), -1)
        out.append(probs.gather(1, torch.tensor(targets[lo:lo + batch_size], device=dev)[:, None])[:, 0].cpu())
    return torch.cat(out).numpy().astype(np.float64)


def random_scores(sentences: list[SentenceAttribution], seed: int = 0) -> list[np.ndarray]:
    """One seeded random score per token: the ranking any explanation has to beat."""
    rng = np.random.default_rng(seed)
    return [rng.random(len(s.tokens)) for s in sentences]


def erasure(clf: Classifier, sentences: list[SentenceAttribution], scores: list[np.ndarray],
            ks: tuple[float, ...] = KS, batch_size: int = 64) -> dict[str, Any]:
    """Comprehensiveness and sufficiency at each ``k`` (mean over sentences), their AOPC, and the
    deletion curve (mean p(c) after deleting the top ``k``, with k = 0 first)."""
    variants, targets = [], []
    for sent, sc in zip(sentences, scores, strict=True):
        order = ranking(sent, sc)
        for k in ks:
            count = top_count(len(order), k)
            variants += [_erased(sent, order, count, keep=False), _erased(sent, order, count, keep=True)]
            targets += [sent.label_id, sent.label_id]
    probs = predict_ids(clf, variants, targets, batch_size).reshape(len(sentences), len(ks), 2)
    p = np.array([s.probability for s in sentences])[:, None]
    comp, suff = (p - probs[:, :, 0]).mean(0), (p - probs[:, :, 1]).mean(0)
    return {"comprehensiveness": {_k(k): round(float(v), 6) for k, v in zip(ks, comp, strict=True)},
            "sufficiency": {_k(k): round(float(v), 6) for k, v in zip(ks, suff, strict=True)},
            "aopc_comprehensiveness": round(float(comp.mean()), 6),
            "aopc_sufficiency": round(float(suff.mean()), 6),
            "deletion_curve": [round(float(p.mean()), 6)] + [round(float(v), 6) for v in probs[:, :, 0].mean(0)]}


def _k(k: float) -> str:
    return f"{round(k * 100):d}%"


def rank_agreement(sentences: list[SentenceAttribution], methods: list[str]) -> dict[str, dict[str, float | None]]:
    """Mean Spearman correlation of two methods' scores over each sentence's non-special tokens
    (sentences where a method's scores are constant are left out; None when none is left)."""
    from scipy.stats import spearmanr

    out: dict[str, dict[str, float | None]] = {a: {} for a in methods}
    for i, a in enumerate(methods):
        out[a][a] = 1.0
        for b in methods[i + 1:]:
            rhos = []
            for s in sentences:
                real = ~np.asarray(s.special, dtype=bool)
                x, y = s.scores[a][real], s.scores[b][real]
                if len(x) > 1 and np.ptp(x) > 0 and np.ptp(y) > 0:
                    rhos.append(float(spearmanr(x, y).statistic))
            out[a][b] = out.setdefault(b, {})[a] = round(float(np.mean(rhos)), 4) if rhos else None
    return out


def faithfulness(texts: list[str], model: str | Classifier = "minilm-l6", *, methods: list[str] | str = METHODS,
                 gold: list[str] | None = None, ks: tuple[float, ...] = KS, n_steps: int = DEFAULT_STEPS,
                 batch_size: int = DEFAULT_BATCH, seed: int = 0) -> dict[str, Any]:
    """Attribute every text with every method, then measure each method (and ``random``) by erasure.
    ``gold`` (label names, one per text) adds the classifier's accuracy on these texts."""
    clf = load_classifier(model)
    sentences = attribute(texts, clf, methods=methods, n_steps=n_steps, batch_size=batch_size)
    names = list(sentences[0].scores)
    rows: dict[str, Any] = {}
    for name in [*names, RANDOM]:
        scores = random_scores(sentences, seed) if name == RANDOM else [s.scores[name] for s in sentences]
        rows[name] = erasure(clf, sentences, scores, ks)
        if name != RANDOM:
            rows[name]["seconds_per_sentence"] = round(float(np.mean([s.seconds[name] for s in sentences])), 5)
    report = {"model": clf.loaded.name, "source": clf.loaded.source, "pooling": clf.pooling,
              "n_sentences": len(sentences), "ks": [_k(k) for k in ks], "n_steps": n_steps, "seed": seed,
              "mean_tokens": round(float(np.mean([len(s.tokens) for s in sentences])), 2),
              "methods": rows, "rank_agreement": rank_agreement(sentences, names),
              "most_faithful": max(names, key=lambda m: rows[m]["aopc_comprehensiveness"]),
              "ig_max_completeness_delta": max((s.ig_delta for s in sentences if s.ig_delta is not None),
                                               default=None),
              "notes": clf.notes}
    if gold is not None:
        report["accuracy"] = round(float(np.mean([s.label == g for s, g in zip(sentences, gold, strict=True)])), 4)
    return report

