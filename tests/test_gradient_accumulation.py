"""``--gradient-accumulation-steps N`` trains on the mean loss of N batches, as one batch N times as big
does: the loss logged and the gradients are not N times larger (transformers takes a model whose forward
accepts ``**kwargs`` to divide its own loss by the accumulated item count; these models do not)."""

from __future__ import annotations

import json

import pytest

from attnlab.training import TrainConfig
from attnlab.training.train import train


def first_loss(tiny_bert, sst2_dir, out, batch_size: int, accumulation: int) -> float:
    cfg = TrainConfig.from_sources(None, data="sst2", data_dir=str(sst2_dir), model=str(tiny_bert), method="full",
                                   max_train_samples=32, max_eval_samples=8, max_steps=1, logging_steps=1,
                                   batch_size=batch_size, gradient_accumulation_steps=accumulation,
                                   group_by_length=False, dropout=0.0, learning_rate=1e-9, seed=3,
                                   output_dir=str(out), early_stopping_patience=None)
    run = train(cfg, overwrite=True, progress=False)
    rows = [json.loads(line) for line in (run.path / "history.jsonl").read_text().splitlines()]
    return next(r["loss"] for r in rows if "loss" in r)


def test_accumulated_batches_log_the_loss_of_one_big_batch(tiny_bert, sst2_dir, tmp_path):
    one = first_loss(tiny_bert, sst2_dir, tmp_path / "one", 8, 1)
    two = first_loss(tiny_bert, sst2_dir, tmp_path / "two", 4, 2)
    assert one == pytest.approx(0.69, abs=0.1)  # a random 2-class model: about ln 2
    assert two == pytest.approx(one, rel=0.1)  # was 2x: the two batches' means summed
