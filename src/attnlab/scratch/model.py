"""A Transformer encoder classifier built only on :mod:`attnlab.attention`.

Read top to bottom, it is the encoder of Vaswani et al. (2017) with a classification head:

    x = Embed(ids) * sqrt(C) + PE(positions)               (B, T, C)   tokens + positions
    repeat N times (pre-LN, the default):
        x = x + Dropout(MultiHeadAttention(LN(x)))          (B, T, C)   every token looks at every token
        x = x + Dropout(W2 GELU(W1 LN(x)))                  (B, T, C)   the same 2-layer MLP at each position
    h = LN(x)                                               (B, T, C)
    p = mean of h over the real tokens (or h[:, 0])         (B, C)
    logits = W_out Dropout(p)                               (B, num_labels)

with post-LN (``norm="post"``) the LayerNorm moves after each residual sum instead, as in the paper
and in BERT: ``x = LN(x + Dropout(sublayer(x)))``.

It is a real Hugging Face model: :class:`ScratchEncoderForSequenceClassification` subclasses
``PreTrainedModel``, so ``save_pretrained`` / ``from_pretrained``, Trainer, PEFT and the Auto
classes (after ``import attnlab.scratch``) all work on it, and ``output_attentions=True`` returns
every layer's attention weights for ``attnlab explain``.
"""

from __future__ import annotations

import math
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import nn
from transformers import PreTrainedModel
from transformers import initialization as init
from transformers.modeling_outputs import BaseModelOutput, SequenceClassifierOutput

from attnlab.attention import LearnedPositionalEmbedding, MultiHeadAttention, SinusoidalPositionalEncoding
from attnlab.attention.positional import sinusoidal_encoding
from attnlab.scratch.config import ScratchEncoderConfig

__all__ = ["EncoderBlock", "ScratchEncoderForSequenceClassification", "ScratchEncoderModel",
           "ScratchEncoderPreTrainedModel"]


class FeedForward(nn.Module):
    """Position-wise MLP: W2 GELU(W1 x), applied to every token independently."""

    def __init__(self, d_model: int, d_ff: int, dropout: float) -> None:
        super().__init__()
        self.fc1 = nn.Linear(d_model, d_ff)  # (C -> 4C)
        self.fc2 = nn.Linear(d_ff, d_model)  # (4C -> C)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.dropout(F.gelu(self.fc1(x))))  # (B, T, C)


class EncoderBlock(nn.Module):
    """Self-attention then feed-forward, each wrapped in a residual connection and a LayerNorm."""

    def __init__(self, config: ScratchEncoderConfig) -> None:
        super().__init__()
        c = config.hidden_size
        self.pre_norm = config.norm == "pre"
        self.attention = MultiHeadAttention(c, config.num_attention_heads,
                                            dropout=config.attention_probs_dropout_prob)
        self.ffn = FeedForward(c, config.intermediate_size, config.hidden_dropout_prob)
        self.ln1 = nn.LayerNorm(c, eps=config.layer_norm_eps)
        self.ln2 = nn.LayerNorm(c, eps=config.layer_norm_eps)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)

    def forward(self, x: torch.Tensor, attention_mask: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        """x (B, T, C), attention_mask (B, T) with 1 = real token -> new x (B, T, C), weights (B, H, T, T)."""
        if self.pre_norm:
            a, weights = self.attention(self.ln1(x), attention_mask)  # (B, T, C), (B, H, T, T)
            x = x + self.dropout(a)
            x = x + self.dropout(self.ffn(self.ln2(x)))
        else:
            a, weights = self.attention(x, attention_mask)
            x = self.ln1(x + self.dropout(a))
            x = self.ln2(x + self.dropout(self.ffn(x)))
        return x, weights


class ScratchEncoderPreTrainedModel(PreTrainedModel):
    """Weight initialisation and the Hugging Face plumbing shared by the encoder and the classifier."""

    config_class = ScratchEncoderConfig
    config: ScratchEncoderConfig
    base_model_prefix = "encoder"
    main_input_name = "input_ids"
    _no_split_modules: ClassVar[list[str]] = ["EncoderBlock"]

    def _init_weights(self, module: nn.Module) -> None:
        super()._init_weights(module)  # normal(0, initializer_range) linears/embeddings, LayerNorm = 1, 0
        if isinstance(module, SinusoidalPositionalEncoding):  # a non-persistent buffer: rebuild it
            p, c = module.pe.shape
            init.copy_(module.pe, sinusoidal_encoding(p, c))


class ScratchEncoderModel(ScratchEncoderPreTrainedModel):
    """Token embeddings + positions + N encoder blocks (+ a final LayerNorm in the pre-LN variant)."""

    def __init__(self, config: ScratchEncoderConfig) -> None:
        super().__init__(config)
        c = config.hidden_size
        self.token_embeddings = nn.Embedding(config.vocab_size, c, padding_idx=config.pad_token_id)
        if config.position_encoding == "sinusoidal":
            self.positions = SinusoidalPositionalEncoding(c, config.max_position_embeddings)
        else:
            self.positions = LearnedPositionalEmbedding(config.max_position_embeddings, c)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)
        self.layers = nn.ModuleList(EncoderBlock(config) for _ in range(config.num_hidden_layers))
        self.final_norm = nn.LayerNorm(c, eps=config.layer_norm_eps) if config.norm == "pre" else nn.Identity()
        self.post_init()

    def get_input_embeddings(self) -> nn.Embedding:
        return self.token_embeddings

    def set_input_embeddings(self, value: nn.Embedding) -> None:
        self.token_embeddings = value

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        output_attentions: bool | None = None,
        output_hidden_states: bool | None = None,
        return_dict: bool | None = None,
        **kwargs,  # token_type_ids and friends from a BERT tokenizer: not used
    ) -> BaseModelOutput | tuple:
        cfg = self.config
        output_attentions = cfg.output_attentions if output_attentions is None else output_attentions
        output_hidden_states = cfg.output_hidden_states if output_hidden_states is None else output_hidden_states
        return_dict = cfg.return_dict if return_dict is None else return_dict
        t = input_ids.size(1)
        if t > cfg.max_position_embeddings:
            raise ValueError(f"input has {t} tokens but the model has {cfg.max_position_embeddings} positions; "
                             "truncate the input (max_length)")

        positions = torch.arange(t, device=input_ids.device)  # (T,)
        x = self.token_embeddings(input_ids) * math.sqrt(cfg.hidden_size) + self.positions(positions)  # (B, T, C)
        x = self.dropout(x)
        hidden, attentions = [x], []
        for layer in self.layers:
            x, weights = layer(x, attention_mask)  # (B, T, C), (B, H, T, T)
            hidden.append(x)
            attentions.append(weights)
        x = self.final_norm(x)
        hidden[-1] = x
        out = BaseModelOutput(last_hidden_state=x,
                              hidden_states=tuple(hidden) if output_hidden_states else None,
                              attentions=tuple(attentions) if output_attentions else None)
        return out if return_dict else out.to_tuple()


class ScratchEncoderForSequenceClassification(ScratchEncoderPreTrainedModel):
    """The encoder, a pooling step and a linear classifier; cross-entropy loss when labels are given."""

    def __init__(self, config: ScratchEncoderConfig) -> None:
        super().__init__(config)
        self.num_labels = config.num_labels
        self.encoder = ScratchEncoderModel(config)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)
        self.classifier = nn.Linear(config.hidden_size, config.num_labels)
        self.post_init()

    def get_input_embeddings(self) -> nn.Embedding:
        return self.encoder.token_embeddings

    def set_input_embeddings(self, value: nn.Embedding) -> None:
        self.encoder.token_embeddings = value

    def pool(self, h: torch.Tensor, attention_mask: torch.Tensor | None) -> torch.Tensor:
        """(B, T, C) -> (B, C): the first token, or the mean over real (unpadded) tokens."""
        if self.config.pooling == "cls":
            return h[:, 0]
        if attention_mask is None:
            return h.mean(dim=1)
        m = attention_mask.to(h.dtype)[..., None]  # (B, T, 1)
        return (h * m).sum(dim=1) / m.sum(dim=1).clamp(min=1.0)  # (B, C)

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        output_attentions: bool | None = None,
        output_hidden_states: bool | None = None,
        return_dict: bool | None = None,
        **kwargs,
    ) -> SequenceClassifierOutput | tuple:
        return_dict = self.config.return_dict if return_dict is None else return_dict
        enc = self.encoder(input_ids, attention_mask, output_attentions=output_attentions,
                           output_hidden_states=output_hidden_states, return_dict=True)
        pooled = self.pool(enc.last_hidden_state, attention_mask)  # (B, C)
        logits = self.classifier(self.dropout(pooled))  # (B, num_labels)
        loss = None
        if labels is not None:
            if self.num_labels == 1:  # regression
                loss = F.mse_loss(logits.squeeze(-1), labels.to(logits.dtype))
            else:
                loss = F.cross_entropy(logits, labels.view(-1))
        out = SequenceClassifierOutput(loss=loss, logits=logits, hidden_states=enc.hidden_states,
                                       attentions=enc.attentions)
        return out if return_dict else out.to_tuple()
