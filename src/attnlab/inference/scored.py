"""Prediction for regression and multi-label runs: the same sequence classifier as classification,
read out differently.

- :class:`RegressionPredictor` (``--task regression``): the one output is the prediction, in the
  target's units; a row is ``{"text", "target", "score"}``.
- :class:`MultiLabelPredictor` (``--task multi-label``): a sigmoid per label; a row is ``{"text",
  "labels", "probabilities", "thresholds"}``, ``labels`` being those whose probability reaches the
  threshold the run tuned on validation (``labels.json``; 0.5 for a run without).

Batching, sorting by length, the engines and long texts are the :class:`Predictor`'s; only what a
batch's logits become (:meth:`Predictor._outputs`) and a row differ. With ``long_text="chunk"`` the
windows' outputs are averaged (``mean``); ``max`` rescales class probabilities to sum to 1, which
means nothing for a score or for independent labels, so it is refused.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from attnlab.errors import UserError
from attnlab.inference.predictor import Predictor

DEFAULT_THRESHOLD = 0.5  # the probability from which a label applies, for a label its run tuned none for


class _Scored(Predictor):
    def _long_text(self, setting):
        setting = super()._long_text(setting)
        if setting.chunks and setting.aggregate != "mean":
            raise UserError(f"a {type(self).__name__.removesuffix('Predictor').lower()} run averages its windows; "
                            f"{setting.aggregate!r} is for classification", where="long_text_aggregate",
                            fix="use the aggregate 'mean' (the default)")
        return setting

    def _rows(self, texts: Sequence[str], long_text: str | None, aggregate: str | None, stride: int | None):
        """(texts, outputs (N, K), windows per text, the long-text setting) for :meth:`predict`."""
        texts = self._check(texts)
        setting = self._setting(long_text, aggregate, stride)
        outputs, windows = self._scores(texts, setting)
        return texts, outputs, windows, setting


class RegressionPredictor(_Scored):
    """Scores from a regression run: ``predict_scores(texts)`` -> (N,) floats; ``predict`` -> rows."""

    def _outputs(self, logits: torch.Tensor) -> torch.Tensor:
        return logits.float()  # (B, 1): the prediction itself

    def predict_scores(self, texts: Sequence[str], **long_text: Any) -> np.ndarray:
        """The predicted target of each text, shape (N,)."""
        return self.predict_proba(texts, **long_text)[:, 0]

    def predict(self, texts: Sequence[str], *, long_text: str | None = None, aggregate: str | None = None,
                stride: int | None = None) -> list[dict[str, Any]]:
        """Per text: ``target`` (the target's name) and ``score`` (the prediction)."""
        texts, outputs, windows, setting = self._rows(texts, long_text, aggregate, stride)
        return [{"text": t, "target": self.labels[0], "score": float(y[0])} | (setting.record(n) if setting.chunks
                                                                                else {})
                for t, y, n in zip(texts, outputs, windows, strict=True)]


class MultiLabelPredictor(_Scored):
    """Label sets from a multi-label run.

    Args:
        thresholds: per label name, the probability from which it applies (default: the run's, tuned on
            validation; 0.5 for a label without one).
    """

    def __init__(self, model: torch.nn.Module, tokenizer: Any, labels: list[str], *,
                 thresholds: dict[str, float] | None = None, **kwargs: Any):
        super().__init__(model, tokenizer, labels, **kwargs)
        if thresholds is None:
            thresholds = self.run.thresholds if self.run is not None else {}
        unknown = sorted(set(thresholds) - set(labels))
        if unknown:
            raise UserError(f"thresholds for labels the run does not have: {unknown[:5]}", where="thresholds",
                            fix=f"name labels among {labels}")
        self.thresholds = {name: float(thresholds.get(name, DEFAULT_THRESHOLD)) for name in labels}

    def _outputs(self, logits: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(logits)  # (B, K): each label's own probability

    def predict_labels(self, texts: Sequence[str], **long_text: Any) -> np.ndarray:
        """Which labels apply, shape (N, K) bool: probability at or above the label's threshold."""
        return self.predict_proba(texts, **long_text) >= np.array([self.thresholds[n] for n in self.labels])

    def predict(self, texts: Sequence[str], *, long_text: str | None = None, aggregate: str | None = None,
                stride: int | None = None) -> list[dict[str, Any]]:
        """Per text: ``labels`` (those over their thresholds, most probable first), every label's
        ``probabilities`` and the ``thresholds`` applied."""
        texts, probs, windows, setting = self._rows(texts, long_text, aggregate, stride)
        cut = np.array([self.thresholds[n] for n in self.labels])
        out = []
        for t, p, n in zip(texts, probs, windows, strict=True):
            on = [self.labels[k] for k in np.argsort(-p, kind="stable") if p[k] >= cut[k]]
            out.append({"text": t, "labels": on,
                        "probabilities": {name: float(v) for name, v in zip(self.labels, p, strict=True)},
                        "thresholds": self.thresholds} | (setting.record(n) if setting.chunks else {}))
        return out


__all__ = ["DEFAULT_THRESHOLD", "MultiLabelPredictor", "RegressionPredictor"]
