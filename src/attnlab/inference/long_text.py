"""Texts longer than a run's ``max_length``: ``truncate`` (the default: the first ``max_length``
tokens decide) or ``chunk`` (every token is read).

``chunk`` cuts each text into windows of ``max_length`` tokens (special tokens included) that
overlap by ``stride`` tokens, with the tokenizer's own machinery (``return_overflowing_tokens=True,
stride=..., truncation=True``: the windows question answering uses), scores every window in the
same sorted, padded batches as short texts, and gives the text the ``mean`` (default) of its
windows' class probabilities or their per-class ``max`` (then rescaled to sum to 1, so the label is
the class that some window is surest of). A text that fits is one window whose tokens are the
truncated text's, so its scores are those of ``truncate``.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from attnlab.errors import UserError

MODES = ("truncate", "chunk")
AGGREGATES = ("mean", "max")
STRIDE_SHARE = 4  # default overlap: a quarter of the window


@dataclass(frozen=True)
class LongText:
    """How a predictor reads texts longer than its ``max_length``.

    Args:
        mode: ``"truncate"`` (the first ``max_length`` tokens) or ``"chunk"`` (sliding windows).
        aggregate: ``"mean"`` or ``"max"`` of the windows' probabilities (``chunk`` only).
        stride: tokens consecutive windows share (``chunk`` only; default: a quarter of ``max_length``).
    """

    mode: str = "truncate"
    aggregate: str = "mean"
    stride: int | None = None

    def check(self) -> LongText:
        if self.mode not in MODES:
            raise UserError(f"unknown long-text mode {self.mode!r}", where="long_text",
                            fix=f"pass one of {', '.join(MODES)}")
        if self.aggregate not in AGGREGATES:
            raise UserError(f"unknown long-text aggregate {self.aggregate!r}", where="long_text_aggregate",
                            fix=f"pass one of {', '.join(AGGREGATES)}")
        if self.stride is not None and (isinstance(self.stride, bool) or not isinstance(self.stride, int)
                                        or self.stride < 0):
            raise UserError(f"long-text stride must be a whole number of tokens >= 0, got {self.stride!r}",
                            where="long_text_stride", fix="pass e.g. 32, or leave it out")
        return self

    def merged(self, mode: str | None = None, aggregate: str | None = None, stride: int | None = None) -> LongText:
        """This setting with the values given (not None) replaced, checked."""
        given = {k: v for k, v in (("mode", mode), ("aggregate", aggregate), ("stride", stride)) if v is not None}
        return replace(self, **given).check() if given else self

    @property
    def chunks(self) -> bool:
        return self.mode == "chunk"

    def record(self, windows: int) -> dict[str, Any]:
        """What a prediction row says about how its text was read (``chunk`` only)."""
        return {"long_text": self.mode, "windows": int(windows), "aggregate": self.aggregate}


def window_stride(setting: LongText, tokenizer: Any, max_length: int) -> int:
    """The overlap in tokens: ``setting.stride`` or a quarter of the window; it must leave each window
    at least one new token (the tokenizer refuses a stride as long as a window's text part)."""
    room = max_length - tokenizer.num_special_tokens_to_add(pair=False)
    stride = max_length // STRIDE_SHARE if setting.stride is None else setting.stride
    stride = min(stride, room - 1) if setting.stride is None else stride
    if not 0 <= stride < room:
        raise UserError(f"long-text stride {stride} leaves no new tokens in a window of {max_length} "
                        f"({room} text tokens)", where="long_text_stride", fix=f"pass a stride below {room}")
    return stride


def encode_windows(tokenizer: Any, texts: list[str], max_length: int, setting: LongText) -> tuple[Any, np.ndarray]:
    """(token rows, the text each row belongs to): one row per text for ``truncate``, one per window
    for ``chunk`` (rows of a text are consecutive, in reading order)."""
    if not setting.chunks:
        enc = tokenizer(texts, truncation=True, max_length=max_length)
        return enc, np.arange(len(texts))
    enc = tokenizer(texts, truncation=True, max_length=max_length, return_overflowing_tokens=True,
                    stride=window_stride(setting, tokenizer, max_length))
    if "overflow_to_sample_mapping" not in enc:
        raise UserError("this run's tokenizer cannot cut texts into windows (it is not a fast tokenizer)",
                        where="long_text='chunk'", fix="use long_text='truncate' for this run")
    return enc, np.asarray(enc.pop("overflow_to_sample_mapping"), dtype=np.int64)


def aggregate(probs: np.ndarray, owner: np.ndarray, n: int, how: str = "mean") -> np.ndarray:
    """(N, K) per-text probabilities from (W, K) per-window ones; ``owner[w]`` is window w's text."""
    if len(owner) == n:  # one window per text: nothing to combine
        return probs
    if how == "max":
        out = np.zeros((n, probs.shape[1]), dtype=probs.dtype)
        np.maximum.at(out, owner, probs)
        return out / out.sum(axis=1, keepdims=True)
    out = np.zeros((n, probs.shape[1]), dtype=np.float64)
    np.add.at(out, owner, probs)
    return (out / np.bincount(owner, minlength=n)[:, None]).astype(probs.dtype)


__all__ = ["AGGREGATES", "MODES", "LongText", "aggregate", "encode_windows", "window_stride"]
