"""A Transformer encoder built from scratch on :mod:`attnlab.attention`, as a Hugging Face model.

Importing this package registers the model type ``attnlab-scratch-encoder`` with ``AutoConfig``,
``AutoModel`` and ``AutoModelForSequenceClassification``, so a saved folder (or the ``model/`` of
a run directory) loads with plain transformers::

    import attnlab.scratch  # noqa: F401  (registers the model type)
    from transformers import AutoModelForSequenceClassification
    model = AutoModelForSequenceClassification.from_pretrained("runs/scratch/model")

``attnlab train --model scratch-encoder --method full`` trains it from random initialisation;
the model registry (``attnlab.models``) builds the initial folder once in attnlab's cache with
:func:`create_model_dir` (config :data:`DEFAULT_CONFIG`, random weights from :data:`DEFAULT_SEED`,
the minilm-l6 tokenizer), named :data:`CACHE_FOLDER`. This package imports nothing of attnlab but
:mod:`attnlab.attention` and :mod:`attnlab.io`: teaching code never depends on the production path.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from transformers import AutoConfig, AutoModel, AutoModelForSequenceClassification

from attnlab.io import atomic_dir
from attnlab.scratch.config import MODEL_TYPE, ScratchEncoderConfig
from attnlab.scratch.model import (
    EncoderBlock,
    ScratchEncoderForSequenceClassification,
    ScratchEncoderModel,
    ScratchEncoderPreTrainedModel,
)

# The registry's default size: small enough to train from scratch on 2 CPU cores.
DEFAULT_CONFIG: dict[str, Any] = dict(hidden_size=256, num_hidden_layers=4, num_attention_heads=4,
                                      intermediate_size=1024, max_position_embeddings=128)
DEFAULT_SEED = 0
CACHE_FOLDER = "scratch-encoder-v1"  # the registry's folder name: bump when DEFAULT_CONFIG or the architecture changes

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
    with atomic_dir(out, overwrite=True) as tmp:
        model.save_pretrained(tmp, safe_serialization=True)
        tokenizer.save_pretrained(tmp)
    return out


__all__ = [
    "CACHE_FOLDER",
    "DEFAULT_CONFIG",
    "DEFAULT_SEED",
    "MODEL_TYPE",
    "EncoderBlock",
    "ScratchEncoderConfig",
    "ScratchEncoderForSequenceClassification",
    "ScratchEncoderModel",
    "ScratchEncoderPreTrainedModel",
    "create_model_dir",
]
