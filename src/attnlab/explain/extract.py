"""Attention weights out of a real Hugging Face model, for one text.

A *source* is anything attnlab can name: a registry name (``minilm-l6``), a local
``save_pretrained()`` folder, a hub id, or a finished run directory (full or LoRA; the adapter is
applied, not merged). Models are loaded with ``attn_implementation="eager"`` because the fused
kernels (SDPA, flash) never materialise the attention matrix, and in fp32: attention weights are
probabilities and we want them exact.

The result is an :class:`AttentionResult`: tokens plus one ``(layers, heads, T, T)`` float32 array
whose row ``i`` is the distribution query token ``i`` puts over the key tokens.
"""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from attnlab.errors import UserError

log = logging.getLogger(__name__)

DEFAULT_SOURCE = "minilm-l6"
CACHE_SIZE = 3  # models kept loaded per process (a base model, a fine-tuned one, and one more)
_NO_LIMIT = 100_000  # tokenizers without a real limit report model_max_length ~1e30


@dataclass
class LoadedModel:
    """A model ready for :func:`extract_attention`: eval mode, eager attention, fp32."""

    model: Any  # a transformers PreTrainedModel or a peft PeftModel
    tokenizer: Any
    name: str
    source: str  # what the user passed, resolved (a folder, hub id or run directory)
    kind: str = "model"  # "model" | "run"

    @property
    def max_length(self) -> int | None:
        """The longest input the model accepts (tokenizer limit and position table, the smaller)."""
        limits = []
        tok_limit = getattr(self.tokenizer, "model_max_length", None)
        if isinstance(tok_limit, int) and 0 < tok_limit < _NO_LIMIT:
            limits.append(tok_limit)
        pos = getattr(self.model.config, "max_position_embeddings", None)
        if isinstance(pos, int) and pos > 0:
            limits.append(pos)
        return min(limits) if limits else None


@dataclass
class AttentionResult:
    """Tokens and attention weights of one text through one model.

    ``attentions[l, h, i, j]`` is how much query token ``i`` attends to key token ``j`` in head
    ``h`` of layer ``l``; every row sums to 1 (a causal model's rows put zero weight on ``j > i``).
    """

    text: str
    tokens: list[str]
    input_ids: list[int]
    attentions: np.ndarray  # (layers, heads, T, T) float32
    model_name: str
    is_causal: bool
    special_mask: list[bool]  # True where the token is [CLS], [SEP], <s>, pad, ...
    truncated: bool = False
    n_input_tokens: int = 0  # tokens before truncation
    max_length: int | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def num_layers(self) -> int:
        return int(self.attentions.shape[0])

    @property
    def num_heads(self) -> int:
        return int(self.attentions.shape[1])

    @property
    def seq_len(self) -> int:
        return int(self.attentions.shape[2])

    @property
    def display_tokens(self) -> list[str]:
        """Tokens cleaned for labels: BPE/SentencePiece space markers removed, never empty."""
        return [display_token(t) for t in self.tokens]

    def check_layer_head(self, layer: int | None, head: int | None, *,
                         where: str | None = "--{what}") -> tuple[int | None, int | None]:
        """Validate an optional (layer, head): None stays None, negative counts from the end
        (-1 = the last). A UserError names the model and the valid range; ``where`` is what the
        error points at, ``{what}`` filled in (the CLI flag by default; None for none)."""
        out = []
        for value, size, what in ((layer, self.num_layers, "layer"), (head, self.num_heads, "head")):
            if value is not None and not -size <= int(value) < size:
                raise UserError(f"{what} {value} does not exist: {self.model_name} has {size} {what}s",
                                where=where.format(what=what) if where else None,
                                fix=f"pass a {what} from 0 to {size - 1}, or a negative one to count from the end")
            out.append(None if value is None else int(value) % size)
        return out[0], out[1]

    def check_index(self, layer: int | None = None, head: int | None = None) -> tuple[int, int]:
        """Like :meth:`check_layer_head`, with layer 0 and head 0 for None."""
        layer, head = self.check_layer_head(0 if layer is None else layer, 0 if head is None else head)
        return layer, head

    def head(self, layer: int, head: int) -> np.ndarray:
        """The (T, T) attention matrix of one head."""
        layer, head = self.check_index(layer, head)
        return self.attentions[layer, head]

    def summary(self) -> dict[str, Any]:
        """Everything but the weights, as plain JSON-able values."""
        return {
            "model": self.model_name, "text": self.text, "tokens": self.tokens,
            "layers": self.num_layers, "heads": self.num_heads, "seq_len": self.seq_len,
            "is_causal": self.is_causal, "truncated": self.truncated,
            "n_input_tokens": self.n_input_tokens, "max_length": self.max_length, "notes": self.notes,
        }

    def _repr_html_(self) -> str:  # Jupyter shows the interactive viewer
        from attnlab.explain.views_html import to_notebook_html

        return to_notebook_html(self)


def display_token(token: str) -> str:
    """A token as a label: ``Ġthe``/``▁the`` -> ``the``, newline markers shown as ``\\n``."""
    text = token.replace("Ġ", " ").replace("▁", " ").replace("Ċ", "\\n").strip()
    return text or "␣"


# ---------------------------------------------------------------------------------------- loading


def load_for_attention(source: str = DEFAULT_SOURCE, *, cache: bool = True) -> LoadedModel:
    """Load ``source`` (registry name, HF folder, hub id or run directory) for attention extraction.

    With ``cache`` (the default) loaded models are kept per process (the last few sources), so a
    notebook or a CLI call pays the load once; :func:`clear_cache` drops them. ``cache=False``
    loads a fresh copy that only the caller holds (a server keeps it in its own cache and frees it
    when it closes).
    """
    if not isinstance(source, str) or not source.strip():
        raise UserError("empty model name", where="--model", fix="pass a registry name, folder, hub id or run")
    from attnlab.rundir import is_finished_run

    load = _load_cached if cache else _load
    path = Path(source.strip()).expanduser()
    if path.is_dir() and is_finished_run(path):
        return load("run", str(path.resolve()))
    from attnlab.models import resolve_model

    resolved = resolve_model(source)
    return load("model", resolved.path, resolved.name, resolved.source)


def clear_cache() -> None:
    """Forget every model :func:`load_for_attention` has kept."""
    _load_cached.cache_clear()


def _load(kind: str, path: str, name: str = "", origin: str = "local") -> LoadedModel:
    import torch

    from attnlab.runtime import device

    if kind == "run":
        from attnlab.inference.loading import load_run_model

        log.info("Loading run %s with eager attention", path)
        model, tokenizer = load_run_model(path, attn_implementation="eager", dtype=torch.float32)
        loaded = LoadedModel(model, tokenizer, Path(path).name, path, "run")
    else:
        from transformers import AutoModel, AutoTokenizer

        from attnlab.models import ResolvedModel, load_pretrained

        resolved = ResolvedModel(name or Path(path).name, path, origin)
        log.info("Loading %s (%s) with eager attention", resolved.name, resolved.path)
        tokenizer = load_pretrained(AutoTokenizer.from_pretrained, resolved)
        model = load_pretrained(AutoModel.from_pretrained, resolved, attn_implementation="eager",
                                dtype=torch.float32)
        loaded = LoadedModel(model, tokenizer, resolved.name, resolved.path, "model")
    loaded.model.to(device()).eval()
    return loaded


_load_cached = functools.lru_cache(maxsize=CACHE_SIZE)(_load)


# ------------------------------------------------------------------------------------- extraction


def extract_attention(text: str, source: str | LoadedModel = DEFAULT_SOURCE, *,
                      max_tokens: int | None = None) -> AttentionResult:
    """Run ``text`` through the model once and return every layer's and head's attention weights.

    Text longer than the model accepts (or than ``max_tokens``) is truncated, keeping the special
    tokens; the result says so (``truncated``, ``notes``) and the truncation is logged.
    """
    import torch

    if not isinstance(text, str) or not text.strip():
        raise UserError("empty text", where="text", fix="pass a sentence to explain")
    if max_tokens is not None and max_tokens < 1:
        raise UserError(f"max_tokens must be positive, got {max_tokens}", where="--max-tokens")
    loaded = source if isinstance(source, LoadedModel) else load_for_attention(source)
    tok, model = loaded.tokenizer, loaded.model

    limit = loaded.max_length
    if max_tokens is not None:
        limit = max_tokens if limit is None else min(limit, max_tokens)
    n_input = len(tok(text, add_special_tokens=True, verbose=False)["input_ids"])
    truncated = limit is not None and n_input > limit
    enc = tok(text, add_special_tokens=True, truncation=truncated, max_length=limit if truncated else None,
              return_tensors="pt")
    ids = enc["input_ids"]
    if ids.shape[1] == 0:
        raise UserError("the text has no tokens", where="text", fix="pass a sentence with words in it")
    notes = []
    if truncated:
        notes.append(f"text truncated from {n_input} to {ids.shape[1]} tokens (model limit {limit})")
        log.warning("%s: %s", loaded.name, notes[-1])

    dev = next(model.parameters()).device
    inputs = {"input_ids": ids.to(dev)}
    if "attention_mask" in enc:
        inputs["attention_mask"] = enc["attention_mask"].to(dev)
    with torch.inference_mode():
        out = model(**inputs, output_attentions=True)
    attentions = getattr(out, "attentions", None)
    if not attentions or any(a is None for a in attentions):
        raise UserError(f"model '{loaded.name}' returned no attention weights", where="--model",
                        fix="use a transformer whose attention supports attn_implementation='eager'")
    # tuple of L tensors (1, H, T, T) -> (L, H, T, T)
    att = torch.stack([a[0].float() for a in attentions]).cpu().numpy().astype(np.float32, copy=False)

    id_list = ids[0].tolist()
    special = set(getattr(tok, "all_special_ids", []) or [])
    return AttentionResult(
        text=text,
        tokens=tok.convert_ids_to_tokens(id_list),
        input_ids=id_list,
        attentions=att,
        model_name=loaded.name,
        is_causal=_is_causal(loaded.model, att),
        special_mask=[i in special for i in id_list],
        truncated=truncated,
        n_input_tokens=n_input,
        max_length=limit,
        notes=notes,
    )


def _is_causal(model: Any, att: np.ndarray) -> bool:
    """Causal when the self-attention modules say so (Llama-style ``is_causal``, BERT's
    ``is_decoder``), or when no head puts any weight above the diagonal."""
    config = getattr(model, "config", None)
    if getattr(config, "is_decoder", False):
        return True
    for name, module in model.named_modules():
        if getattr(module, "is_causal", False) is True and "cross" not in name:
            return True
    t = att.shape[-1]
    return t > 1 and not np.triu(att, k=1).any()


# ------------------------------------------------------------------------------- queries and keys

NEURON_TOLERANCE = 1e-4  # softmax(q.k * scale) must give the model's own weights this closely (fp32)


@dataclass
class QueryKeys:
    """Every token's query and key vector in every layer and head, as the model's self-attention
    projections (``query``/``key``) computed them, and the model's own attention weights from the
    same forward pass. The pre-softmax score of query ``i`` for key ``j`` is
    ``sum(queries[l, h, i] * keys[l, h, j]) * scale`` (``scale`` = 1/sqrt(d_head)); a softmax over
    ``j`` gives ``attentions[l, h, i, j]`` (checked when extracted: ``max_error``)."""

    text: str
    tokens: list[str]  # display tokens
    special_mask: list[bool]
    queries: np.ndarray  # (layers, heads, T, d_head) float32
    keys: np.ndarray  # (layers, heads, T, d_head) float32
    scale: float
    attentions: np.ndarray  # (layers, heads, T, T) float32: the model's weights
    model_name: str
    max_error: float = 0.0  # largest |softmax(q.k * scale) - attention| over every layer, head and row

    @property
    def head_dim(self) -> int:
        return int(self.queries.shape[-1])

    def scores(self, layer: int, head: int) -> np.ndarray:
        """(T, T) pre-softmax scores q_i . k_j * scale of one head, in float64."""
        q, k = self.queries[layer, head].astype(np.float64), self.keys[layer, head].astype(np.float64)
        return q @ k.T * self.scale

    def weights(self, layer: int, head: int) -> np.ndarray:
        """(T, T) softmax of :meth:`scores` over the keys."""
        s = self.scores(layer, head)
        e = np.exp(s - s.max(-1, keepdims=True))
        return e / e.sum(-1, keepdims=True)


def self_attention_modules(model: Any) -> list[Any]:
    """The self-attention modules of a BERT-style encoder, in layer order: those holding ``query`` and
    ``key`` projections and their head count and size (BERT, RoBERTa, MiniLM, ELECTRA, ...)."""
    return [m for name, m in model.named_modules()
            if "crossattention" not in name.lower() and all(hasattr(m, a) for a in (
                "query", "key", "num_attention_heads", "attention_head_size"))]


def extract_query_keys(text: str, source: str | LoadedModel = DEFAULT_SOURCE, *,
                       max_tokens: int | None = None) -> QueryKeys:
    """The query and key vectors of ``text``'s tokens (forward hooks on each self-attention's
    ``query``/``key`` projections, LoRA included) beside the attention weights of the same pass.

    A model whose self-attention is not a BERT-style ``query``/``key`` pair, or whose scores are not
    q.k/sqrt(d) alone (relative position terms, say), is refused with a UserError."""
    loaded = source if isinstance(source, LoadedModel) else load_for_attention(source)
    modules = self_attention_modules(loaded.model)
    if not modules:
        raise UserError(f"'{loaded.name}' has no BERT-style self-attention (query and key projections)",
                        where="neuron view", fix="the neuron view covers BERT-family encoders such as minilm-l6")
    captured: dict[tuple[int, str], Any] = {}

    def keep(i: int, part: str):
        def hook(module: Any, args: Any, output: Any) -> None:
            captured[(i, part)] = output.detach()
        return hook

    handles = [getattr(m, part).register_forward_hook(keep(i, part))
               for i, m in enumerate(modules) for part in ("query", "key")]
    try:
        result = extract_attention(text, loaded, max_tokens=max_tokens)
    finally:
        for h in handles:
            h.remove()
    if len(modules) != result.num_layers or len(captured) != 2 * len(modules):
        raise UserError(f"'{loaded.name}' has {len(modules)} query/key pairs for {result.num_layers} attention "
                        "layers", where="neuron view", fix="the neuron view covers BERT-family encoders")

    def heads(i: int, part: str) -> np.ndarray:  # (1, T, H * d) -> (H, T, d)
        m, out = modules[i], captured[(i, part)]
        return out[0].float().view(out.shape[1], m.num_attention_heads, m.attention_head_size).transpose(0, 1) \
            .cpu().numpy()

    qs = np.stack([heads(i, "query") for i in range(len(modules))]).astype(np.float32, copy=False)
    ks = np.stack([heads(i, "key") for i in range(len(modules))]).astype(np.float32, copy=False)
    scale = float(getattr(modules[0], "scaling", modules[0].attention_head_size ** -0.5))
    qk = QueryKeys(text, result.display_tokens, result.special_mask, qs, ks, scale, result.attentions,
                   result.model_name)
    qk.max_error = max(float(np.abs(qk.weights(layer, head) - result.attentions[layer, head]).max())
                       for layer in range(result.num_layers) for head in range(result.num_heads))
    if qk.max_error > NEURON_TOLERANCE:
        raise UserError(f"softmax(q.k/sqrt(d)) differs from '{loaded.name}''s attention by {qk.max_error:.2g}: its "
                        "scores hold more than q.k (position terms)", where="neuron view",
                        fix="the neuron view covers encoders whose scores are q.k/sqrt(d), such as minilm-l6")
    return qk
