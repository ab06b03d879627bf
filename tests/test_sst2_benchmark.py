"""``benchmarks/sst2.py`` adds one (model, method, seed) row per invocation, resumes where it stopped,
keeps the reported sets out of checkpoint selection and summarises the seeds (tiny model, tiny slice)."""

from __future__ import annotations

import json

import pytest
from scripts import REPO, load_script


@pytest.fixture(scope="module")
def bench():
    return load_script(REPO / "benchmarks" / "sst2.py", "bench_sst2")


def test_rows_land_one_per_invocation_and_resume(bench, tiny_bert, sst2_dir, tmp_path, monkeypatch, capsys):
    from attnlab import runtime

    monkeypatch.setenv("ATTNLAB_RESULTS_DIR", str(tmp_path / "results"))
    args = ["--data-dir", str(sst2_dir), "--models", str(tiny_bert), "--methods", "head,full", "--seeds", "0,1",
            "--epochs", "1", "--max-train-samples", "80", "--selection-rows", "20", "--eval-every-steps", "2",
            "--runs-dir", str(tmp_path / "runs")]
    result = tmp_path / "results" / f"sst2.{runtime.cpu_kind()}.json"
    assert bench.main(args) == 0
    rows = json.loads(result.read_text())["runs"]
    assert [(r["method"], r["seed"]) for r in rows] == [("head", 0)]
    assert bench.main([*args, "--max-runs", "2"]) == 0
    payload = json.loads(result.read_text())
    assert [(r["method"], r["seed"]) for r in payload["runs"]] == [("head", 0), ("full", 0), ("head", 1)]
    assert payload["settings"]["selection_rows"] == 20 and payload["settings"]["train_rows"] == 60
    head = next(s for s in payload["summary"] if s["method"] == "head")
    devs = [r["dev_accuracy"] for r in payload["runs"] if r["method"] == "head"]
    assert head["seeds"] == "0,1" and head["dev_accuracy_mean"] == pytest.approx(sum(devs) / 2)
    assert next(s for s in payload["summary"] if s["method"] == "full")["dev_accuracy_std"] is None
    assert bench.main([*args, "--max-runs", "0", "--epochs", "2", "--methods", "head", "--seeds", "0"]) == 0
    rows = json.loads(result.read_text())["runs"]  # another recipe is another row, never mixed in a mean
    assert len(rows) == 4 and rows[-1]["recipe"]["epochs"] == 2
    assert len(json.loads(result.read_text())["summary"]) == 3
    teacher = tmp_path / "runs" / f"{tiny_bert.name}-full-seed0"  # a distilled student is a row of its own
    assert bench.main([*args, "--methods", "head", "--seeds", "0", "--teacher", str(teacher)]) == 0
    student = json.loads(result.read_text())["runs"][-1]
    assert student["recipe"]["teacher"] == str(teacher) and student["distillation"]["alpha"] == 0.5
    assert (tmp_path / "runs" / f"{tiny_bert.name}-head-distilled-seed0").is_dir()
    for r in payload["runs"]:  # dev is the 872-row GLUE validation set, test the 1,821 labelled sentences
        assert 0 <= r["dev_accuracy"] <= 1 and 0 <= r["test_accuracy"] <= 1 and r["load_average_before"]
    assert "1 of the 4 asked-for runs still missing" in capsys.readouterr().out


def test_the_selection_split_comes_from_train_and_dev_is_reported(bench, sst2_dir):
    from attnlab.data import load_data

    data = load_data("sst2", data_dir=str(sst2_dir), seed=0, max_train_samples=200)
    carved = bench.carve_selection(data, 50)
    held = list(carved.splits["validation"]["text"])
    assert len(held) == 50 and len(carved.splits["train"]) == 150
    assert sorted(held + list(carved.splits["train"]["text"])) == sorted(data.splits["train"]["text"])
    assert list(carved.splits["test"]["text"]) == list(data.splits["validation"]["text"])  # dev is what the run reports
    assert list(bench.carve_selection(data, 50).splits["validation"]["text"]) == held
