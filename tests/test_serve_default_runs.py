"""``attnlab serve`` without ``--run``: the runs of the last quickstart, best validation accuracy
first, named in the banner; none there: one line saying how to make some (the server still starts)."""

from __future__ import annotations

import json
import shutil

import pytest

from tests.conftest import run_cli


@pytest.fixture
def served(monkeypatch):
    calls = []
    monkeypatch.setattr("attnlab.serve.serve", lambda runs, **kw: calls.append(list(runs)))
    return calls


def test_no_runs_anywhere_says_how_to_make_some(tmp_path, monkeypatch, capsys, served):
    monkeypatch.chdir(tmp_path)
    code, out, err = run_cli(["serve", "--no-chat"], capsys)
    assert code == 0 and served == [[]], (out, err)
    assert "runs: none" in out and "attnlab quickstart" in out and "--run RUN_DIR" in out


def test_the_last_quickstarts_runs_are_served_best_first(tmp_path, monkeypatch, capsys, served, tiny_runs):
    monkeypatch.chdir(tmp_path)
    qs = tmp_path / "runs" / "quickstart"
    for name in ("full", "lora"):
        shutil.copytree(tiny_runs[name], qs / f"minilm-l6-{name}")
    rows = [{"run_dir": str(qs / "minilm-l6-full"), "validation_accuracy": 0.70},
            {"run_dir": str(qs / "minilm-l6-lora"), "validation_accuracy": 0.80},
            {"run_dir": str(qs / "missing-run"), "validation_accuracy": 0.99}]  # gone since: skipped
    (qs / "comparison.json").write_text(json.dumps({"rows": rows}), encoding="utf-8")
    code, out, err = run_cli(["serve", "--no-chat"], capsys)
    assert code == 0, err
    assert served == [[str(qs / "minilm-l6-lora"), str(qs / "minilm-l6-full")]]
    assert "minilm-l6-lora (default), minilm-l6-full" in out and "the last quickstart's" in out


def test_explicit_runs_win_over_the_quickstarts(tmp_path, monkeypatch, capsys, served, tiny_runs):
    monkeypatch.chdir(tmp_path)
    shutil.copytree(tiny_runs["lora"], tmp_path / "runs" / "quickstart" / "minilm-l6-lora")
    code, out, _ = run_cli(["serve", "--no-chat", "--run", str(tiny_runs["full"])], capsys)
    assert code == 0 and served == [[str(tiny_runs["full"])]]
    assert "the last quickstart's" not in out
