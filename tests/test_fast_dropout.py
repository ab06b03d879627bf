"""``attnlab.training.fast_dropout``: torch's dropout computed from 16-bit random words. The mask
keeps each element with probability 1 - p (in every one of the four lanes of a 64-bit draw), the
output is the input scaled by 1 / (1 - p') or zero, gradients follow the same mask, torch's seed
makes it reproducible, and anything it does not handle is torch's own dropout."""

from __future__ import annotations

import math

import pytest
import torch

from attnlab.training.fast_dropout import FastDropout, install, keep_mask


@pytest.mark.parametrize("p", [0.1, 0.5, 0.9])
def test_mask_keeps_one_minus_p_in_every_lane(p):
    torch.manual_seed(0)
    n = 400_000
    keep, scale = keep_mask(torch.Size([n]), p)
    assert keep.dtype == torch.bool and keep.shape == (n,)
    p_used = round(p * 65536) / 65536
    assert abs(p_used - p) <= 2 ** -17 and scale == pytest.approx(1 / (1 - p_used))
    sigma = math.sqrt(p * (1 - p) / (n / 4))
    for lane in range(4):  # each 16-bit lane of the 64-bit draws, the sign-carrying top one included
        frac = keep[lane::4].float().mean().item()
        assert abs(frac - (1 - p)) < 6 * sigma, (lane, frac)


def test_output_is_scaled_input_or_zero_and_gradient_follows_the_mask():
    torch.manual_seed(1)
    x = torch.randn(64, 33, requires_grad=True)
    drop = FastDropout(0.25).train()
    out = drop(x)
    kept = out != 0
    scale = 65536 / (65536 - round(0.25 * 65536))
    torch.testing.assert_close(out[kept], x[kept] * scale)
    assert 0.6 < kept.float().mean().item() < 0.9
    g = torch.randn_like(out)
    out.backward(g)
    torch.testing.assert_close(x.grad, g * kept * scale)


def test_expectation_is_the_input():
    torch.manual_seed(2)
    x = torch.full((200_000,), 3.0)
    assert FastDropout(0.1).train()(x).mean().item() == pytest.approx(3.0, rel=3e-3)


def test_reproducible_under_torch_seed_and_fresh_each_call():
    x = torch.randn(8, 50)
    drop = FastDropout(0.5).train()
    torch.manual_seed(3)
    a, b = drop(x), drop(x)
    torch.manual_seed(3)
    assert torch.equal(drop(x), a)
    assert not torch.equal(a, b)


def test_torch_dropout_where_it_does_not_apply():
    x = torch.randn(4, 10)
    assert torch.equal(FastDropout(0.3).eval()(x), x)
    assert torch.equal(FastDropout(0.0).train()(x), x)
    assert torch.equal(FastDropout(1.0).train()(x), torch.zeros_like(x))
    y = x.clone()
    torch.manual_seed(4)
    FastDropout(0.5, inplace=True).train()(y)  # torch's in-place dropout
    z = x.clone()
    torch.manual_seed(4)
    torch.nn.functional.dropout(z, 0.5, True, inplace=True)
    assert torch.equal(y, z)


def test_install_swaps_every_dropout_and_leaves_the_model_unchanged(tiny_bert):
    from transformers import AutoModelForSequenceClassification

    model = AutoModelForSequenceClassification.from_pretrained(tiny_bert, num_labels=2).eval()
    ps = [m.p for m in model.modules() if type(m) is torch.nn.Dropout]
    ids = torch.randint(1000, 2000, (2, 6))
    before = model(input_ids=ids).logits
    keys = set(model.state_dict())
    assert install(model) == len(ps) > 0
    assert [m.p for m in model.modules() if isinstance(m, torch.nn.Dropout)] == ps
    assert not any(type(m) is torch.nn.Dropout for m in model.modules())
    assert set(model.state_dict()) == keys
    torch.testing.assert_close(model(input_ids=ids).logits, before)
    model.train()
    torch.manual_seed(5)
    a = model(input_ids=ids).logits
    torch.manual_seed(5)
    torch.testing.assert_close(model(input_ids=ids).logits, a)
    assert not torch.allclose(a, before)  # dropout is on in training


@pytest.mark.parametrize("method", ["full", "lora"])
def test_training_model_gets_it_on_cpu_unless_torch_dropout(method, tiny_bert, sst2_dir, tmp_path):
    from attnlab.training.build import build, check
    from attnlab.training.config import TrainConfig

    def kinds(**kw):
        cfg = TrainConfig.from_sources(None, data="sst2", data_dir=str(sst2_dir), model=str(tiny_bert), method=method,
                                       output_dir=str(tmp_path / "run"), max_train_samples=16, max_eval_samples=8, **kw)
        return {type(m) for m in build(cfg, *check(cfg)).load_model().modules() if isinstance(m, torch.nn.Dropout)}

    assert kinds() == {FastDropout}  # every dropout of the model (LoRA's own, at p 0, is PEFT's identity)
    assert kinds(fast_dropout=False) == {torch.nn.Dropout}
