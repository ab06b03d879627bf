"""benchmarks/lora_layers.py on a smoke budget: every variant trains with its own layers and rate, the
speed ratios are against the full row of the same invocation, and the pick is by validation accuracy."""

from __future__ import annotations

import json

import pytest
from scripts import REPO, load_script


@pytest.fixture(scope="module")
def bench():
    return load_script(REPO / "benchmarks" / "lora_layers.py", "bench_lora_layers")


def test_variants_parse_and_bad_ones_are_refused(bench):
    assert bench.parse_variant("all@2e-3") == (None, 2e-3)
    assert bench.parse_variant("top3@1e-3") == (3, 1e-3)
    for bad in ("top@1e-3", "all", "some@1e-3"):
        with pytest.raises(SystemExit):
            bench.parse_variant(bad)


def test_smoke_run_writes_rows_ratios_and_the_pick(bench, tiny_bert, tmp_path, monkeypatch):
    monkeypatch.setenv("ATTNLAB_RESULTS_DIR", str(tmp_path))
    assert bench.main(["--smoke", "--model", str(tiny_bert), "--variants", "all@2e-3,top1@2e-3",
                       "--runs-dir", str(tmp_path / "runs")]) == 0
    (path,) = tmp_path.glob("lora_layers.*.smoke.json")
    res = json.loads(path.read_text())
    rows = {r["variant"]: r for r in res["rows"]}
    assert list(rows) == ["full", "lora all@2e-3", "lora top1@2e-3"]
    assert rows["full"]["speedup_vs_full"] == pytest.approx(1.0)
    assert rows["lora top1@2e-3"]["trainable_params"] < rows["lora all@2e-3"]["trainable_params"]
    assert rows["lora top1@2e-3"]["lora_top_layers"] == 1 and rows["lora all@2e-3"]["learning_rate"] == 2e-3
    assert res["chosen"] == max((r for r in res["rows"] if r["method"] == "lora"),
                                key=lambda r: r["validation_accuracy"])["variant"]
