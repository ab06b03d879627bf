"""A fine-tuning method is one registration: a toy method (the classifier head plus the last
LayerNorm) registered with one call trains, saves, loads with ``attnlab.load`` and predicts, and
the facts it carries (default learning rate, tasks) are the ones training uses."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from attnlab.errors import UserError
from attnlab.training.methods import METHODS, Method, register_method, unregister_method

NAME = "head+last-ln"


def _prepare(model: torch.nn.Module, cfg) -> torch.nn.Module:
    """Train the classifier head and the last LayerNorm; freeze everything else."""
    from attnlab.models.heads import is_head_param

    last = [n for n, m in model.named_modules() if isinstance(m, torch.nn.LayerNorm)][-1]
    for name, p in model.named_parameters():
        p.requires_grad_(is_head_param(name) or name.startswith(f"{last}."))
    return model


@pytest.fixture
def toy_method():
    method = register_method(Method(NAME, "classifier head and the last LayerNorm", 3e-3, _prepare))
    try:
        yield method
    finally:
        unregister_method(NAME)
    assert NAME not in METHODS  # the other tests see the normal registry


def test_a_registered_method_trains_saves_loads_and_predicts(toy_method, tiny_bert, sst2_dir, tmp_path):
    from safetensors.torch import load_file

    import attnlab
    from attnlab.training import TrainConfig
    from attnlab.training.train import train

    cfg = TrainConfig.from_sources(None, data="sst2", data_dir=str(sst2_dir), model=str(tiny_bert), method=NAME,
                                   output_dir=str(tmp_path / "run"), max_train_samples=16, max_eval_samples=8,
                                   max_steps=2, batch_size=8, num_threads=1)
    run = train(cfg, progress=False)
    assert run.config["method"] == run.metrics["method"] == NAME
    assert run.metrics["training"]["learning_rate"] == toy_method.learning_rate  # its default, from the registration
    assert 0 < run.metrics["params"]["trainable"] < 0.01 * run.metrics["params"]["total"]

    before = load_file(str(Path(tiny_bert) / "model.safetensors"))
    after = load_file(str(run.model_dir / "model.safetensors"))  # a whole model: is_adapter is False
    changed = {n for n, w in after.items() if n not in before or not torch.equal(before[n], w)}
    assert changed and all(n.startswith(("classifier.", "bert.encoder.layer.1.output.LayerNorm.")) for n in changed)
    assert any("LayerNorm" in n for n in changed), sorted(changed)

    rows = attnlab.load(str(run.path)).predict(["a gorgeous, moving film", "a dull and tired mess"])
    for r in rows:
        assert r["label"] in run.labels and sum(r["probabilities"].values()) == pytest.approx(1.0, abs=1e-5)


def test_registration_facts_are_checked(toy_method):
    from attnlab.training import TrainConfig
    from attnlab.training.build import check

    with pytest.raises(ValueError, match="already registered"):
        register_method(toy_method)
    # a classification-only method (the default) refuses text2text before anything loads
    with pytest.raises(UserError, match="does not apply to text2text") as exc:
        check(TrainConfig(method=NAME, task="text2text", model="t5-small"))
    assert "--method full or lora" in exc.value.fix
