"""QLoRA on CPU (4-bit NF4 base through bitsandbytes) and the BitFit baseline, on tiny SST-2 slices.

The QLoRA run is trained through ``compare``, so the same fixture also checks that a qlora row
reaches the comparison table."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from agreement import assert_same_accuracy, assert_same_predictions
from conftest import TINY

pytest.importorskip("bitsandbytes")


@pytest.fixture(scope="module")
def compared(tmp_path_factory, sst2_dir, tiny_runs):
    # tiny_runs first: importing attnlab.training.train (compare does) shadows the lazy
    # attnlab.training.train() function that conftest's fixture imports
    from attnlab.experiments import compare
    from attnlab.training import TrainConfig

    out = tmp_path_factory.mktemp("compare")
    cfg = TrainConfig.from_sources(data="sst2", data_dir=str(sst2_dir), output_dir=str(out), **TINY)
    return out, compare(cfg, "qlora", "minilm-l6", out, progress=False)


@pytest.fixture(scope="module")
def qlora_run(compared):
    return compared[0] / "minilm-l6-qlora"


def _test_split(sst2_dir):
    from attnlab.data import load_data

    ds = load_data("sst2", data_dir=str(sst2_dir), seed=42, max_train_samples=TINY["max_train_samples"],
                   max_eval_samples=TINY["max_eval_samples"])
    return ds.splits["test"]["text"], np.asarray(ds.splits["test"]["label"])


def run_precision(run: Path) -> str:
    """The precision the run evaluated in: bf16 autocast on AMX CPUs, else fp32."""
    return yaml.safe_load((run / "config.yaml").read_text())["precision"]


def test_qlora_run_records_a_4bit_base(qlora_run):
    m = json.loads((qlora_run / "metrics.json").read_text())
    assert m["method"] == "qlora"
    mem = m["memory"]
    assert mem["quantized_params"] > 0.95 * m["params"]["total"] - 1_000_000  # all but LayerNorms, biases, positions
    assert mem["base_weight_bytes"] < 0.35 * mem["base_weight_fp32_bytes"]
    assert mem["base_weight_fp32_bytes"] == pytest.approx(4 * 22.7e6, rel=0.02)  # minilm-l6, counted unpacked
    assert m["peak_rss_bytes"] > 0
    cfg = yaml.safe_load((qlora_run / "config.yaml").read_text())
    q = cfg["quantization"]
    assert (q["quant_type"], q["double_quant"], q["embeddings"]) == ("nf4", True, "nf4")
    model_dir = qlora_run / "model"
    assert (model_dir / "adapter_config.json").is_file()
    assert (model_dir / "adapter_model.safetensors").stat().st_size < 5 * 2**20  # adapters + head, no base


def test_qlora_trains_the_same_adapters_as_lora(qlora_run, tiny_runs):
    ql = json.loads((qlora_run / "metrics.json").read_text())["params"]
    lo = json.loads((tiny_runs["lora"] / "metrics.json").read_text())["params"]
    assert ql["trainable"] == lo["trainable"] and ql["total"] == lo["total"]
    lora_mem = json.loads((tiny_runs["lora"] / "metrics.json").read_text())["memory"]
    assert lora_mem["quantized_params"] == 0 and lora_mem["base_weight_bytes"] == lora_mem["base_weight_fp32_bytes"]


def test_qlora_predictions_match_its_evaluation(qlora_run, sst2_dir):
    import bitsandbytes as bnb

    from attnlab.inference import Predictor

    texts, labels = _test_split(sst2_dir)
    metrics = json.loads((qlora_run / "metrics.json").read_text())
    precision = run_precision(qlora_run)
    tolerance = "nf4" if precision == "fp32" else precision  # the 4-bit base's kernels (tests/agreement.py)
    quantized = Predictor.from_run(qlora_run, merge=False, precision=precision)
    assert any(isinstance(mod, bnb.nn.Linear4bit) for mod in quantized.model.modules())
    p4 = quantized.predict_proba(texts)
    assert_same_accuracy(p4, labels, metrics["test"]["accuracy"], tolerance)
    merged = Predictor.from_run(qlora_run, precision=precision)  # default: dequantized to fp32, adapters merged
    assert not any("bitsandbytes" in type(mod).__module__ for mod in merged.model.modules())
    assert all(p.dtype == torch.float32 for p in merged.model.parameters())
    assert_same_predictions(merged.predict_proba(texts), p4, tolerance)


def test_qlora_merge_writes_a_plain_fp32_model(qlora_run, tmp_path):
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from attnlab.inference import Predictor, merge_run

    out = merge_run(qlora_run, tmp_path / "merged")
    model = AutoModelForSequenceClassification.from_pretrained(out).eval()
    tok = AutoTokenizer.from_pretrained(out)
    texts = ["a moving and funny film", "a dull, lifeless mess"]
    with torch.no_grad():
        probs = torch.softmax(model(**tok(texts, padding=True, return_tensors="pt")).logits, -1).numpy()
    quantized = Predictor.from_run(qlora_run, merge=False, precision="fp32")
    assert_same_predictions(probs, quantized.predict_proba(texts), "nf4")  # the 4-bit base's kernels


def test_compare_has_a_qlora_row(compared):
    out, result = compared
    (row,) = result["rows"]
    assert row["method"] == "qlora" and row["inference_sentences_per_second"] > 0
    assert "qlora" in (out / "comparison.md").read_text()


def test_bitfit_trains_only_biases_and_head(tmp_path, sst2_dir, tiny_bert):
    from safetensors.torch import load_file

    from attnlab.training import TrainConfig
    from attnlab.training.train import train

    cfg = TrainConfig.from_sources(data="sst2", data_dir=str(sst2_dir), model=str(tiny_bert), method="bitfit",
                                   output_dir=str(tmp_path / "b"), max_train_samples=16, max_eval_samples=8,
                                   max_steps=2, batch_size=8)
    run = train(cfg, progress=False)
    m = run.metrics
    assert m["method"] == "bitfit" and m["training"]["learning_rate"] == 1e-3
    assert 0 < m["params"]["trainable"] < 0.05 * m["params"]["total"]
    before = load_file(str(Path(tiny_bert) / "model.safetensors"))
    after = load_file(str(run.model_dir / "model.safetensors"))
    changed = {n for n, w in after.items() if n not in before or not torch.equal(before[n], w)}
    assert changed, "nothing trained"
    assert all(n.endswith(".bias") or n.startswith("classifier.") for n in changed), sorted(changed)[:5]
    assert any(n.startswith("bert.encoder.") for n in changed)  # encoder biases moved, not only the head


def test_qlora_without_quantized_load_is_a_user_error():
    from torch import nn

    from attnlab.errors import UserError
    from attnlab.training import TrainConfig
    from attnlab.training.methods import get_method

    with pytest.raises(UserError, match="4 bits"):
        get_method("qlora").prepare(nn.Linear(2, 2), TrainConfig())
