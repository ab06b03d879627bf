"""Load what a run directory holds as a ready-to-use model and tokenizer.

What loads is what the run recorded (:class:`attnlab.rundir.Run` reads it from config.yaml, and
for an older run from its files): its task picks the model class (:mod:`attnlab.inference.tasks`);
a whole-model run is a plain transformers folder; an adapter run (LoRA/QLoRA) holds a PEFT adapter,
applied to the recorded base model (by registry name first, so a run moves between machines, then
by the recorded folder), and optionally merged into the base weights for speed. A QLoRA run's base is
re-quantized to 4-bit NF4 exactly as in training, so predictions match the run's evaluation; to
merge, that base is first dequantized to fp32 (the values the adapter was trained against), so a
merged QLoRA model is a plain fp32 transformers model.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from transformers import AutoTokenizer

from attnlab.errors import UserError
from attnlab.inference.tasks import run_task
from attnlab.logs import quiet_model_loading
from attnlab.models import load_pretrained, resolve_model
from attnlab.models.pooling import POOLINGS, apply_pooling
from attnlab.rundir import CONFIG, Run, open_run

log = logging.getLogger(__name__)


def base_model_ref(run: Run) -> str:
    """The base model of an adapter run: the registry name it was trained from when that still
    resolves here, otherwise the folder it recorded (PEFT's record, for a run that has no other)."""
    if run.base_model:
        try:
            return resolve_model(run.base_model).path
        except UserError:
            pass
    if not run.base_model_path:
        raise UserError("the run records no base model for its adapter", where=str(run.path / CONFIG),
                        fix="the run directory is incomplete: re-run training")
    return run.base_model_path


PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl")


def require_safetensors(run: Run) -> None:
    """Refuse a run whose weights are not safetensors: a pickle (``pytorch_model.bin``) can run code
    when loaded, and attnlab itself only ever writes safetensors."""
    name = "adapter_model.safetensors" if run.is_adapter else "model.safetensors"
    if (run.model_dir / name).is_file() or (run.model_dir / f"{name}.index.json").is_file():
        return
    pickles = sorted(p.name for p in run.model_dir.glob("*") if p.suffix in PICKLE_SUFFIXES)
    if pickles:
        raise UserError(f"the run's weights are pickle files ({', '.join(pickles)}), not safetensors; attnlab loads "
                        "safetensors only", where=str(run.model_dir),
                        fix="re-save the model with save_pretrained(safe_serialization=True), or re-run training")
    raise UserError(f"the run has no {name}", where=str(run.model_dir), fix="re-run training into a fresh --output-dir")


def refuse_custom_code(run: Run) -> None:
    """Refuse a run whose model folder asks for its own Python code (``auto_map``): attnlab loads
    built-in transformers architectures only, never prompts, and never runs code from a run."""
    for name in ("config.json", "tokenizer_config.json", "adapter_config.json"):
        path = run.model_dir / name
        try:
            data = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
        except (json.JSONDecodeError, UnicodeDecodeError):
            continue  # a corrupted file is reported by the load itself
        if isinstance(data, dict) and data.get("auto_map"):
            raise UserError(f"the run's {name} asks to run custom code (auto_map); attnlab never runs code from "
                            "a run", where=str(path), fix="use a run trained by attnlab on a built-in architecture")


def _base_kwargs(run: Run, sized_head: bool, extra: dict[str, Any]) -> dict[str, Any]:
    if not sized_head:
        return extra
    problem_type = run_task(run).problem_type  # regression, multi-label: the loss the head trained with
    # a base checkpoint with a head of another size (2 classes, a run with 1 or 3 outputs) gets a fresh
    # head, as in training: the adapter holds the trained one (PEFT's modules_to_save)
    return dict(num_labels=len(run.labels), id2label=dict(enumerate(run.labels)),
                label2id={n: i for i, n in enumerate(run.labels)}, ignore_mismatched_sizes=True,
                **({"problem_type": problem_type} if problem_type else {}), **extra)


def _load_adapter(run: Run, auto: Any, base_kw: dict[str, Any], merge: bool) -> torch.nn.Module:
    """A PEFT adapter run: the adapter on its recorded base model, rebuilt as the run recorded it
    (``quantization``, which the qlora method records: the base re-quantized as in training)."""
    from peft import PeftModel

    resolved = resolve_model(base_model_ref(run))
    if run.quantization:
        from attnlab.models.nf4 import load_base

        base = load_base(auto.from_pretrained, resolved, merge=merge, **base_kw)
    else:
        base = load_pretrained(auto.from_pretrained, resolved, **base_kw)
    model = PeftModel.from_pretrained(base, run.model_dir)
    return model.merge_and_unload() if merge else model


def _load_whole(run: Run, auto: Any, extra: dict[str, Any]) -> torch.nn.Module:
    """A whole-model run: a plain transformers folder, every tensor present."""
    import attnlab.scratch  # noqa: F401  (registers the from-scratch encoder with the Auto classes)

    model, info = auto.from_pretrained(run.model_dir, use_safetensors=True, output_loading_info=True,
                                       trust_remote_code=False, **extra)
    missing = sorted(info["missing_keys"]) + sorted(k[0] for k in info["mismatched_keys"])
    if missing:  # transformers would fill them in at random, and its report is silenced
        raise UserError(f"the run's weights lack {len(missing)} tensors ({', '.join(missing[:3])}"
                        f"{', ...' if len(missing) > 3 else ''})", where=str(run.model_dir),
                        fix="the run directory is incomplete: re-run training")
    return model


def load_run_model(run: Run | str | Path, *, merge: bool = False, attn_implementation: str | None = None,
                   **kwargs: Any) -> tuple[torch.nn.Module, Any]:
    """(model in eval mode, tokenizer) for a finished run. ``merge`` folds LoRA into the weights.

    What loads is what the run recorded: its ``task`` (the model class), whether ``model/`` is a
    PEFT adapter (whatever method trained it) or a whole model, and, for an adapter, its base model
    and how that base was stored."""
    run = run if isinstance(run, Run) else open_run(run)
    task = run_task(run)
    auto, sized_head = task.model_class(), task.sized_head
    pooling = run_pooling(run) if sized_head else None  # a bad record fails before any weights load
    require_safetensors(run)
    refuse_custom_code(run)
    # fp32 master weights: transformers 5 would otherwise keep a checkpoint's fp16/bf16 dtype
    extra: dict[str, Any] = {"dtype": torch.float32} | kwargs
    if attn_implementation:
        extra["attn_implementation"] = attn_implementation
    try:
        with quiet_model_loading():  # the head a PEFT base is built with is reported "newly initialized"
            tokenizer = AutoTokenizer.from_pretrained(run.model_dir, trust_remote_code=False)
            model = (_load_adapter(run, auto, _base_kwargs(run, sized_head, extra), merge) if run.is_adapter
                     else _load_whole(run, auto, extra))
    except (OSError, ValueError, RuntimeError, SafetensorError) as exc:  # corrupted or incomplete weights
        if "mismatched" in str(exc) or "size mismatch" in str(exc):
            raise UserError(f"the run's weights do not fit the {len(run.labels)} labels in labels.json",
                            where=str(run.path), fix="the run directory is inconsistent: re-run training") from None
        raise UserError(f"could not load the model in the run: {str(exc).splitlines()[0][:200]}",
                        where=str(run.model_dir), fix="re-run training into a fresh --output-dir") from None
    if sized_head and model.config.num_labels != len(run.labels):
        raise UserError(f"model has {model.config.num_labels} outputs but labels.json lists {len(run.labels)}",
                        where=str(run.path), fix="the run directory is inconsistent: re-run training")
    if pooling is not None:
        apply_pooling(model, pooling)
    model.eval()
    return model, tokenizer


def run_pooling(run: Run) -> str:
    """How the run's classifier pools, as it recorded (runs from before pooling was a setting used
    the architecture's own pooler), checked against the poolings there are."""
    if run.pooling not in POOLINGS[1:]:
        raise UserError(f"config.yaml has pooling {run.pooling!r}, not one of {', '.join(POOLINGS[1:])}",
                        where=str(run.path / CONFIG), fix="the run directory is inconsistent: re-run training")
    return run.pooling
