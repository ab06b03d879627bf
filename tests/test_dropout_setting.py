"""``--dropout``: every dropout layer of the model at the given probability, eager attention on a CPU
when it is 0 (SDPA's flash kernel would be chosen there, whose backward is slower at short lengths),
and a one-line error outside [0, 1)."""

from __future__ import annotations

import pytest
import torch
from transformers import BertConfig, BertForSequenceClassification

from attnlab.errors import UserError
from attnlab.training.build import set_dropout
from attnlab.training.config import TrainConfig


def tiny_bert() -> BertForSequenceClassification:
    cfg = BertConfig(vocab_size=50, hidden_size=16, num_hidden_layers=2, num_attention_heads=2, intermediate_size=32,
                     max_position_embeddings=32, num_labels=2, attn_implementation="sdpa")
    return BertForSequenceClassification(cfg)


def dropout_ps(model: torch.nn.Module) -> set[float]:
    return {m.p for m in model.modules() if isinstance(m, torch.nn.Dropout)}


def test_every_dropout_layer_takes_the_value():
    model = tiny_bert()
    assert dropout_ps(model) == {0.1}
    set_dropout(model, 0.25, torch.device("cpu"))
    assert dropout_ps(model) == {0.25}
    assert model.config._attn_implementation == "sdpa"  # dropout on: SDPA runs its math kernel anyway


def test_no_dropout_trains_eager_on_cpu_and_changes_no_output():
    torch.manual_seed(0)
    model = tiny_bert().eval()
    ids = torch.randint(0, 50, (3, 9))
    before = model(input_ids=ids).logits
    set_dropout(model, 0.0, torch.device("cpu"))
    assert dropout_ps(model) == {0.0} and model.config._attn_implementation == "eager"
    model.train()  # without dropout, training mode computes what evaluation does
    torch.testing.assert_close(model(input_ids=ids).logits, before, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("value", [-0.1, 1.0, 3.0])
def test_out_of_range_is_one_line(value):
    with pytest.raises(UserError, match="invalid dropout"):
        TrainConfig(dropout=value).validate()
