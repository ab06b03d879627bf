"""Load what a run directory holds as a ready-to-use model and tokenizer.

Full runs are plain transformers folders. LoRA/QLoRA runs hold a PEFT adapter: it is applied to
the recorded base model (by registry name first, so a run moves between machines, then by the
path PEFT recorded), and optionally merged into the base weights for speed.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import torch
from transformers import AutoModelForSequenceClassification, AutoTokenizer

from attnlab.errors import UserError
from attnlab.models import load_pretrained, resolve_model
from attnlab.training.rundir import Run, open_run

log = logging.getLogger(__name__)


def base_model_ref(run: Run) -> str:
    """The base model of an adapter run: the registry name it was trained from when that still
    resolves here, otherwise the path PEFT recorded."""
    name = run.config.get("model") or run.metrics.get("model")
    if name:
        try:
            return resolve_model(name).path
        except UserError:
            pass
    cfg = json.loads((run.model_dir / "adapter_config.json").read_text())
    return cfg["base_model_name_or_path"]


def load_run_model(run: Run | str | Path, *, merge: bool = False, attn_implementation: str | None = None,
                   **kwargs: Any) -> tuple[torch.nn.Module, Any]:
    """(model in eval mode, tokenizer) for a finished run. ``merge`` folds LoRA into the weights."""
    run = run if isinstance(run, Run) else open_run(run)
    # fp32 master weights: transformers 5 would otherwise keep a checkpoint's fp16/bf16 dtype
    extra: dict[str, Any] = {"dtype": torch.float32} | kwargs
    if attn_implementation:
        extra["attn_implementation"] = attn_implementation
    try:
        tokenizer = AutoTokenizer.from_pretrained(run.model_dir)
        if run.is_adapter:
            from peft import PeftModel

            base = load_pretrained(
                AutoModelForSequenceClassification.from_pretrained, resolve_model(base_model_ref(run)),
                num_labels=len(run.labels), id2label=dict(enumerate(run.labels)),
                label2id={n: i for i, n in enumerate(run.labels)}, **extra)
            model = PeftModel.from_pretrained(base, run.model_dir)
            if merge:
                model = model.merge_and_unload()
        else:
            model = AutoModelForSequenceClassification.from_pretrained(run.model_dir, **extra)
    except (OSError, ValueError, RuntimeError) as exc:  # corrupted or incomplete weights
        raise UserError(f"could not load the model in the run: {str(exc).splitlines()[0][:200]}",
                        where=str(run.model_dir), fix="re-run training into a fresh --output-dir") from None
    if model.config.num_labels != len(run.labels):
        raise UserError(f"model has {model.config.num_labels} outputs but labels.json lists {len(run.labels)}",
                        where=str(run.path), fix="the run directory is inconsistent: re-run training")
    model.eval()
    return model, tokenizer
