"""The parameter-efficiency sweep: target sets resolve to the right layers, and a 2-run sweep on a
tiny SST-2 slice writes its table, JSON, CSV and plots (and reuses finished runs)."""

from __future__ import annotations

import csv
import json

import pytest

from attnlab.errors import UserError
from attnlab.experiments.sweep import adapted_count, linear_layer_names, parse_list, target_modules


@pytest.fixture(scope="module")
def minilm_linears():
    return linear_layer_names("minilm-l6")


def test_bert_target_sets(minilm_linears):
    att = target_modules(minilm_linears, "attention")
    mlp = target_modules(minilm_linears, "attention+mlp")
    assert att == ["query", "key", "value", "attention.output.dense"]
    # 6 layers: 4 attention projections each, + 2 feed-forward layers each, + the pooler for all-linear
    assert adapted_count(minilm_linears, att) == 24
    assert adapted_count(minilm_linears, mlp) == 36
    assert adapted_count(minilm_linears, target_modules(minilm_linears, "all-linear")) == 37
    ffn_out = [n for n in minilm_linears if n.endswith(".output.dense") and ".attention." not in n]
    assert ffn_out and not any(n.endswith(f".{t}") for n in ffn_out for t in att)  # FFN output not in "attention"


def test_scratch_encoder_target_sets():
    names = ["encoder.layers.0.attention.q_proj", "encoder.layers.0.attention.k_proj",
             "encoder.layers.0.attention.v_proj", "encoder.layers.0.attention.o_proj",
             "encoder.layers.0.ffn.fc1", "encoder.layers.0.ffn.fc2", "classifier"]
    assert adapted_count(names, target_modules(names, "attention+mlp")) == 6
    assert adapted_count(names, "all-linear") == 6


def test_bad_sweep_settings():
    with pytest.raises(UserError, match="target set"):
        target_modules(["a.b"], "everything")
    with pytest.raises(UserError, match="not known"):
        target_modules(["model.some_linear"], "attention")
    with pytest.raises(UserError, match="rank"):
        parse_list("1,x", "ranks", int)
    assert parse_list("4, 1,4", "ranks", int) == [4, 1]
    assert parse_list("none", "baselines") == []


def test_tiny_sweep_writes_its_outputs(tmp_path, sst2_dir, tiny_bert, capsys):
    from attnlab.cli import main

    out = tmp_path / "sweep"
    args = ["sweep", "--data", "sst2", "--data-dir", str(sst2_dir), "--model", str(tiny_bert), "--ranks", "2",
            "--targets", "attention", "--baselines", "head", "-o", str(out), "--max-train-samples", "16",
            "--max-eval-samples", "8", "--max-steps", "2", "--batch-size", "8", "--no-progress"]
    assert main(args) == 0
    assert "lora-attention-r2" in capsys.readouterr().out
    for name in ("sweep.json", "sweep.csv", "sweep.md", "accuracy_vs_params.png", "epoch_time_vs_params.png"):
        assert (out / name).is_file() and (out / name).stat().st_size > 0, name
    result = json.loads((out / "sweep.json").read_text())
    rows = {r["name"]: r for r in result["rows"]}
    assert set(rows) == {"lora-attention-r2", "head"}
    lora, head = rows["lora-attention-r2"], rows["head"]
    # tiny_bert: 2 layers of 4 attention projections, 32x32 each; at r=2 each gets 2 * (32 + 32) weights
    assert (lora["rank"], lora["targets"], lora["adapted_modules"]) == (2, "attention", 8)
    assert lora["trainable_params"] - head["trainable_params"] == 8 * 2 * 64
    assert head["method"] == "head" and head["rank"] is None
    assert result["budget"]["train_rows"] == 16
    assert len(list(csv.DictReader((out / "sweep.csv").open()))) == 2
    # a second sweep with the same settings reuses the finished runs
    mtime = (out / "head" / "metrics.json").stat().st_mtime
    assert main(args) == 0
    assert (out / "head" / "metrics.json").stat().st_mtime == mtime
