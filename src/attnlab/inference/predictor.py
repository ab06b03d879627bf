"""Fast batch prediction for a finished run.

What makes it fast (each measured by ``benchmarks/infer_speed.py``; numbers in docs/speed.md):

- texts are tokenized in one call (the Rust tokenizer batches them), sorted by token count and
  cut into batches padded only to their own longest text, so little padding is computed;
- LoRA adapters are merged into the base weights by default (no adapter overhead);
- no autograd bookkeeping (``torch.inference_mode``), and one text skips batching entirely;
- bf16 autocast where the hardware does bf16 natively (never on AVX2-only CPUs, where it is
  emulated and ~100x slower);
- optionally, ``engine="onnxruntime"``: the merged model exported to ONNX with its transformer
  blocks fused (one attention kernel per layer, fused layer norms and GELU) and run by ONNX Runtime
  on the CPU; same predictions, checked against the torch model when the engine is built
  (``attnlab.inference.onnx_engine``; needs ``pip install 'attnlab[onnx]'``);
- optionally, ``quantize="int8"``: dynamic int8 quantization of the linear layers (weights
  stored int8, activations quantized on the fly; fbgemm/x86 kernels or ONNX Runtime's, CPU only).
  It changes probabilities slightly, so it is opt-in: evaluation and the exactness checks use fp32.

Texts longer than ``max_length`` are truncated, or with ``long_text="chunk"`` read in overlapping
windows whose probabilities are averaged (or maxed): :mod:`attnlab.inference.long_text`.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from attnlab import runtime
from attnlab.data.text import text_problem
from attnlab.errors import UserError
from attnlab.inference.loading import load_run_model
from attnlab.inference.long_text import LongText, encode_windows
from attnlab.inference.long_text import aggregate as aggregate_windows
from attnlab.inference.tasks import run_task
from attnlab.models.heads import is_head_param
from attnlab.rundir import Run, open_run

log = logging.getLogger(__name__)

QUANTIZE_CHOICES = (None, "int8")
ENGINES = ("torch", "onnxruntime")


# removed before asking whether a text has anything to classify: control characters (NUL included)
# and zero-width ones; what is left must have a non-whitespace character
def check_engine(engine: str) -> str:
    if engine not in ENGINES:
        raise UserError(f"unknown engine {engine!r}", where="engine", fix="pass 'torch' or 'onnxruntime'")
    return engine


def has_4bit_layers(model: torch.nn.Module) -> bool:
    """Whether bitsandbytes 4-bit layers are in ``model`` (an unmerged QLoRA run's base)."""
    return any(type(m).__module__.startswith("bitsandbytes") for m in model.modules())


def quantize_int8(model: torch.nn.Module, *, skip_head: bool = True) -> torch.nn.Module:
    """A copy of ``model`` with dynamic int8 ``nn.Linear`` layers (CPU only): weights stored int8 per
    row, activations quantized per batch on the fly (fbgemm/x86 kernels, fast on AVX2).

    With ``skip_head`` the classification head (tiny, and where rounding moves the logits most
    directly) stays fp32."""
    if has_4bit_layers(model):
        raise UserError("the model is already 4-bit quantized (an unmerged QLoRA run)", where="quantize='int8'",
                        fix="load it merged (the default) or use quantize=None")
    names = {name for name, mod in model.named_modules()
             if isinstance(mod, torch.nn.Linear) and not (skip_head and is_head_param(name))}
    if not names:
        raise UserError("int8 quantization found no linear layers to quantize", where="quantize='int8'",
                        fix="use quantize=None for this model")
    with warnings.catch_warnings():  # torch.ao.quantization's eager mode is deprecated, but still the CPU fast path
        warnings.simplefilter("ignore")
        from torch.ao.quantization import quantize_dynamic

        for engine in ("x86", "fbgemm"):
            if engine in torch.backends.quantized.supported_engines:
                torch.backends.quantized.engine = engine
                break
        return quantize_dynamic(model, names, dtype=torch.qint8)


class Predictor:
    """``Predictor.from_run(dir).predict(["text", ...])`` -> one dict per text.

    Args:
        quantize: ``None`` (fp32 or native bf16, exact) or ``"int8"`` (dynamic int8 linear layers, CPU).
        num_threads: CPU threads: torch's intra-op threads (process-wide) for the torch engine, the
            session's for onnxruntime (default: torch's current setting).
        engine: ``"torch"`` (default) or ``"onnxruntime"`` (the model exported to ONNX, fused, CPU).
        long_text, long_text_aggregate, long_text_stride: how texts longer than ``max_length`` are
            read by default (:class:`~attnlab.inference.long_text.LongText`: ``"truncate"`` or
            ``"chunk"``; ``"mean"`` or ``"max"``; overlap tokens); ``predict`` can override them per call.
    """

    long_text_modes: tuple[str, ...] = ("truncate", "chunk")  # what this predictor can do with long texts

    def __init__(self, model: torch.nn.Module, tokenizer: Any, labels: list[str], *, max_length: int = 128,
                 batch_size: int = 32, precision: str = "auto", device: str | torch.device | None = None,
                 run: Run | None = None, quantize: str | None = None, num_threads: int | None = None,
                 engine: str = "torch", long_text: str = "truncate", long_text_aggregate: str = "mean",
                 long_text_stride: int | None = None):
        self.long_text = self._long_text(LongText(long_text, long_text_aggregate, long_text_stride).check())
        if quantize not in QUANTIZE_CHOICES:
            raise UserError(f"unknown quantize option {quantize!r}", where="quantize", fix="pass None or 'int8'")
        check_engine(engine)
        self.device = torch.device(device) if device else runtime.device()
        if (quantize == "int8" or engine == "onnxruntime") and self.device.type != "cpu":
            what = "int8 dynamic quantization" if quantize else "the ONNX Runtime engine"
            raise UserError(f"{what} runs on CPU only", where=f"quantize={quantize!r}, engine={engine!r}",
                            fix="use quantize=None and engine='torch' on a GPU (bf16 autocast is used there)")
        if num_threads and self.device.type == "cpu" and engine == "torch":
            runtime.set_num_threads(num_threads)
        model = model.to(self.device).eval()
        self.quantize, self.engine = quantize, engine
        self.onnx = None
        if engine == "onnxruntime":
            from attnlab.inference.onnx_engine import OnnxEngine

            self.onnx = OnnxEngine(model, tokenizer, quantize=quantize, num_threads=num_threads)
            self.model = model  # kept for what needs the torch modules (attention maps)
        else:
            self.model = quantize_int8(model) if quantize == "int8" else model
        self.tokenizer, self.labels, self.run = tokenizer, labels, run
        self.max_length, self.batch_size = max_length, batch_size
        # int8 layers compute in fp32 around their int8 matmuls; autocast would only add casts
        self.precision = "fp32" if quantize or self.onnx else runtime.resolve_precision(precision, self.device)
        pad = tokenizer.pad_token_id
        if pad is None:
            pad = getattr(getattr(model, "config", None), "pad_token_id", None)
        self.pad_id = int(pad) if pad is not None else 0
        self.left_pad = getattr(tokenizer, "padding_side", "right") == "left"

    @classmethod
    def from_run(cls, run_dir: str | Path | Run, *, merge: bool = True, attn_implementation: str | None = None,
                 **kwargs: Any) -> Predictor:
        """Load a finished run. ``attn_implementation`` (e.g. ``"eager"`` or ``"sdpa"``) picks the
        transformers attention kernel; ``None`` keeps the model's default (docs/speed.md compares them)."""
        run = run_dir if isinstance(run_dir, Run) else open_run(run_dir)
        if cls is Predictor:  # the run's task picks its predictor (text2text: one that scores the label words)
            cls = run_task(run).predictor()
        model, tokenizer = load_run_model(run, merge=merge, attn_implementation=attn_implementation)
        max_length = int(run.config.get("max_length", 128))
        return cls(model, tokenizer, run.labels, max_length=max_length, run=run, **kwargs)

    @staticmethod
    def _check(texts: Sequence[str]) -> list[str]:
        if isinstance(texts, str):
            texts = [texts]
        out = []
        for i, t in enumerate(texts):
            if (problem := text_problem(t)) is not None:
                raise UserError(f"text {i + 1} {problem}", where="predict input",
                                fix="pass texts with visible characters, as valid Unicode")
            out.append(t)
        if not out:
            raise UserError("no texts to predict", where="predict input", fix="pass at least one text")
        return out

    def _batch(self, rows: list[dict[str, list[int]]]) -> dict[str, torch.Tensor]:
        """Pad token-id rows to the longest of them: (B, T) tensors on the device."""
        width = max(len(r["input_ids"]) for r in rows)
        out = {}
        for key in rows[0]:
            arr = np.full((len(rows), width), self.pad_id if key == "input_ids" else 0, dtype=np.int64)
            for i, r in enumerate(rows):
                v = r[key]
                if self.left_pad:
                    arr[i, width - len(v):] = v
                else:
                    arr[i, :len(v)] = v
            out[key] = torch.from_numpy(arr).to(self.device)
        return out

    def _long_text(self, setting: LongText) -> LongText:
        if setting.mode not in self.long_text_modes:
            raise UserError(f"{type(self).__name__} cannot read long texts by {setting.mode!r}", where="long_text",
                            fix=f"use long_text={self.long_text_modes[0]!r} for this run")
        return setting

    def _setting(self, long_text: str | None, aggregate: str | None, stride: int | None) -> LongText:
        """The predictor's long-text setting with this call's choices (None: the predictor's)."""
        return self._long_text(self.long_text.merged(long_text, aggregate, stride))

    def _model_texts(self, texts: list[str]) -> list[str]:
        """The texts as the model reads them (a task may add a prefix)."""
        return texts

    def _logits(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        if self.onnx is not None:
            return self.onnx.logits(batch)
        with runtime.autocast(self.precision, self.device):
            return self.model(**batch).logits.float()

    def _outputs(self, logits: torch.Tensor) -> torch.Tensor:
        """What a batch's logits become (class probabilities: softmax; regression and multi-label
        predictors override it: :mod:`attnlab.inference.tasks`)."""
        return torch.softmax(logits, dim=-1)

    def predict_proba_windows(self, texts: Sequence[str], *, long_text: str | None = None,
                              aggregate: str | None = None, stride: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(:meth:`predict_proba`'s probabilities, how many windows each text was read in: 1 unless chunked)."""
        return self._scores(self._check(texts), self._setting(long_text, aggregate, stride))

    @torch.inference_mode()
    def _scores(self, texts: list[str], setting: LongText) -> tuple[np.ndarray, np.ndarray]:
        """(class probabilities (N, num_labels) in the order of ``texts``, windows read per text (N,))."""
        texts = self._model_texts(texts)
        if len(texts) == 1 and not setting.chunks:  # one text: no sorting, no padding
            enc = self.tokenizer(texts, truncation=True, max_length=self.max_length, return_tensors="pt")
            return self._outputs(self._logits(enc.to(self.device))).cpu().numpy(), np.ones(1, np.int64)
        enc, owner = encode_windows(self.tokenizer, texts, self.max_length, setting)  # a row per window
        keys = [k for k in ("input_ids", "attention_mask", "token_type_ids") if k in enc]
        lengths = np.fromiter((len(ids) for ids in enc["input_ids"]), dtype=np.int64, count=len(owner))
        order = np.argsort(-lengths, kind="stable")  # longest first: the slowest batch fails fast
        probs = np.empty((len(owner), len(self.labels)), dtype=np.float32)
        for start in range(0, len(owner), self.batch_size):
            idx = order[start:start + self.batch_size]
            batch = self._batch([{k: enc[k][i] for k in keys} for i in idx])
            probs[idx] = self._outputs(self._logits(batch)).cpu().numpy()
        return aggregate_windows(probs, owner, len(texts), setting.aggregate), np.bincount(owner, minlength=len(texts))

    def predict_proba(self, texts: Sequence[str], *, long_text: str | None = None, aggregate: str | None = None,
                      stride: int | None = None) -> np.ndarray:
        """Class probabilities, shape (N, num_labels), in the order of ``texts``. ``long_text``,
        ``aggregate``, ``stride``: this call's long-text setting (default: the predictor's)."""
        return self.predict_proba_windows(texts, long_text=long_text, aggregate=aggregate, stride=stride)[0]

    def predict(self, texts: Sequence[str], *, long_text: str | None = None, aggregate: str | None = None,
                stride: int | None = None) -> list[dict[str, Any]]:
        """Per text: ``label``, ``score`` (its probability) and every class ``probabilities``; with
        ``long_text="chunk"`` also ``long_text``, ``windows`` (how many were read) and ``aggregate``."""
        texts = self._check(texts)
        setting = self._setting(long_text, aggregate, stride)
        probs, windows = self._scores(texts, setting)
        out = []
        for text, p, n in zip(texts, probs, windows, strict=True):
            k = int(p.argmax())
            out.append({"text": text, "label": self.labels[k], "score": float(p[k]),
                        "probabilities": {name: float(v) for name, v in zip(self.labels, p, strict=True)}}
                       | (setting.record(n) if setting.chunks else {}))
        return out
