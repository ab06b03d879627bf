"""A Transformer encoder built from scratch on :mod:`attnlab.attention`, as a Hugging Face model.

Importing this package registers the model type ``attnlab-scratch-encoder`` with ``AutoConfig``,
``AutoModel`` and ``AutoModelForSequenceClassification``, so a saved folder (or the ``model/`` of
a run directory) loads with plain transformers::

    import attnlab.scratch  # noqa: F401  (registers the model type)
    from transformers import AutoModelForSequenceClassification
    model = AutoModelForSequenceClassification.from_pretrained("runs/scratch/model")

``attnlab train --model scratch-encoder --method full`` trains it from random initialisation;
the registry builds the initial folder (config, random weights from a fixed seed, the minilm-l6
tokenizer) once in attnlab's cache, see :func:`default_model_dir`.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from transformers import AutoConfig, AutoModel, AutoModelForSequenceClassification

from attnlab.scratch.config import MODEL_TYPE, ScratchEncoderConfig
from attnlab.scratch.model import (
    EncoderBlock,
    ScratchEncoderForSequenceClassification,
    ScratchEncoderModel,
    ScratchEncoderPreTrainedModel,
)

log = logging.getLogger(__name__)

# The registry's default size: small enough to train from scratch on 2 CPU cores.
DEFAULT_CONFIG: dict[str, Any] = dict(hidden_size=256, num_hidden_layers=4, num_attention_heads=4,
                                      intermediate_size=1024, max_position_embeddings=128)
DEFAULT_SEED = 0
_FOLDER = "scratch-encoder-v1"  # bump when DEFAULT_CONFIG or the architecture changes

AutoConfig.register(MODEL_TYPE, ScratchEncoderConfig, exist_ok=True)
AutoModel.register(ScratchEncoderConfig, ScratchEncoderModel, exist_ok=True)
AutoModelForSequenceClassification.register(ScratchEncoderConfig, ScratchEncoderForSequenceClassification,
                                            exist_ok=True)


def create_model_dir(out: str | Path, tokenizer_from: str | Path, *, seed: int = DEFAULT_SEED,
                     num_labels: int = 2, **config: Any) -> Path:
    """Write a randomly initialised encoder classifier and a tokenizer to ``out`` (atomically).

    The vocabulary size and padding id come from the tokenizer; ``config`` overrides
    :data:`DEFAULT_CONFIG`. The same ``seed`` gives the same weights.
    """
    import torch
    from transformers import AutoTokenizer

    out = Path(out)
    tokenizer = AutoTokenizer.from_pretrained(tokenizer_from, trust_remote_code=False)
    settings = DEFAULT_CONFIG | config
    tokenizer.model_max_length = settings["max_position_embeddings"]
    cfg = ScratchEncoderConfig(vocab_size=len(tokenizer), pad_token_id=tokenizer.pad_token_id or 0,
                               num_labels=num_labels, **settings)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = ScratchEncoderForSequenceClassification(cfg)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}."))
    model.save_pretrained(tmp, safe_serialization=True)
    tokenizer.save_pretrained(tmp)
    if out.exists():
        shutil.rmtree(out)
    os.replace(tmp, out)
    return out


def default_model_dir() -> Path | None:
    """The registry's ``scratch-encoder`` folder in attnlab's cache, built on first use from the
    minilm-l6 tokenizer; ``None`` when minilm-l6 is not installed."""
    from attnlab.models import packaged

    target = packaged.cache_dir() / "models" / _FOLDER
    if (target / "config.json").is_file():
        return target
    minilm = packaged.minilm_path()
    if minilm is None:
        return None
    log.info("Building the from-scratch encoder (random init, seed %d) in %s (once)", DEFAULT_SEED, target)
    return create_model_dir(target, minilm)


__all__ = [
    "DEFAULT_CONFIG",
    "MODEL_TYPE",
    "EncoderBlock",
    "ScratchEncoderConfig",
    "ScratchEncoderForSequenceClassification",
    "ScratchEncoderModel",
    "ScratchEncoderPreTrainedModel",
    "create_model_dir",
    "default_model_dir",
]
