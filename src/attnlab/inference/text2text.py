"""Prediction for a text2text run (``--task text2text``): the seq2seq model scores each label word.

:class:`Text2TextPredictor` is a :class:`~attnlab.inference.Predictor` whose "logits" are the
log-likelihoods of the K label token sequences (:mod:`attnlab.models.seq2seq`), so the softmax over
them, batching, sorting by length and merging work as for a classifier. ``Predictor.from_run``
picks it for a text2text run (:mod:`attnlab.inference.tasks`); ``attnlab predict``/``evaluate``/
``attnlab.load`` need nothing else.
"""

from __future__ import annotations

from typing import Any

import torch

from attnlab import runtime
from attnlab.errors import UserError
from attnlab.inference.predictor import Predictor
from attnlab.inference.tasks import TASKS
from attnlab.models.seq2seq import label_log_likelihoods, label_targets, targets_tensor


class Text2TextPredictor(Predictor):
    """Class probabilities from a seq2seq model: softmax over each label word's log-likelihood.

    Args:
        prefix: put before every text, as in training (default: the run's ``text_prefix``).
    """

    def __init__(self, model: torch.nn.Module, tokenizer: Any, labels: list[str], *, prefix: str | None = None,
                 **kwargs: Any):
        if kwargs.get("engine", "torch") not in TASKS["text2text"].engines:
            raise UserError("the ONNX Runtime engine serves classifiers, not text2text runs", where="engine",
                            fix="use engine='torch' for this run")
        super().__init__(model, tokenizer, labels, **kwargs)
        if prefix is None and self.run is not None:
            prefix = self.run.config.get("text_prefix")
        self.prefix = prefix or ""
        self.targets = targets_tensor(label_targets(tokenizer, labels)).to(self.device)  # (K, L)

    def _logits(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        with runtime.autocast(self.precision, self.device):
            return label_log_likelihoods(self.model, batch["input_ids"], batch["attention_mask"], self.targets)

    # windows after the first would lack the prefix the model was trained with
    long_text_modes = ("truncate",)

    def _model_texts(self, texts: list[str]) -> list[str]:
        return [self.prefix + t for t in texts]
