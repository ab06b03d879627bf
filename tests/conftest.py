"""Shared fixtures: the SST-2 folder beside the repo and tiny trained runs (one per method)."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SST2 = Path(os.environ.get("ATTNLAB_SST2_DIR") or REPO.parent / "shared" / "datasets" / "sst2")
TINY = dict(max_train_samples=48, max_eval_samples=24, epochs=1.0, batch_size=16, logging_steps=1)


@pytest.fixture(scope="session")
def sst2_dir() -> Path:
    if not (SST2 / "train.tsv").is_file():
        pytest.skip(f"SST-2 not found at {SST2} (set ATTNLAB_SST2_DIR)")
    return SST2


@pytest.fixture(scope="session")
def tiny_runs(tmp_path_factory, sst2_dir) -> dict[str, Path]:
    """One finished run per method, trained on 48 SST-2 rows for one epoch."""
    from attnlab.training import TrainConfig
    from attnlab.training.train import train

    root = tmp_path_factory.mktemp("runs")
    runs = {}
    for method in ("full", "lora", "head"):
        cfg = TrainConfig.from_sources(data="sst2", data_dir=str(sst2_dir), method=method,
                                       output_dir=str(root / method), **TINY)
        runs[method] = train(cfg, progress=False).path
    return runs


def run_cli(argv: list[str], capsys) -> tuple[int, str, str]:
    """``attnlab ARGV`` in this process: (exit code, stdout, stderr), argparse's exits included."""
    from attnlab.cli import main

    try:
        code = main(argv)
    except SystemExit as exc:  # argparse
        code = exc.code
    out, err = capsys.readouterr()
    return code, out, err


def free_port() -> int:
    """A TCP port nothing listens on now (the OS picks it), for a server or torchrun's rendezvous."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def serve_process(args: list[str], folder: Path, timeout: float = 120):
    """``attnlab serve ARGS --port <free>`` in a subprocess (log in ``folder/server.log``): yields its
    URL once /healthz answers ok; stopped with SIGINT (then killed) afterwards."""
    port = free_port()
    env = {**os.environ, "GRADIO_ANALYTICS_ENABLED": "False", "PYTHONUNBUFFERED": "1"}
    log_path = folder / "server.log"
    with open(log_path, "w") as log:
        proc = subprocess.Popen([sys.executable, "-m", "attnlab.cli", "serve", *args, "--port", str(port)],
                                stdout=log, stderr=subprocess.STDOUT, env=env, cwd=folder)
        url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + timeout
            while True:
                if proc.poll() is not None:
                    pytest.fail(f"server exited with {proc.returncode}: {log_path.read_text()[-2000:]}")
                try:
                    with urllib.request.urlopen(f"{url}/healthz", timeout=2) as r:
                        if json.load(r)["status"] == "ok":
                            break
                except OSError:
                    pass
                if time.monotonic() > deadline:
                    pytest.fail(f"server did not answer /healthz within {timeout:.0f} s")
                time.sleep(0.3)
            yield url
        finally:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)


def write(path: Path, text: str, encoding: str = "utf-8") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding=encoding)
    return path


@pytest.fixture
def tiny_csv(tmp_path) -> Path:
    rows = ["review,sentiment"]
    for i in range(30):
        rows.append(f"\"a lovely, warm film number {i}\",pos")
        rows.append(f"\"a dull and tired film number {i}\",neg")
    return write(tmp_path / "reviews.csv", "\n".join(rows) + "\n")


@pytest.fixture(scope="session")
def tiny_bert(tmp_path_factory) -> Path:
    """A random 2-layer BERT (hidden 32) with the minilm-l6 tokenizer: trains in seconds, for tests of
    the machinery (resume, bad input, safety) rather than of accuracy."""
    from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification

    from attnlab.models import resolve_model

    folder = tmp_path_factory.mktemp("tiny-bert")
    cfg = BertConfig(vocab_size=30522, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                     intermediate_size=64)
    BertForSequenceClassification(cfg).save_pretrained(folder)
    AutoTokenizer.from_pretrained(resolve_model("minilm-l6").path).save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def tiny_bert_runs(tmp_path_factory, tiny_bert, sst2_dir) -> dict[str, Path]:
    """Finished full and LoRA runs of ``tiny_bert`` (2 steps on 16 SST-2 rows): to copy and break."""
    import torch

    from attnlab.training import TrainConfig
    from attnlab.training.train import train

    root = tmp_path_factory.mktemp("tiny-bert-runs")
    runs, threads = {}, torch.get_num_threads()
    for method in ("full", "lora"):
        cfg = TrainConfig.from_sources(None, data="sst2", data_dir=str(sst2_dir), model=str(tiny_bert),
                                       method=method, output_dir=str(root / method), max_train_samples=16,
                                       max_eval_samples=8, max_steps=2, batch_size=8, lora_r=2, num_threads=1)
        runs[method] = train(cfg, progress=False).path
    torch.set_num_threads(threads)  # one thread is faster for a model this small; leave others as they were
    return runs


# -- test tiers ------------------------------------------------------------------------------------
# `pytest -m "not train and not browser"` is the fast unit tier; the plain `pytest` runs everything.
# Markers are registered in pyproject.toml; these are set here, so a test file needs no decorator.

TRAINING_FIXTURES = {"tiny_runs", "tiny_bert_runs"}  # conftest's: visible to every test file
TRAINS = {  # per test file: its fixtures that train, and its tests whose own body trains (by function name)
    "test_compare_baselines.py": {"test_compare_models_and_baselines_in_one_table"},
    "test_long_text.py": {"long_run"},
    "test_lora_layers_benchmark.py": {"test_smoke_run_writes_rows_ratios_and_the_pick"},
    "test_method_registry.py": {"test_a_registered_method_trains_saves_loads_and_predicts"},
    "test_ddp.py": {"test_torchrun_two_cpu_processes"},
    "test_overwrite_safety.py": {"test_a_second_writer_fails_at_once"},
    "test_prediction_agreement.py": {"mean_run"},
    "test_pipeline_e2e.py": {"test_compare_cli", "test_train_cli_and_refuses_to_clobber",
                             "test_resume_continues_from_checkpoint", "test_tiny_random_bert_from_local_folder"},
    "test_qlora.py": {"compared", "qlora_run", "test_bitfit_trains_only_biases_and_head"},
    "test_reliability_resume.py": {"train_args", "reference",
                                   "test_failed_final_save_leaves_no_model_dir_and_no_metrics"},
    "test_scratch.py": {"scratch_run"},
    "test_speed_paths.py": {"test_speed_settings_reach_the_trainer"},
    "test_serve_tasks_browser.py": {"task_runs"},
    "test_sweep.py": {"test_tiny_sweep_writes_its_outputs"},
    "test_tasks_regression_multilabel.py": {"runs", "test_bad_inputs_and_unsupported_uses_are_one_line_errors",
                                            "test_train_cli_prints_the_tasks_numbers"},
    "test_text2text.py": {"runs"},
    "test_tune.py": {"test_tune_writes_a_recipe_that_train_accepts"},
}


def pytest_collection_modifyitems(config, items) -> None:
    """Mark ``browser`` every test in ``test_*_browser.py`` and ``train`` every test that trains a
    model itself or through a fixture (``fixturenames`` holds the fixtures' fixtures too)."""
    for item in items:
        file = item.path.name
        if file.startswith("test_") and file.endswith("_browser.py"):
            item.add_marker(pytest.mark.browser)
        names = {*getattr(item, "fixturenames", ()), getattr(item, "originalname", item.name)}
        if names & (TRAINING_FIXTURES | TRAINS.get(file, set())):
            item.add_marker(pytest.mark.train)
