"""How a classifier turns its token vectors into one sentence vector.

``pooler``: the architecture's own path (BERT: a dense + tanh layer on [CLS]; RoBERTa/MPNet: their
head on the first token). ``cls``: the first token's vector as it is. ``mean`` / ``max``: the mean or
the maximum of the token vectors under the attention mask.

A sentence-transformers checkpoint (all-MiniLM-L6-v2, all-mpnet-base-v2) was trained through mean
pooling and its BERT pooler is untrained: :func:`checkpoint_pooling` reads that from its
``1_Pooling/config.json`` (``pooler`` when it says nothing). What ``auto`` means is the method's
choice (``Method.auto_pooling``): the checkpoint's pooling for the ``head`` probe, ``pooler`` for
methods that train the encoder (benchmarks/pooling.py measured them).

The choice is applied as a forward hook on the model's body, so the model stays a plain
``*ForSequenceClassification`` that Trainer, PEFT, merging and ONNX export handle as usual; outside
attnlab the same logits come from a few lines (docs/concepts/fine-tuning.md, "Pooling").
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # torch is imported where pooling runs: the CLI reads POOLINGS without it
    import torch
    from torch import nn

POOLINGS = ("auto", "mean", "cls", "max", "pooler")
_ST_MODES = {"pooling_mode_mean_tokens": "mean", "pooling_mode_cls_token": "cls", "pooling_mode_max_tokens": "max"}


def checkpoint_pooling(folder: str | Path | None) -> str:
    """The pooling a local checkpoint was trained with: its sentence-transformers pooling config,
    else ``pooler`` (the architecture's own)."""
    cfg = Path(folder) / "1_Pooling" / "config.json" if folder is not None else None
    if cfg is None or not cfg.is_file():
        return "pooler"
    try:
        modes = json.loads(cfg.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return "pooler"
    chosen = [name for key, name in _ST_MODES.items() if isinstance(modes, dict) and modes.get(key)]
    return chosen[0] if len(chosen) == 1 else "pooler"


def resolve_pooling(requested: str, folder: str | Path | None, auto: str = "checkpoint") -> str:
    """``requested``, with ``auto`` replaced by ``auto``: ``checkpoint`` (what the checkpoint in
    ``folder`` was trained with) or a pooling name (the method's choice, e.g. ``pooler``)."""
    if requested != "auto":
        return requested
    return checkpoint_pooling(folder) if auto == "checkpoint" else auto


def pool(hidden: torch.Tensor, mask: torch.Tensor | None, how: str) -> torch.Tensor:
    """(batch, tokens, width) -> (batch, width) by ``how`` (cls, mean or max), padding excluded."""
    import torch

    if how == "cls":
        return hidden[:, 0]
    if mask is None:
        mask = torch.ones(hidden.shape[:2], dtype=torch.long, device=hidden.device)
    m = mask[:, :, None].to(hidden.dtype)
    if how == "mean":
        return (hidden * m).sum(1) / m.sum(1).clamp(min=1)
    if how == "max":
        return hidden.masked_fill(m == 0, torch.finfo(hidden.dtype).min).amax(1)
    raise ValueError(f"unknown pooling {how!r}")


def _body(model: nn.Module) -> nn.Module:
    """The encoder inside a (possibly PEFT-wrapped) sequence classifier: ``model.bert``, ``model.mpnet``."""
    from torch import nn

    while hasattr(model, "get_base_model") or type(model).__name__.startswith("Peft"):
        model = model.get_base_model() if hasattr(model, "get_base_model") else model.base_model
    prefix = getattr(model, "base_model_prefix", "")
    body = getattr(model, prefix, None)
    if not isinstance(body, nn.Module):
        raise ValueError(f"{type(model).__name__} has no encoder body to pool")
    return body


def apply_pooling(model: nn.Module, how: str) -> nn.Module:
    """Make ``model`` classify through ``how``; ``pooler`` leaves it as it is. Idempotent."""
    if how == "pooler":
        return model
    if how not in POOLINGS[1:]:
        raise ValueError(f"unknown pooling {how!r}")
    body = _body(model)
    if getattr(body, "_attnlab_pooling", None) == how:
        return model
    if getattr(body, "_attnlab_pooling", None) is not None:
        raise ValueError(f"the model already pools by {body._attnlab_pooling}")

    def hook(module: nn.Module, args: tuple, kwargs: dict[str, Any], output: Any) -> Any:
        mask = kwargs.get("attention_mask", args[1] if len(args) > 1 else None)
        pooled = pool(output[0], mask, how)
        if getattr(output, "pooler_output", None) is not None:  # BERT-style heads read pooler_output
            output.pooler_output = pooled
        else:  # heads that read the first token (RoBERTa, MPNet, DistilBERT)
            hidden = output[0].clone()
            hidden[:, 0] = pooled
            output.last_hidden_state = hidden
        return output

    body.register_forward_hook(hook, with_kwargs=True)
    body._attnlab_pooling = how
    for p in bypassed_parameters(model):  # the pooler no longer feeds the logits: nothing to train there
        p.requires_grad_(False)
    return model


def bypassed_prefixes(model: nn.Module) -> tuple[str, ...]:
    """Parameter-name prefixes of the modules the pooling bypasses (BERT's ``pooler`` when the model
    pools by mean/cls/max), as ``model.named_parameters()`` spells them. A method must not train
    them: they get no gradient (and DDP, which expects one, would stop)."""
    try:
        body = _body(model)
    except ValueError:
        return ()
    pooler = getattr(body, "pooler", None)
    if getattr(body, "_attnlab_pooling", None) is None or pooler is None:
        return ()
    return tuple(f"{name}." for name, module in model.named_modules() if module is pooler)


def is_bypassed(name: str, prefixes: tuple[str, ...]) -> bool:
    """Whether the parameter or module called ``name`` lies inside a module the pooling bypasses
    (``prefixes``: :func:`bypassed_prefixes` of the model; none, when the model pools as built)."""
    return f"{name}.".startswith(prefixes)


def bypassed_parameters(model: nn.Module) -> list:
    prefixes = bypassed_prefixes(model)
    return [p for n, p in model.named_parameters() if is_bypassed(n, prefixes)]


__all__ = ["POOLINGS", "apply_pooling", "bypassed_parameters", "bypassed_prefixes", "checkpoint_pooling",
           "is_bypassed", "pool", "resolve_pooling"]
