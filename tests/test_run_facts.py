"""What a run recorded is what loads it: :class:`attnlab.rundir.Run` reads the facts inference needs
(task, adapter or whole model, base model, pooling, quantization) from config.yaml, and a run from
before a fact was recorded falls back to what its files show; the task a run recorded picks, in one
lookup (:mod:`attnlab.inference.tasks`), how it loads, predicts, merges and is served."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml
from conftest import run_cli, write

from attnlab import rundir
from attnlab.errors import UserError
from attnlab.rundir import open_run


def _run_dir(tmp_path: Path, config: dict, *, adapter_files: bool, metrics: dict | None = None) -> Path:
    """A finished run directory with no weights: enough for what :class:`Run` reads."""
    run = tmp_path / "run"
    write(run / rundir.LABELS, json.dumps({"labels": ["neg", "pos"]}))
    write(run / rundir.METRICS, json.dumps(metrics or {}))
    write(run / rundir.CONFIG, yaml.safe_dump(config))
    (run / rundir.MODEL_DIR).mkdir()
    if adapter_files:
        write(run / rundir.MODEL_DIR / rundir.ADAPTER_CONFIG, json.dumps({"base_model_name_or_path": "/peft/base"}))
    return run


def _edit_config(run: Path, **changes) -> Path:
    """Set config.yaml entries; a ``None`` removes the entry (a run from before it was recorded)."""
    cfg = yaml.safe_load((run / rundir.CONFIG).read_text())
    for key, value in changes.items():
        cfg.pop(key, None) if value is None else cfg.__setitem__(key, value)
    (run / rundir.CONFIG).write_text(yaml.safe_dump(cfg, sort_keys=False))
    return run


# -- the record, read back (no weights) ------------------------------------------------------------

def test_training_records_the_facts_a_recipe_never_re_applies():
    facts = rundir.recorded_facts(model_path="/models/minilm", adapter=True)
    assert facts == {"model_path": "/models/minilm", "adapter": True}
    assert tuple(facts) == rundir.RECORDED


@pytest.mark.parametrize("adapter_files", [True, False])
def test_a_recorded_adapter_fact_wins_over_the_files(tmp_path, adapter_files):
    for recorded in (True, False):
        shutil.rmtree(tmp_path / "run", ignore_errors=True)
        run = open_run(_run_dir(tmp_path, {"adapter": recorded}, adapter_files=adapter_files))
        assert run.is_adapter is recorded


@pytest.mark.parametrize("adapter_files", [True, False])
def test_an_old_run_without_the_fact_is_read_from_its_files(tmp_path, adapter_files):
    run = open_run(_run_dir(tmp_path, {"method": "lora", "model": "minilm-l6"}, adapter_files=adapter_files))
    assert run.is_adapter is adapter_files
    assert run.task == "classification" and run.pooling == "pooler" and run.quantization is None  # before either
    assert run.base_model == "minilm-l6"


def test_the_base_model_folder_comes_from_config_then_metrics_then_peft(tmp_path):
    run = open_run(_run_dir(tmp_path, {"model_path": "/cfg/base"}, adapter_files=True,
                            metrics={"model": "m", "model_path": "/metrics/base"}))
    assert (run.base_model, run.base_model_path) == ("m", "/cfg/base")
    shutil.rmtree(tmp_path / "run")
    assert open_run(_run_dir(tmp_path, {}, adapter_files=True, metrics={"model_path": "/metrics/base"})
                    ).base_model_path == "/metrics/base"
    shutil.rmtree(tmp_path / "run")
    assert open_run(_run_dir(tmp_path, {}, adapter_files=True)).base_model_path == "/peft/base"
    shutil.rmtree(tmp_path / "run")
    assert open_run(_run_dir(tmp_path, {}, adapter_files=False)).base_model_path is None


@pytest.mark.parametrize(("config", "message"), [({"adapter": "yes"}, "adapter is 'yes', not true or false"),
                                                 ({"task": 3}, "task is 3, not a task name")])
def test_a_malformed_fact_is_refused_in_one_line(tmp_path, config, message):
    with pytest.raises(UserError, match=message) as exc:
        open_run(_run_dir(tmp_path, config, adapter_files=False))
    assert "\n" not in exc.value.one_line()


# -- the task lookup ----------------------------------------------------------------------------------

def test_inference_knows_every_task_training_trains():
    from attnlab.inference.tasks import TASKS
    from attnlab.training.config import TASKS as TRAINED

    assert set(TASKS) == set(TRAINED)


def test_each_task_names_its_model_class_and_predictor():
    import transformers

    from attnlab.inference import Predictor
    from attnlab.inference.tasks import TASKS
    from attnlab.inference.text2text import Text2TextPredictor

    assert TASKS["classification"].model_class() is transformers.AutoModelForSequenceClassification
    assert TASKS["text2text"].model_class() is transformers.AutoModelForSeq2SeqLM
    assert TASKS["classification"].predictor() is Predictor
    assert TASKS["text2text"].predictor() is Text2TextPredictor
    assert "onnxruntime" in TASKS["classification"].engines and TASKS["text2text"].engines == ("torch",)


def test_a_run_of_a_task_this_attnlab_cannot_load_is_refused_everywhere_in_one_line(tiny_bert_runs, tmp_path,
                                                                                     capsys):
    from attnlab.inference import Predictor, load_run_model

    run = _edit_config(shutil.copytree(tiny_bert_runs["full"], tmp_path / "run"), task="summarization")
    for load in (load_run_model, Predictor.from_run):
        with pytest.raises(UserError, match="task 'summarization', which this attnlab cannot load"):
            load(run)
    code, _, err = run_cli(["merge", str(run), str(tmp_path / "merged")], capsys)
    assert code == 2 and err.count("\n") == 1 and "task 'summarization'" in err
    pytest.importorskip("fastapi")
    from attnlab.serve.state import ServeState

    with pytest.raises(UserError, match="task 'summarization'"):
        ServeState([run], chat=False, explain_models=[])


# -- loading honours the record (tiny trained runs) ---------------------------------------------------

def test_a_lora_run_without_the_fact_loads_as_before(tiny_bert_runs, tmp_path):
    from attnlab.inference import Predictor

    texts = ["a gorgeous, moving film", "a tedious mess"]
    want = Predictor.from_run(tiny_bert_runs["lora"], precision="fp32").predict_proba(texts)
    old = _edit_config(shutil.copytree(tiny_bert_runs["lora"], tmp_path / "old"), adapter=None)
    assert "adapter" not in yaml.safe_load((old / rundir.CONFIG).read_text())
    assert open_run(old).is_adapter
    got = Predictor.from_run(old, precision="fp32").predict_proba(texts)
    assert abs(got - want).max() < 1e-6


def test_the_loader_honours_the_recorded_adapter_fact_not_the_file_names(tiny_bert_runs, tmp_path):
    from attnlab.inference import load_run_model

    full = _edit_config(shutil.copytree(tiny_bert_runs["full"], tmp_path / "full"), adapter=True)
    with pytest.raises(UserError, match=r"no adapter_model\.safetensors"):  # what it recorded, not what it holds
        load_run_model(full)
    lora = _edit_config(shutil.copytree(tiny_bert_runs["lora"], tmp_path / "lora"), adapter=False)
    with pytest.raises(UserError, match=r"no model\.safetensors"):
        load_run_model(lora)


def test_an_adapter_whose_model_name_no_longer_resolves_loads_from_the_recorded_folder(tiny_bert_runs, tmp_path):
    from attnlab.inference import Predictor
    from attnlab.inference.loading import base_model_ref

    texts = ["a gorgeous, moving film", "a tedious mess"]
    want = Predictor.from_run(tiny_bert_runs["lora"], precision="fp32").predict_proba(texts)
    moved = shutil.copytree(tiny_bert_runs["lora"], tmp_path / "moved")
    recorded = open_run(moved).base_model_path
    _edit_config(moved, model=str(tmp_path / "gone"))  # a folder that is no longer there
    assert base_model_ref(open_run(moved)) == recorded
    got = Predictor.from_run(moved, precision="fp32").predict_proba(texts)
    assert abs(got - want).max() < 1e-6


def test_merge_names_the_class_the_task_loads_with(tiny_bert_runs, tmp_path, capsys):
    code, out, _ = run_cli(["merge", str(tiny_bert_runs["lora"]), str(tmp_path / "merged")], capsys)
    assert code == 0
    assert f"AutoModelForSequenceClassification.from_pretrained('{tmp_path / 'merged'}')" in out
    assert "note:" not in out  # the architecture's own pooler: the plain class reproduces the logits
