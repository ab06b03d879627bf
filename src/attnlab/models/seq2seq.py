"""A seq2seq model (T5, BART, ...) as a classifier: each label's name is a target token sequence,
and a text's class scores are the log-likelihoods of those sequences.

The log-likelihood of each label's tokens given the input, teacher-forced, summed over its tokens
(end-of-sequence included); the argmax is the prediction and a softmax over the K scores gives
class probabilities. Training's evaluation (``attnlab.training.text2text``) and prediction
(``attnlab.inference.text2text``) both score this way, so they agree by construction.
"""

from __future__ import annotations

from typing import Any

import torch
from transformers.modeling_outputs import BaseModelOutput

from attnlab.errors import UserError

IGNORE = -100  # label padding that the loss skips


def label_targets(tokenizer: Any, labels: list[str]) -> list[list[int]]:
    """Each label name as the token ids the decoder must write (with the tokenizer's end token)."""
    ids = [list(x) for x in tokenizer(text_target=list(labels))["input_ids"]]
    seen: dict[tuple[int, ...], str] = {}
    for name, seq in zip(labels, ids, strict=True):
        if tuple(seq) in seen:
            raise UserError(f"labels '{seen[tuple(seq)]}' and '{name}' tokenize to the same target", where="labels",
                            fix="rename the labels in the data so that their words differ")
        seen[tuple(seq)] = name
    return ids


def targets_tensor(targets: list[list[int]]) -> torch.Tensor:
    """(K, L) label token ids, right-padded with -100."""
    width = max(len(t) for t in targets)
    return torch.tensor([t + [IGNORE] * (width - len(t)) for t in targets], dtype=torch.long)


def label_log_likelihoods(model: torch.nn.Module, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                          targets: torch.Tensor) -> torch.Tensor:
    """(B, K): log p(label k's tokens | text b), teacher-forced, summed over the label's tokens.

    ``targets`` is (K, L) padded with -100 (:func:`targets_tensor`). The encoder runs once per text;
    each text's encoding is then repeated for the K labels and the decoder scores all B*K pairs in
    one batch (``labels=`` makes the model build its own shifted decoder inputs)."""
    b, k = input_ids.shape[0], targets.shape[0]
    encoder = getattr(model, "module", model).get_encoder()  # under DDP the model is wrapped
    hidden = encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state  # (B, T, D)
    labels = targets.to(input_ids.device).repeat(b, 1)  # (B*K, L): text b's rows are b*K .. b*K+K-1
    out = model(encoder_outputs=BaseModelOutput(last_hidden_state=hidden.repeat_interleave(k, 0)),
                attention_mask=attention_mask.repeat_interleave(k, 0), labels=labels)
    logp = out.logits.float().log_softmax(-1)  # (B*K, L, V)
    token_ll = logp.gather(-1, labels.clamp_min(0).unsqueeze(-1)).squeeze(-1)  # (B*K, L)
    return (token_ll * (labels != IGNORE)).sum(-1).view(b, k)


def class_ids(labels: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """(B,) the class of each padded target row: the label whose token sequence it is (targets are
    distinct, :func:`label_targets` checks)."""
    width = max(labels.shape[1], targets.shape[1])
    pad = lambda t: torch.nn.functional.pad(t, (0, width - t.shape[1]), value=IGNORE)  # noqa: E731
    match = (pad(labels)[:, None, :] == pad(targets.to(labels.device))[None]).all(-1)  # (B, K)
    if not bool(match.any(-1).all()):
        raise ValueError("an evaluation target is not one of the label sequences")
    return match.long().argmax(-1)


__all__ = ["IGNORE", "class_ids", "label_log_likelihoods", "label_targets", "targets_tensor"]
