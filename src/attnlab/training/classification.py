"""Classification: a sequence-classification head on the model, trained with cross-entropy over the
labels (``AutoModelForSequenceClassification``; a seq2seq checkpoint such as T5 gets its
``...ForSequenceClassification`` too). Regression and multi-label build the same model with another
``problem_type`` (:func:`build_model`)."""

from __future__ import annotations

from typing import Any

import torch
from transformers import AutoModelForSequenceClassification, DataCollatorWithPadding, Trainer

from attnlab.data import TextDataset
from attnlab.models import ResolvedModel, load_pretrained
from attnlab.models.pooling import apply_pooling
from attnlab.training.tasks import Task


def tokenize(ds: TextDataset, tokenizer: Any, max_length: int):
    """``text`` -> ``input_ids`` (truncated), a ``length`` column and (fast tokenizers) ``truncated``:
    whether the text was cut; ``label`` stays."""

    def encode(batch):
        enc = tokenizer(batch["text"], truncation=True, max_length=max_length)
        enc["length"] = [len(ids) for ids in enc["input_ids"]]
        if enc.encodings is not None:  # what truncation cut off is kept as the encoding's overflow
            enc["truncated"] = [bool(e.overflowing) for e in enc.encodings]
        return enc

    return ds.splits.map(encode, batched=True, remove_columns=["text"], desc="tokenizing")


def build_model(cfg, resolved: ResolvedModel, ds: TextDataset, tokenizer: Any, load_kwargs: dict[str, Any],
                problem_type: str | None = None):
    """A freshly loaded sequence classifier with one output per name in ``ds.labels`` (a new head where
    the checkpoint's differs), classifying through ``cfg.pooling`` (models/pooling.py). ``problem_type``
    is transformers' loss choice: ``regression`` (MSE) or ``multi_label_classification`` (BCE with logits);
    None for single-label classification (cross-entropy)."""
    labels = ds.labels
    extra = {"problem_type": problem_type} if problem_type else {}
    model = load_pretrained(
        AutoModelForSequenceClassification.from_pretrained, resolved,
        num_labels=len(labels), id2label=dict(enumerate(labels)), label2id=ds.label2id,
        ignore_mismatched_sizes=True, **extra, **({"dtype": torch.float32} | load_kwargs))
    if model.config.pad_token_id is None and tokenizer.pad_token_id is not None:
        model.config.pad_token_id = tokenizer.pad_token_id
    return apply_pooling(model, cfg.pooling)  # resolved by Setup.load_model; apply_pooling refuses auto


def trainer_parts(tokenizer: Any, labels: list[str], cfg):
    """Trainer as it is, and a collator that pads each batch to its longest text."""
    return Trainer, DataCollatorWithPadding(tokenizer, pad_to_multiple_of=cfg.pad_to_multiple_of)


TASK = Task("classification", "SEQ_CLS", encode=lambda ds, tok, cfg: tokenize(ds, tok, cfg.max_length),
            build_model=build_model, trainer_parts=trainer_parts)
