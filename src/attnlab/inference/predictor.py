"""Fast batch prediction for a finished run.

Texts are sorted by length and batched so that little padding is computed, LoRA adapters are
merged into the base weights by default (no adapter overhead at inference), and bf16 autocast is
used where the hardware does bf16 natively.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from attnlab import runtime
from attnlab.errors import UserError
from attnlab.inference.loading import load_run_model
from attnlab.training.rundir import Run, open_run

log = logging.getLogger(__name__)


class Predictor:
    """``Predictor.from_run(dir).predict(["text", ...])`` -> one dict per text."""

    def __init__(self, model: torch.nn.Module, tokenizer: Any, labels: list[str], *, max_length: int = 128,
                 batch_size: int = 64, precision: str = "auto", device: str | torch.device | None = None,
                 run: Run | None = None):
        self.device = torch.device(device) if device else runtime.device()
        self.model = model.to(self.device).eval()
        self.tokenizer, self.labels, self.run = tokenizer, labels, run
        self.max_length, self.batch_size = max_length, batch_size
        self.precision = runtime.resolve_precision(precision, self.device)

    @classmethod
    def from_run(cls, run_dir: str | Path | Run, *, merge: bool = True, **kwargs: Any) -> Predictor:
        run = run_dir if isinstance(run_dir, Run) else open_run(run_dir)
        model, tokenizer = load_run_model(run, merge=merge)
        max_length = int(run.config.get("max_length", 128))
        return cls(model, tokenizer, run.labels, max_length=max_length, run=run, **kwargs)

    @staticmethod
    def _check(texts: Sequence[str]) -> list[str]:
        if isinstance(texts, str):
            texts = [texts]
        out = []
        for i, t in enumerate(texts):
            if not isinstance(t, str) or not t.strip():
                raise UserError(f"text {i + 1} is empty", where="predict input", fix="pass non-empty texts")
            out.append(t)
        if not out:
            raise UserError("no texts to predict", where="predict input", fix="pass at least one text")
        return out

    @torch.inference_mode()
    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        """Class probabilities, shape (N, num_labels), in the order of ``texts``."""
        texts = self._check(texts)
        lengths = [len(t) for t in texts]
        order = np.argsort(lengths, kind="stable")[::-1]  # longest first: the slowest batch fails fast
        probs = np.empty((len(texts), len(self.labels)), dtype=np.float32)
        for start in range(0, len(texts), self.batch_size):
            idx = order[start:start + self.batch_size]
            enc = self.tokenizer([texts[i] for i in idx], truncation=True, max_length=self.max_length,
                                 padding=True, return_tensors="pt").to(self.device)
            with runtime.autocast(self.precision, self.device):
                logits = self.model(**enc).logits
            probs[idx] = torch.softmax(logits.float(), dim=-1).cpu().numpy()
        return probs

    def predict(self, texts: Sequence[str]) -> list[dict[str, Any]]:
        """Per text: ``label``, ``score`` (its probability) and every class ``probabilities``."""
        texts = self._check(texts)
        probs = self.predict_proba(texts)
        out = []
        for text, p in zip(texts, probs, strict=True):
            k = int(p.argmax())
            out.append({"text": text, "label": self.labels[k], "score": float(p[k]),
                        "probabilities": {name: float(v) for name, v in zip(self.labels, p, strict=True)}})
        return out
