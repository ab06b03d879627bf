"""The fused LoRA layer (``attnlab.training.methods.fused_lora``) against PEFT's own: the same logits,
the same gradients for every trained parameter, a standard PEFT adapter on disk, and PEFT's path
wherever fusing would change the computation (adapter dropout, a quantized-style linear subclass).
Checked on conftest's 2-layer ``tiny_bert`` with B initialised away from zero (PEFT starts B at 0,
where every adapter output is 0 and a wrong fusion would still match)."""

from __future__ import annotations

import pytest

from attnlab.training.config import TrainConfig
from attnlab.training.methods.fused_lora import FusedLoraLinear
from attnlab.training.methods.lora import prepare as lora_prepare


def _pair(tiny_bert, tmp_path, **kw):
    """(fused model, PEFT-layer model): same base, same adapter weights, B nonzero."""
    import torch
    from transformers import AutoModelForSequenceClassification

    cfg = TrainConfig.from_sources(None, method="lora", output_dir=str(tmp_path / "run"), lora_r=4, lora_alpha=8, **kw)
    models = []
    for fused in (True, False):
        base = AutoModelForSequenceClassification.from_pretrained(tiny_bert, num_labels=2)
        torch.manual_seed(0)
        model = lora_prepare(base, cfg, fused=fused)
        for name, p in model.named_parameters():
            if "lora_B" in name:
                torch.nn.init.normal_(p, std=0.5)
        models.append(model)
    models[1].load_state_dict(models[0].state_dict())
    return models


def _batch():
    import torch

    g = torch.Generator().manual_seed(1)
    ids = torch.randint(1000, 2000, (3, 7), generator=g)
    mask = torch.ones_like(ids)
    mask[0, 5:] = 0
    return {"input_ids": ids, "attention_mask": mask, "labels": torch.tensor([0, 1, 1])}


def test_fused_layer_gives_peft_layer_logits_and_gradients(tiny_bert, tmp_path):
    import torch

    fused, plain = _pair(tiny_bert, tmp_path)
    kinds = {type(m) for m in fused.modules()}
    assert FusedLoraLinear in kinds and FusedLoraLinear not in {type(m) for m in plain.modules()}
    for m in (fused, plain):
        m.eval()  # the model's own dropout off: both see the same computation (gradients still flow)
        m(**_batch()).loss.backward()
    torch.testing.assert_close(fused(**_batch()).logits, plain(**_batch()).logits, rtol=1e-5, atol=1e-6)
    plain_grads = {n: p.grad for n, p in plain.named_parameters() if p.requires_grad}
    trained = [(n, p) for n, p in fused.named_parameters() if p.requires_grad]
    assert any("lora_A" in n for n, _ in trained) and any("lora_B" in n for n, _ in trained)
    for name, p in trained:
        torch.testing.assert_close(p.grad, plain_grads[name], rtol=1e-4, atol=1e-6, msg=name)


def test_fused_adapter_saves_as_plain_peft_and_loads_into_peft_layers(tiny_bert, tmp_path):
    import torch
    from peft import PeftModel
    from transformers import AutoModelForSequenceClassification

    fused, _ = _pair(tiny_bert, tmp_path)
    fused.eval().save_pretrained(tmp_path / "adapter")
    base = AutoModelForSequenceClassification.from_pretrained(tiny_bert, num_labels=2)
    loaded = PeftModel.from_pretrained(base, tmp_path / "adapter").eval()
    assert FusedLoraLinear not in {type(m) for m in loaded.modules()}
    b = {k: v for k, v in _batch().items() if k != "labels"}
    with torch.no_grad():
        torch.testing.assert_close(loaded(**b).logits, fused(**b).logits, rtol=1e-5, atol=1e-6)
        merged = fused.merge_and_unload()  # PEFT's merge, inherited unchanged
        torch.testing.assert_close(merged(**b).logits, loaded(**b).logits, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("case", ["adapter dropout", "bias on B", "subclassed linear"])
def test_peft_path_where_fusing_would_change_the_computation(tiny_bert, tmp_path, case):
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForSequenceClassification

    if case == "bias on B":  # LoraConfig(lora_bias=True), which attnlab's flags never set: PEFT's forward adds it
        outs = []
        for fused in (True, False):
            config = LoraConfig(task_type="SEQ_CLS", r=2, target_modules=["query", "value"], lora_bias=True)
            if fused:
                from attnlab.training.methods import fused_lora

                fused_lora.register(config, AutoModelForSequenceClassification.from_pretrained(tiny_bert))
            torch.manual_seed(0)
            model = get_peft_model(AutoModelForSequenceClassification.from_pretrained(tiny_bert, num_labels=2), config)
            for name, p in model.named_parameters():
                if "lora_B" in name:
                    torch.nn.init.normal_(p, std=0.5)
            assert (FusedLoraLinear in {type(m) for m in model.modules()}) == fused
            outs.append(model)
        outs[1].load_state_dict(outs[0].state_dict())
        b = {k: v for k, v in _batch().items() if k != "labels"}
        with torch.no_grad():
            torch.testing.assert_close(outs[0].eval()(**b).logits, outs[1].eval()(**b).logits)
        return

    if case == "adapter dropout":  # the fused layer is built, but runs PEFT's forward: same values, same RNG use
        fused, plain = _pair(tiny_bert, tmp_path, lora_dropout=0.3)
        assert FusedLoraLinear in {type(m) for m in fused.modules()}
        outs = []
        for m in (fused, plain):
            m.train()
            torch.manual_seed(5)
            outs.append(m(**_batch()).logits)
        torch.testing.assert_close(outs[0], outs[1])
        return

    class OddLinear(torch.nn.Linear):  # stands in for bitsandbytes' Linear4bit, an nn.Linear subclass
        pass

    model = AutoModelForSequenceClassification.from_pretrained(tiny_bert, num_labels=2)
    layer = model.bert.encoder.layer[0].attention.self
    old = layer.query
    layer.query = OddLinear(old.in_features, old.out_features)
    cfg = TrainConfig.from_sources(None, method="lora", output_dir=str(tmp_path / "run"), lora_r=2)
    adapted = lora_prepare(model, cfg)
    assert FusedLoraLinear not in {type(m) for m in adapted.modules()}
