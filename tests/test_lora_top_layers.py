"""``--lora-top-layers N``: adapters only in the top N encoder layers, so the backward pass stops at the
lowest adapted layer (issue #15's leaner LoRA). Checked on conftest's 2-layer ``tiny_bert``: which
modules get adapters, that no gradient is computed below them, and the one-line errors."""

from __future__ import annotations

import pytest

from attnlab.errors import UserError
from attnlab.training.config import TrainConfig
from attnlab.training.methods.lora import adapted_modules, in_top_layers
from attnlab.training.methods.lora import prepare as lora_prepare


def _model(tiny_bert):
    from transformers import AutoModelForSequenceClassification

    return AutoModelForSequenceClassification.from_pretrained(tiny_bert, num_labels=2)


def _cfg(tmp_path, **kw) -> TrainConfig:
    return TrainConfig.from_sources(None, method="lora", output_dir=str(tmp_path / "run"), lora_r=2, **kw)


def test_only_the_top_layers_get_adapters_and_nothing_below_them_computes_a_gradient(tiny_bert, tmp_path):
    import torch

    model = lora_prepare(_model(tiny_bert), _cfg(tmp_path, lora_top_layers=1))
    adapted = {n.split(".lora_")[0] for n, p in model.named_parameters() if p.requires_grad and ".lora_" in n}
    assert adapted and all(".layer.1." in n for n in adapted), adapted
    # every linear of layer 1 (attention q/k/v/output and the MLP): the same set as without the cut, less layer 0
    every = set(adapted_modules(_model(tiny_bert), _cfg(tmp_path)))
    assert {n.removeprefix("base_model.model.") for n in adapted} == {n for n in every if ".layer.1." in n}

    needs_grad: dict[int, bool] = {}

    def record(i: int):
        def hook(_module, _inputs, out) -> None:  # a forward hook that returns nothing leaves the output alone
            needs_grad[i] = (out[0] if isinstance(out, tuple) else out).requires_grad
        return hook

    for i, layer in enumerate(model.base_model.model.bert.encoder.layer):
        layer.register_forward_hook(record(i))
    model(input_ids=torch.randint(5, 1000, (2, 7)), labels=torch.tensor([0, 1])).loss.backward()
    assert needs_grad == {0: False, 1: True}  # layer 0 is outside the graph: backward stops at layer 1


def test_top_layers_cut_named_targets_too_and_every_layer_is_the_default(tiny_bert, tmp_path):
    names = adapted_modules(_model(tiny_bert), _cfg(tmp_path, lora_targets="query,value", lora_top_layers=1))
    assert sorted(names) == ["bert.encoder.layer.1.attention.self.query", "bert.encoder.layer.1.attention.self.value"]
    # all the layers: every adapter of the default but those outside the numbered layers (BERT's pooler)
    every = adapted_modules(_model(tiny_bert), _cfg(tmp_path))
    assert adapted_modules(_model(tiny_bert), _cfg(tmp_path, lora_top_layers=2)) == [
        n for n in every if ".layer." in n] and "bert.pooler.dense" in every
    assert in_top_layers(["model.layers.0.q", "model.layers.1.q", "model.layers.2.q", "lm_head"], 2) == [
        "model.layers.1.q", "model.layers.2.q"]


def test_more_layers_than_the_model_has_is_a_one_line_error(tiny_bert, tmp_path):
    with pytest.raises(UserError, match=r"--lora-top-layers 3 is more than the model's 2 layers"):
        lora_prepare(_model(tiny_bert), _cfg(tmp_path, lora_top_layers=3))
    with pytest.raises(UserError, match="numbered layers"):
        in_top_layers(["encoder.dense", "classifier"], 1)
    with pytest.raises(UserError):
        _cfg(tmp_path, lora_top_layers=0)
