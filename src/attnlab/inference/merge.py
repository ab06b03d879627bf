"""``merge_run``: a run directory -> a plain transformers folder (LoRA folded into the weights)."""

from __future__ import annotations

from pathlib import Path

from attnlab.errors import UserError
from attnlab.inference.loading import load_run_model
from attnlab.io import atomic_dir
from attnlab.rundir import open_run


def merge_run(run_dir: str | Path, out_dir: str | Path, *, overwrite: bool = False) -> Path:
    run = open_run(run_dir)
    out = Path(out_dir).expanduser()
    if out.exists() and any(out.iterdir()) and not overwrite:
        raise UserError("output folder is not empty", where=str(out), fix="pass --overwrite or another folder")
    model, tokenizer = load_run_model(run, merge=True)
    with atomic_dir(out, overwrite=True) as tmp:  # an existing (empty, or --overwrite) folder is replaced at the end
        model.save_pretrained(tmp, safe_serialization=True)
        tokenizer.save_pretrained(tmp)
    return out
