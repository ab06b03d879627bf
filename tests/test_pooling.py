"""Pooling is a property of the model source, recorded in the run and honoured wherever the run is
used; a run's logits are reproduced by the plain-transformers lines in docs/concepts/fine-tuning.md."""

from __future__ import annotations

import re

import pytest
import torch
import yaml
from conftest import REPO

from attnlab.errors import UserError
from attnlab.models import resolve_model
from attnlab.models.pooling import apply_pooling, checkpoint_pooling, pool, resolve_pooling

DOC = REPO / "docs" / "concepts" / "fine-tuning.md"


def test_the_packaged_sentence_transformer_pools_by_mean(tmp_path):
    assert checkpoint_pooling(resolve_model("minilm-l6").path) == "mean"
    assert checkpoint_pooling(tmp_path) == "pooler"  # no sentence-transformers config: the architecture's own
    assert resolve_pooling("cls", resolve_model("minilm-l6").path) == "cls"


@pytest.mark.parametrize("how", ["mean", "max", "cls"])
def test_padding_never_changes_a_pooled_vector(how):
    torch.manual_seed(0)
    hidden = torch.randn(1, 3, 4)
    padded = torch.cat([hidden, torch.full((1, 2, 4), 1e4)], 1)  # huge padding vectors would show at once
    alone = pool(hidden, torch.ones(1, 3, dtype=torch.long), how)
    with_pad = pool(padded, torch.tensor([[1, 1, 1, 0, 0]]), how)
    assert torch.allclose(alone, with_pad)
    assert not torch.allclose(alone, pool(padded, torch.ones(1, 5, dtype=torch.long), how)) or how == "cls"


def test_auto_reads_a_frozen_encoder_as_trained_and_keeps_the_head_of_a_trained_one(tiny_runs):
    recorded = {m: yaml.safe_load((run / "config.yaml").read_text())["pooling"] for m, run in tiny_runs.items()}
    assert recorded == {"head": "mean", "full": "pooler", "lora": "pooler"}


def _tiny_classifier():
    from transformers import BertConfig, BertForSequenceClassification

    torch.manual_seed(0)
    return BertForSequenceClassification(BertConfig(vocab_size=50, hidden_size=16, num_hidden_layers=1,
                                                    num_attention_heads=2, intermediate_size=32)).eval()


def test_mean_pooling_feeds_the_classifier_the_masked_mean():
    model = _tiny_classifier()
    ids, mask = torch.tensor([[2, 7, 9, 0], [2, 5, 0, 0]]), torch.tensor([[1, 1, 1, 0], [1, 1, 0, 0]])
    native = model(input_ids=ids, attention_mask=mask).logits
    apply_pooling(model, "mean")
    apply_pooling(model, "mean")  # idempotent: one hook, not two
    with torch.no_grad():
        got = model(input_ids=ids, attention_mask=mask).logits
        hidden = model.bert(input_ids=ids, attention_mask=mask).last_hidden_state
        want = model.classifier(pool(hidden, mask, "mean"))
    assert torch.allclose(got, want, atol=1e-6)
    assert not torch.allclose(got, native, atol=1e-3)  # the hook really changed the path
    with pytest.raises(ValueError):
        apply_pooling(model, "max")


def test_the_bypassed_pooler_is_one_predicate_every_method_uses():
    from attnlab.models.pooling import bypassed_prefixes, is_bypassed
    from attnlab.training.methods import get_method

    model = _tiny_classifier()
    assert bypassed_prefixes(model) == () and not is_bypassed("bert.pooler.dense.weight", ())  # pools as built
    apply_pooling(model, "mean")
    prefixes = bypassed_prefixes(model)
    assert prefixes == ("bert.pooler.",)
    assert is_bypassed("bert.pooler.dense.weight", prefixes) and is_bypassed("bert.pooler.dense", prefixes)
    assert is_bypassed("bert.pooler", prefixes)  # the module itself, as named_modules() spells it
    assert not is_bypassed("bert.encoder.layer.0.output.dense.bias", prefixes)
    assert not is_bypassed("bert.poolers.x", prefixes)  # a name that only starts alike
    get_method("bitfit").prepare(model, None)
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable and not any(is_bypassed(n, prefixes) for n in trainable)  # no gradient would come there
    assert "bert.encoder.layer.0.output.dense.bias" in trainable


def _doc_snippet() -> str:
    text = DOC.read_text(encoding="utf-8")
    return re.search(r"<!-- pooling-snippet -->\s*```python\n(.*?)```", text, re.S).group(1)


@pytest.fixture(scope="module")
def mean_runs(tmp_path_factory, tiny_bert, sst2_dir):
    from attnlab.training import TrainConfig
    from attnlab.training.train import train

    root = tmp_path_factory.mktemp("mean-runs")
    return {m: train(TrainConfig.from_sources(None, data="sst2", data_dir=str(sst2_dir), model=str(tiny_bert),
                                              method=m, pooling="mean", output_dir=str(root / m),
                                              max_train_samples=32, max_eval_samples=16, max_steps=3,
                                              batch_size=8, lora_r=2, precision="fp32"), progress=False).path
            for m in ("full", "lora")}


@pytest.mark.parametrize("method", ["full", "lora"])
def test_a_mean_pooled_run_predicts_as_the_documented_plain_transformers_lines(mean_runs, method):
    import attnlab

    run = mean_runs[method]
    assert yaml.safe_load((run / "config.yaml").read_text())["pooling"] == "mean"
    texts = ["a gorgeous, moving film", "a tedious mess", "fine"]  # rows of different lengths: padding
    snippet = _doc_snippet().replace('run = "runs/quickstart/lora"', f'run = "{run}"')
    snippet = re.sub(r"\ntexts = .*\n", f"\ntexts = {texts!r}\n", snippet)
    scope: dict = {}
    exec(compile(snippet, str(DOC), "exec"), scope)
    plain = scope["logits"].softmax(-1)
    rows = attnlab.load(run, precision="fp32").predict(texts)
    ours = torch.tensor([[r["probabilities"][label] for label in scope["labels"]] for r in rows])
    assert torch.allclose(ours, plain, atol=1e-4), (ours, plain)
    merged = attnlab.load(run, precision="fp32")
    assert [r["label"] for r in merged.predict(texts)] == [scope["labels"][i] for i in plain.argmax(-1)]


def test_a_run_whose_pooling_is_garbage_is_refused_in_one_line(mean_runs, tmp_path):
    import shutil

    from attnlab.inference import load_run_model

    copy = shutil.copytree(mean_runs["full"], tmp_path / "run")
    cfg = yaml.safe_load((copy / "config.yaml").read_text()) | {"pooling": "lots"}
    (copy / "config.yaml").write_text(yaml.safe_dump(cfg))
    with pytest.raises(UserError, match="pooling 'lots'"):
        load_run_model(copy)


def test_the_onnx_engine_exports_the_pooling_too(mean_runs):
    pytest.importorskip("onnxruntime")
    import attnlab

    texts = ["a gorgeous, moving film", "a tedious mess", "fine"]
    ours = attnlab.load(mean_runs["full"], precision="fp32").predict_proba(texts)
    onnx = attnlab.load(mean_runs["full"], precision="fp32", engine="onnxruntime").predict_proba(texts)
    assert abs(ours - onnx).max() < 1e-4
