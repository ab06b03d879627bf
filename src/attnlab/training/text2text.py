"""Text-to-text classification: a seq2seq model (T5, BART, ...) learns to *write* the label word.

The framing of T5 (Raffel et al., 2020): the input ``"sst2 sentence: a gorgeous, moving film"``
has the target ``"positive"``, the label's name from ``labels.json``. Training is ordinary
teacher-forced cross-entropy on the target's tokens (``DataCollatorForSeq2Seq`` pads them with -100).

Evaluation and prediction do not generate free text. They **score every label**: the
log-likelihood of each label's token sequence given the input, teacher-forced, summed over its
tokens (end-of-sequence included), and take the argmax. A prediction is therefore always one of
the labels, and a softmax over the K scores gives class probabilities, so accuracy, macro-F1,
``predict`` and ``evaluate`` read exactly as for a classifier. The encoder runs once per text; the
decoder once per (text, label) pair (:mod:`attnlab.models.seq2seq`, shared with prediction). Free
generation is reported beside it, once, at the end of training (``generation_exact_match``: greedy
output equals the label word).
"""

from __future__ import annotations

import functools
from typing import Any

import torch
from transformers import AutoConfig, AutoModelForSeq2SeqLM, DataCollatorForSeq2Seq, Trainer

from attnlab.errors import UserError
from attnlab.models import ResolvedModel, load_pretrained, resolve_model
from attnlab.models.seq2seq import IGNORE, class_ids, label_log_likelihoods, label_targets, targets_tensor
from attnlab.training.tasks import Task


def check(cfg) -> None:
    """A one-line UserError for a model text2text cannot use, before data or weights load (which
    methods train text2text is each method's own fact: ``Method.tasks``)."""
    resolved = resolve_model(cfg.model)
    config = load_pretrained(AutoConfig.from_pretrained, resolved)
    if not getattr(config, "is_encoder_decoder", False):
        raise UserError(f"model {resolved.name} is not an encoder-decoder; text2text needs a seq2seq model such as "
                        "t5-small", where="--model", fix="pass a seq2seq model (t5-small, a T5 folder), or drop "
                        "--task text2text")


def build_model(cfg, resolved: ResolvedModel, ds, tokenizer: Any, load_kwargs: dict[str, Any]) -> torch.nn.Module:
    """The seq2seq model with its language-model head: the label words are written with it."""
    return load_pretrained(AutoModelForSeq2SeqLM.from_pretrained, resolved, **({"dtype": torch.float32} | load_kwargs))


def describe(tokenizer: Any, labels: list[str], prefix: str) -> dict[str, Any]:
    """What a text2text run's metrics.json records: the prefix and each label's target tokens."""
    targets = label_targets(tokenizer, labels)
    return {"prefix": prefix, "scoring": "sum of the label tokens' log-probabilities (teacher-forced), argmax",
            "label_tokens": {n: tokenizer.convert_ids_to_tokens(t) for n, t in zip(labels, targets, strict=True)}}


def tokenize(ds, tokenizer: Any, max_length: int, prefix: str = ""):
    """``text`` -> ``input_ids`` (prefixed, truncated), ``label`` -> ``labels`` (the label word's ids)."""
    targets = label_targets(tokenizer, ds.labels)

    def encode(batch):
        enc = tokenizer([prefix + t for t in batch["text"]], truncation=True, max_length=max_length,
                        return_token_type_ids=False)
        enc["labels"] = [targets[i] for i in batch["label"]]
        enc["length"] = [len(ids) for ids in enc["input_ids"]]
        return enc

    return ds.splits.map(encode, batched=True, remove_columns=["text", "label"], desc="tokenizing")


def collator(tokenizer: Any, pad_to_multiple_of: int | None = None) -> DataCollatorForSeq2Seq:
    return DataCollatorForSeq2Seq(tokenizer, label_pad_token_id=IGNORE, pad_to_multiple_of=pad_to_multiple_of)


def trainer_parts(tokenizer: Any, labels: list[str], cfg):
    """(Trainer class, data collator) for ``train``: a :class:`LabelScoringTrainer` that knows the
    label targets, and a collator that pads targets with -100."""
    targets = targets_tensor(label_targets(tokenizer, labels))
    return functools.partial(LabelScoringTrainer, targets=targets), collator(tokenizer, cfg.pad_to_multiple_of)


# -- evaluation: label scoring (attnlab.models.seq2seq) -------------------------------------------

class LabelScoringTrainer(Trainer):
    """HF Trainer whose evaluation scores the labels: ``predictions`` are the (N, K) label
    log-likelihoods and ``label_ids`` the class ids, so the classification metrics (argmax) apply
    unchanged. Training is Trainer's own loop."""

    def __init__(self, *args: Any, targets: torch.Tensor, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.targets = targets

    def prediction_step(self, model, inputs, prediction_loss_only, ignore_keys=None):
        inputs = self._prepare_inputs(inputs)
        targets = self.targets.to(inputs["input_ids"].device)
        with torch.no_grad(), self.compute_loss_context_manager():
            scores = label_log_likelihoods(model, inputs["input_ids"], inputs["attention_mask"], targets)
        cls = class_ids(inputs["labels"], targets)
        # the true labels' scores give the usual loss: mean cross-entropy per target token
        loss = -scores.gather(1, cls[:, None]).sum() / (inputs["labels"] != IGNORE).sum()
        if prediction_loss_only:
            return loss.detach(), None, None
        return loss.detach(), scores.detach(), cls


@torch.no_grad()
def generation_exact_match(model: torch.nn.Module, tokenizer: Any, split, batch_size: int = 64) -> float:
    """Share of ``split`` (tokenized by :func:`tokenize`) whose greedy generation, decoded, equals
    its target word: free generation, the way T5 is usually read out (scoring never needs it)."""
    model.eval()
    device = next(model.parameters()).device
    pad = collator(tokenizer)
    rows = split.remove_columns([c for c in split.column_names if c not in ("input_ids", "attention_mask", "labels")])
    max_new = max(len(x) for x in rows["labels"]) + 1
    hits = 0
    for start in range(0, len(rows), batch_size):
        batch = pad([rows[i] for i in range(start, min(start + batch_size, len(rows)))])
        gen = model.generate(input_ids=batch["input_ids"].to(device), attention_mask=batch["attention_mask"].to(device),
                             max_new_tokens=max_new, do_sample=False, num_beams=1)
        want = batch["labels"].masked_fill(batch["labels"] == IGNORE, tokenizer.pad_token_id or 0)
        got = tokenizer.batch_decode(gen, skip_special_tokens=True)
        hits += sum(g.strip() == w.strip() for g, w in zip(got, tokenizer.batch_decode(want, skip_special_tokens=True),
                                                            strict=True))
    return hits / len(rows) if len(rows) else float("nan")


TASK = Task(
    "text2text", "SEQ_2_SEQ_LM", check=check, build_model=build_model, trainer_parts=trainer_parts,
    encode=lambda ds, tok, cfg: tokenize(ds, tok, cfg.max_length, cfg.text_prefix or ""),
    # free generation too, beside the label scoring
    split_metrics=lambda model, tok, split, cfg: {
        "generation_exact_match": generation_exact_match(model, tok, split, cfg.eval_batch_size)},
    describe=lambda tok, labels, cfg: {"text2text": describe(tok, labels, cfg.text_prefix or "")},
    card_line="task: text2text (the seq2seq model writes the label word; predictions score every label's tokens; "
              "load `model/` with AutoModelForSeq2SeqLM)")

__all__ = ["TASK", "LabelScoringTrainer", "build_model", "check", "collator", "describe", "generation_exact_match",
           "tokenize", "trainer_parts"]
