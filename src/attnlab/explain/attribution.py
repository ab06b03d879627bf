"""Which input tokens a classifier's prediction rests on: attention next to gradient and perturbation
attribution, computed with captum on the model's own classifier.

Methods (every score is one number per token; higher = more support for the predicted class):

``attention``     last layer's attention from the pooled position(s), mean over heads
``rollout``       attention rollout (Abnar & Zuidema 2020) from the pooled position(s)
``grad-rollout``  gradient-weighted rollout (Chefer et al. 2021): R += mean_h((dp/dA * A)^+) @ R per layer
``ig``            Integrated Gradients on the word-embedding layer (captum ``LayerIntegratedGradients``);
                  baseline: every word piece replaced by [PAD], special tokens kept
``gradxinput``    gradient x input on the word embeddings (captum ``LayerGradientXActivation``)
``occlusion``     leave-one-token-out: p(x) - p(x with the token replaced by [PAD]) (captum ``FeatureAblation``)

The explained output is the softmax probability of the predicted class. The *pooled positions* are
what the classifier reads, as the run recorded (``models/pooling.py``): [CLS] for ``pooler``/``cls``,
every real token for ``mean``/``max``. Word scores sum a word's pieces (special tokens left out).
"""

from __future__ import annotations

import functools
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from attnlab.errors import UserError
from attnlab.explain.extract import DEFAULT_SOURCE, LoadedModel, display_token, load_for_attention
from attnlab.explain.rollout import attention_rollout

METHOD_DESCRIPTIONS = {
    "attention": "last layer's attention from the pooled position(s), mean over heads",
    "rollout": "attention rollout (Abnar & Zuidema 2020) from the pooled position(s)",
    "grad-rollout": "gradient-weighted attention rollout (Chefer et al. 2021), minus the identity",
    "ig": "Integrated Gradients on the word embeddings, [PAD] baseline with special tokens kept (captum)",
    "gradxinput": "gradient x input on the word embeddings (captum LayerGradientXActivation)",
    "occlusion": "leave-one-token-out: p(x) - p(x with the token replaced by [PAD]) (captum FeatureAblation)",
}
METHODS = tuple(METHOD_DESCRIPTIONS)
GRADIENT_METHODS = ("grad-rollout", "ig", "gradxinput", "occlusion")  # the ones that read the classifier's output
DEFAULT_STEPS = 64  # Integrated Gradients path steps (Gauss-Legendre): completeness within ~1 % on minilm-l6
DEFAULT_BATCH = 16


@dataclass
class Classifier:
    """A sequence classifier ready for attribution: eval mode, eager attention, fp32."""

    loaded: LoadedModel
    pooling: str  # what the classifier reads: pooler | cls | mean | max
    notes: list[str] = field(default_factory=list)
    causal: bool = False  # a decoder classifies from its last token, not from [CLS]

    @property
    def labels(self) -> list[str]:
        cfg = self.loaded.model.config
        return [str(cfg.id2label.get(i, i)) for i in range(cfg.num_labels)]


@dataclass
class SentenceAttribution:
    """Every method's token scores for one text through one classifier."""

    text: str
    tokens: list[str]  # display tokens, special ones included
    input_ids: list[int]
    special: list[bool]
    word_ids: list[int | None]  # token -> word index (None for special tokens)
    words: list[str]
    label: str
    label_id: int
    probability: float
    scores: dict[str, np.ndarray] = field(default_factory=dict)  # method -> (T,)
    seconds: dict[str, float] = field(default_factory=dict)  # method -> seconds for this sentence
    ig_delta: float | None = None  # |sum(IG) - (f(x) - f(baseline))|: captum's convergence delta

    def word_scores(self, method: str) -> np.ndarray:
        """A word's score: the sum of its pieces' scores."""
        out = np.zeros(len(self.words))
        for tok, w in enumerate(self.word_ids):
            if w is not None:
                out[w] += self.scores[method][tok]
        return out

    def to_dict(self) -> dict[str, Any]:
        def r(xs: Any) -> list[float]:
            return [float(f"{x:.6g}") for x in xs]  # 6 significant digits: a saturated softmax's gradients are tiny

        return {"text": self.text, "tokens": self.tokens, "special": self.special, "words": self.words,
                "word_ids": self.word_ids, "label": self.label, "probability": round(self.probability, 6),
                "methods": {m: {"scores": r(s), "word_scores": r(self.word_scores(m)),
                                "seconds": round(self.seconds[m], 4)} for m, s in self.scores.items()},
                "ig_completeness_delta": self.ig_delta}


def parse_methods(spec: str | list[str] | tuple[str, ...] | None, where: str = "--methods") -> list[str]:
    """``"ig,occlusion"`` (or a list; ``all``) -> validated method names, in the order given."""
    names = [m.strip() for m in (spec.split(",") if isinstance(spec, str) else spec or []) if m.strip()]
    if names == ["all"]:
        return list(METHODS)
    bad = [m for m in names if m not in METHODS]
    if bad or not names:
        raise UserError(f"unknown attribution method {', '.join(bad) or '(none)'}", where=where,
                        fix=f"pass a comma-separated list of {', '.join(METHODS)} (or all)")
    return list(dict.fromkeys(names))


# ---------------------------------------------------------------------------------------- loading


def load_classifier(source: str | LoadedModel | Classifier = DEFAULT_SOURCE) -> Classifier:
    """A run directory (full, LoRA, QLoRA: loaded by ``inference.load_run_model`` through the attention
    loader, with the run's pooling), or a model folder / registry name loaded as a sequence classifier
    (a merged run; a bare encoder such as ``minilm-l6`` gets a seeded, untrained head and its
    checkpoint's pooling, which the notes say)."""
    if isinstance(source, Classifier):
        return source
    if isinstance(source, LoadedModel):
        loaded, notes = source, []
    else:
        from attnlab.rundir import is_finished_run

        path = Path(str(source).strip()).expanduser()
        if path.is_dir() and is_finished_run(path):
            from attnlab.inference.tasks import require_classes
            from attnlab.rundir import open_run

            require_classes(open_run(path), "token attribution (attnlab explain --methods)")
            loaded, notes = load_for_attention(str(path)), []
        else:
            loaded, untrained = _encoder_classifier(str(source).strip())
            notes = [f"{loaded.name} has no trained classifier head: the scores explain a seeded random head "
                     "(pass a fine-tuned run for meaningful labels)"] if untrained else []
    if not hasattr(getattr(loaded.model, "config", None), "num_labels") or not _is_classifier(loaded.model):
        raise UserError(f"'{loaded.name}' is not a sequence classifier", where="--model",
                        fix="attribution explains classification runs: pass a run trained by `attnlab train`")
    pooling = next((m._attnlab_pooling for m in loaded.model.modules() if getattr(m, "_attnlab_pooling", None)),
                   "pooler")
    causal = getattr(loaded.model.config, "is_decoder", False) or any(
        getattr(m, "is_causal", False) is True and "cross" not in name for name, m in loaded.model.named_modules())
    return Classifier(loaded, pooling, notes, bool(causal))


def _is_classifier(model: Any) -> bool:
    inner = model.get_base_model() if hasattr(model, "get_base_model") else model
    return type(inner).__name__.endswith("ForSequenceClassification")


@functools.lru_cache(maxsize=2)
def _encoder_classifier(source: str) -> tuple[LoadedModel, bool]:
    """(classifier, head untrained?) for a model folder or registry name; the head seeded (0)."""
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from attnlab.logs import quiet_model_loading
    from attnlab.models import load_pretrained, resolve_model
    from attnlab.models.pooling import apply_pooling, checkpoint_pooling
    from attnlab.runtime import device

    resolved = resolve_model(source)
    with quiet_model_loading(), torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        tokenizer = load_pretrained(AutoTokenizer.from_pretrained, resolved)
        model, info = load_pretrained(AutoModelForSequenceClassification.from_pretrained, resolved,
                                      attn_implementation="eager", dtype=torch.float32, output_loading_info=True)
    apply_pooling(model, checkpoint_pooling(resolved.path))
    model.to(device()).eval()
    untrained = any("classifier" in k or "score" in k for k in info["missing_keys"])
    return LoadedModel(model, tokenizer, resolved.name, resolved.path, "model"), untrained


# ------------------------------------------------------------------------------------ attribution


@dataclass
class _Batch:
    ids: Any  # (B, T) long
    mask: Any  # (B, T) long
    baseline: Any  # (B, T) ids with every non-special token replaced by [PAD]
    special: Any  # (B, T) bool: special tokens and padding
    target: Any  # (B,) predicted class
    probs: Any  # (B, C)
    enc: Any


def _forward(clf: Classifier):
    import torch

    model = clf.loaded.model

    def probs(input_ids: Any, attention_mask: Any) -> Any:
        if attention_mask.shape[0] != input_ids.shape[0]:  # captum expands the inputs, not always the extras
            attention_mask = attention_mask.repeat(input_ids.shape[0] // attention_mask.shape[0], 1)
        return torch.softmax(model(input_ids=input_ids, attention_mask=attention_mask).logits.float(), -1)

    return probs


def encode(clf: Classifier, texts: list[str], max_tokens: int | None = None) -> _Batch:
    """Tokenize ``texts`` (padded, truncated to the model's limit or ``max_tokens``) and predict them."""
    import torch

    if not texts or any(not isinstance(t, str) or not t.strip() for t in texts):
        raise UserError("empty text", where="text", fix="pass a sentence to explain")
    tok = clf.loaded.tokenizer
    limit = clf.loaded.max_length
    if max_tokens is not None:
        limit = max_tokens if limit is None else min(limit, max_tokens)
    enc = tok(texts, padding=True, padding_side="right", truncation=True, max_length=limit, return_tensors="pt")
    dev = next(clf.loaded.model.parameters()).device
    ids, mask = enc["input_ids"].to(dev), enc["attention_mask"].to(dev)
    special_ids = torch.tensor(sorted(set(tok.all_special_ids)), device=dev)
    special = torch.isin(ids, special_ids) | (mask == 0)
    pad = tok.pad_token_id if tok.pad_token_id is not None else tok.mask_token_id
    if pad is None:
        raise UserError(f"the tokenizer of '{clf.loaded.name}' has no [PAD] or [MASK] token for the baseline",
                        where="--model", fix="use a model whose tokenizer defines a pad token")
    baseline = torch.where(special, ids, torch.full_like(ids, pad))
    with torch.inference_mode():
        probs = _forward(clf)(ids, mask)
    return _Batch(ids, mask, baseline, special, probs.argmax(-1), probs, enc)


def _source_rows(clf: Classifier, mask: np.ndarray) -> np.ndarray:
    """Weights over query positions that the classifier reads (sum 1): [CLS] (a decoder's last real
    token), or every real token."""
    if clf.pooling in ("mean", "max"):
        return mask / mask.sum()
    rows = np.zeros(len(mask))
    rows[int(np.flatnonzero(mask)[-1]) if clf.causal else 0] = 1.0
    return rows


def _attention_scores(clf: Classifier, b: _Batch, methods: list[str]) -> dict[str, tuple[np.ndarray, float]]:
    """attention / rollout from one forward pass; grad-rollout from a forward and backward pass."""
    import torch

    model, out = clf.loaded.model, {}
    masks = b.mask.cpu().numpy()
    if {"attention", "rollout"} & set(methods):
        start = time.perf_counter()
        with torch.inference_mode():
            att = model(input_ids=b.ids, attention_mask=b.mask, output_attentions=True).attentions
        att = torch.stack([a.float() for a in att], 1).cpu().numpy()  # (B, L, H, T, T)
        forward_s = time.perf_counter() - start
        if "attention" in methods:
            last = [_source_rows(clf, m) @ a[-1].mean(0) for a, m in zip(att, masks, strict=True)]
            out["attention"] = (np.stack(last), forward_s)
        if "rollout" in methods:
            start = time.perf_counter()
            scores = np.zeros(masks.shape)
            for i, (a, m) in enumerate(zip(att, masks, strict=True)):
                n = int(m.sum())  # padding sits at the end: roll out the real tokens only
                scores[i, :n] = _source_rows(clf, m[:n]) @ attention_rollout(a[:, :, :n, :n])
            out["rollout"] = (scores, forward_s + time.perf_counter() - start)
    if "grad-rollout" in methods:
        start = time.perf_counter()
        out["grad-rollout"] = (_grad_rollout(clf, b, masks), time.perf_counter() - start)
    return out


def _grad_rollout(clf: Classifier, b: _Batch, masks: np.ndarray) -> np.ndarray:
    """Chefer et al. 2021 (eq. 13-14): Ā_l = mean_h (∇A_l ⊙ A_l)^+, R = Π (I + Ā_l); the pooled row of
    R - I (the identity only says each token is itself: it moves no ranking and hides the rest)."""
    import torch

    model = clf.loaded.model
    embeds = model.get_input_embeddings()(b.ids).detach().requires_grad_(True)  # gives the graph a leaf
    res = model(inputs_embeds=embeds, attention_mask=b.mask, output_attentions=True)
    picked = torch.softmax(res.logits.float(), -1).gather(1, b.target[:, None]).sum()
    grads = torch.autograd.grad(picked, res.attentions)
    scores = np.zeros(masks.shape)
    for i, m in enumerate(masks):
        n = int(m.sum())
        rel = torch.eye(n, dtype=torch.float64)
        for a, g in zip(res.attentions, grads, strict=True):
            cam = (g[i, :, :n, :n] * a[i, :, :n, :n]).clamp(min=0).mean(0).detach().double().cpu()
            rel = rel + cam @ rel
        scores[i, :n] = _source_rows(clf, m[:n]) @ (rel.numpy() - np.eye(n))
    return scores


def _captum_scores(clf: Classifier, b: _Batch, methods: list[str], n_steps: int,
                   ) -> tuple[dict[str, tuple[np.ndarray, float]], np.ndarray | None]:
    from captum.attr import FeatureAblation, LayerGradientXActivation, LayerIntegratedGradients

    fwd, layer, out, delta = _forward(clf), clf.loaded.model.get_input_embeddings(), {}, None
    args = (b.mask,)
    if "ig" in methods:
        start = time.perf_counter()
        attr, d = LayerIntegratedGradients(fwd, layer).attribute(
            b.ids, baselines=b.baseline, target=b.target, additional_forward_args=args, n_steps=n_steps,
            internal_batch_size=max(n_steps, len(b.ids) * 8), return_convergence_delta=True)
        out["ig"], delta = (attr.sum(-1).detach().cpu().numpy(), time.perf_counter() - start), d.abs().cpu().numpy()
    if "gradxinput" in methods:
        start = time.perf_counter()
        attr = LayerGradientXActivation(fwd, layer).attribute(b.ids, target=b.target, additional_forward_args=args)
        out["gradxinput"] = (attr.sum(-1).detach().cpu().numpy(), time.perf_counter() - start)
    if "occlusion" in methods:
        start = time.perf_counter()
        attr = FeatureAblation(fwd).attribute(b.ids, baselines=b.baseline, target=b.target,
                                              additional_forward_args=args,
                                              perturbations_per_eval=max(1, 64 // len(b.ids)))
        out["occlusion"] = (attr.float().detach().cpu().numpy(), time.perf_counter() - start)
    return out, delta


def attribute(texts: str | list[str], model: str | LoadedModel | Classifier = DEFAULT_SOURCE, *,
              methods: str | list[str] = METHODS, n_steps: int = DEFAULT_STEPS,
              batch_size: int = DEFAULT_BATCH, max_tokens: int | None = None) -> list[SentenceAttribution]:
    """Every method's token scores for each text, ``batch_size`` texts per pass (each text truncated
    to the model's limit, or to ``max_tokens`` if fewer). ``seconds`` is each method's share of its
    batch's wall time."""
    import torch

    texts = [texts] if isinstance(texts, str) else list(texts)
    methods, clf = parse_methods(methods), load_classifier(model)
    if n_steps < 2:
        raise UserError(f"n_steps must be at least 2, got {n_steps}", where="--ig-steps", fix="pass e.g. 64")
    results: list[SentenceAttribution] = []
    for lo in range(0, len(texts), batch_size):
        chunk = texts[lo:lo + batch_size]
        b = encode(clf, chunk, max_tokens)
        with torch.enable_grad():
            found, delta = _captum_scores(clf, b, methods, n_steps)
            found |= _attention_scores(clf, b, methods)
        results += [_sentence(clf, b, i, text, found, delta) for i, text in enumerate(chunk)]
    return results


def _sentence(clf: Classifier, b: _Batch, i: int, text: str, found: dict[str, tuple[np.ndarray, float]],
              delta: np.ndarray | None) -> SentenceAttribution:
    n = int(b.mask[i].sum())
    ids = b.ids[i, :n].tolist()
    special = b.special[i, :n].tolist()
    tokens = [display_token(t) for t in clf.loaded.tokenizer.convert_ids_to_tokens(ids)]
    word_ids, words = _words(b.enc, i, text, tokens, special)
    target = int(b.target[i])
    sent = SentenceAttribution(text, tokens, ids, special, word_ids, words, clf.labels[target], target,
                               float(b.probs[i, target]),
                               ig_delta=None if delta is None else round(float(delta[i]), 6))
    for method, (scores, seconds) in sorted(found.items(), key=lambda kv: METHODS.index(kv[0])):
        sent.scores[method] = np.asarray(scores[i, :n], dtype=np.float64)
        sent.seconds[method] = seconds / len(b.ids)
    return sent


def _words(enc: Any, i: int, text: str, tokens: list[str], special: list[bool]) -> tuple[list[int | None], list[str]]:
    """Token -> word index, and the words as they read in the text (a fast tokenizer's word ids and
    offsets; without them every non-special token is its own word)."""
    fast = getattr(enc, "is_fast", False)
    raw = enc.word_ids(i)[:len(tokens)] if fast else list(range(len(tokens)))
    index: dict[int, int] = {}
    spans: list[list[int]] = []
    word_ids: list[int | None] = []
    for tok, w in enumerate(raw):
        if w is None or special[tok]:
            word_ids.append(None)
            continue
        if w not in index:
            index[w] = len(spans)
            spans.append([tok, tok])
        spans[index[w]][1] = tok
        word_ids.append(index[w])
    words = []
    for first, last in spans:
        chars = (enc.token_to_chars(i, first), enc.token_to_chars(i, last)) if fast else None
        words.append(text[chars[0].start:chars[1].end] if chars and chars[0] and chars[1] else tokens[first])
    return word_ids, words
