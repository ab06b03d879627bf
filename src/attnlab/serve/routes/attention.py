"""POST /v1/attention: the tokens of a text, its attention weights (all of them, or the chosen layer
and head) and the rollout importance. The response's size is worked out from the shapes first, and
a request that would get more weights than ``Limits.max_attention_weights`` is refused (422)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from fastapi import APIRouter

from attnlab.errors import UserError
from attnlab.serve.errors import ApiError
from attnlab.serve.routes import State
from attnlab.serve.schemas import AttentionRequest

router = APIRouter()

JSON_BYTES_PER_WEIGHT = 8  # a weight rounded to 5 decimals and its comma: "0.12345," at most
ROLLOUT_KEYS = ("method", "source_index", "source_token", "scores", "importance", "ranked")


def select(att: np.ndarray, layer: int | None, head: int | None) -> tuple[tuple[slice | int, ...], list[str]]:
    """The index into ``att`` (L, H, T, T) for a layer/head choice, and the axes it leaves."""
    if layer is not None and head is not None:
        return (layer, head), ["query", "key"]
    if layer is not None:
        return (layer,), ["head", "query", "key"]
    if head is not None:
        return (slice(None), head), ["layer", "query", "key"]
    return (), ["layer", "head", "query", "key"]


def check_size(shape: tuple[int, ...], dims: list[str], max_weights: int) -> None:
    """Refuse a response of more than ``max_weights`` attention weights, before it is built."""
    n = math.prod(shape)
    if n <= max_weights:
        return
    sizes = [f"{size} {dim}s" for size, dim in zip(shape, dims, strict=True) if dim in ("layer", "head")]
    sizes.append(f"{shape[-2]} x {shape[-1]} tokens")
    fewer = "send a shorter text" if len(dims) == 2 else "pick a layer or a head (or both), or send a shorter text"
    raise ApiError(422, f"the response would hold {n:,} attention weights ({' x '.join(sizes)}, up to "
                        f"{n * JSON_BYTES_PER_WEIGHT / 1e6:.1f} MB); this server sends at most {max_weights:,} "
                        f"per request: {fewer}")


@router.post("/v1/attention", tags=["explain"])
def attention(req: AttentionRequest, state: State) -> dict[str, Any]:
    """Tokens, attention weights (every layer and head, or the chosen ones) and rollout importance.

    ``attentions`` is nested lists shaped ``shape`` with axes ``dims``: [layer, head, query, key]
    by default; [head, query, key] with ``layer``; [query, key] with both; [layer, query, key]
    with ``head`` only. Row i is how query token i spreads its attention over the key tokens.
    """
    from attnlab.explain import rollout

    result = state.extract(req.text, req.model, req.run)
    try:
        layer, head = result.check_layer_head(req.layer, req.head, where=None)
    except UserError as exc:
        raise ApiError(422, exc.one_line()) from None
    index, dims = select(result.attentions, layer, head)
    shape = result.attentions[index].shape  # a view: nothing is copied yet
    check_size(shape, dims, state.limits.max_attention_weights)
    roll = rollout(result).to_dict()
    return {
        "model": result.model_name, "tokens": result.tokens, "display_tokens": result.display_tokens,
        "special": result.special_mask, "layers": result.num_layers, "heads": result.num_heads,
        "layer": layer, "head": head, "is_causal": result.is_causal, "truncated": result.truncated,
        "notes": result.notes, "dims": dims, "shape": list(shape),
        "attentions": np.round(result.attentions[index].astype(np.float64), 5).tolist(),
        "rollout": {k: roll[k] for k in ROLLOUT_KEYS},
    }
