"""The quickstart's recipe reaches the rows it trains: its per-method learning rates (others keep
their method's default), its dropout and its pooling."""

from __future__ import annotations

from attnlab import cli
from attnlab.experiments.compare import _plan
from attnlab.training.config import TrainConfig


def test_each_method_gets_its_quickstart_rate_and_the_shared_recipe(tmp_path):
    base = TrainConfig.from_sources(None, **cli.QUICKSTART, output_dir=str(tmp_path))
    plan = _plan(base, [cli.QUICKSTART["model"]], ["full", "lora", "head"], tmp_path, cli.QUICKSTART_LEARNING_RATES)
    rates = {cfg.method: cfg.learning_rate for cfg in plan}
    assert rates == {"full": cli.QUICKSTART_LEARNING_RATES["full"], "lora": cli.QUICKSTART_LEARNING_RATES["lora"],
                     "head": None}  # None: the method's (or model's) default rate
    assert {(cfg.dropout, cfg.pooling, cfg.batch_size, cfg.epochs) for cfg in plan} == {
        (cli.QUICKSTART["dropout"], cli.QUICKSTART["pooling"], cli.QUICKSTART["batch_size"], cli.QUICKSTART["epochs"])}


def test_without_rates_several_methods_keep_their_defaults(tmp_path):
    base = TrainConfig.from_sources(None, **cli.QUICKSTART, learning_rate=3e-5, output_dir=str(tmp_path))
    assert [c.learning_rate for c in _plan(base, ["minilm-l6"], ["full", "lora"], tmp_path)] == [None, None]
    assert [c.learning_rate for c in _plan(base, ["minilm-l6"], ["full"], tmp_path)] == [3e-5]
