"""``--task regression`` and ``--task multi-label`` end to end, on tiny files written here: a CSV
with a float column, a JSONL with list labels and a CSV with "a|b" strings. The runs are a random
2-layer BERT trained 2 steps (conftest's ``tiny_bert``): these tests check the machinery (data
formats, run directory, metrics against scikit-learn/SciPy on the same predictions, predict,
evaluate, serve, one-line errors), not accuracy."""

from __future__ import annotations

import importlib.util
import json
import random

import numpy as np
import pandas as pd
import pytest
import torch
from conftest import run_cli, write
from scipy.stats import pearsonr, spearmanr
from sklearn.metrics import accuracy_score, f1_score, hamming_loss, mean_absolute_error, mean_squared_error

from attnlab.errors import UserError

TINY = dict(max_steps=2, batch_size=8, eval_batch_size=16, lora_r=2, num_threads=1, precision="fp32",
            logging_steps=1)
GENRES = ["action", "comedy", "drama"]
METHODS = ("full", "lora", "head", "bitfit", *(("qlora",) if importlib.util.find_spec("bitsandbytes") else ()))


def _reg_rows(n: int = 40, seed: int = 0) -> list[tuple[str, float]]:
    rng = random.Random(seed)
    good, bad = ["lovely", "warm", "superb", "moving"], ["dull", "tired", "awful", "flat"]
    rows = []
    for i in range(n):
        stars = round(rng.uniform(0, 5), 2)
        w = good if stars > 2.5 else bad
        rows.append((f"a {rng.choice(w)} and {rng.choice(w)} film number {i}", stars))
    return rows


def _ml_rows(n: int = 40, seed: int = 1) -> list[tuple[str, list[str]]]:
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        labels = sorted(rng.sample(GENRES, rng.randint(0, 2)))
        rows.append((f"film {i} with {' and '.join(labels) or 'nothing'} scenes", labels))
    return rows


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("task-data")
    reg = pd.DataFrame(_reg_rows(), columns=["review", "stars"])  # stars: found as the one numeric column
    reg.to_csv(d / "reviews.csv", index=False)
    ml = _ml_rows()
    write(d / "films.jsonl", "".join(json.dumps({"body": t, "genres": g}) + "\n" for t, g in ml))  # lists
    pd.DataFrame({"text": [t for t, _ in ml], "label": ["|".join(g) if g else "[]" for _, g in ml]}).to_csv(
        d / "films.csv", index=False)  # "a|b" strings; "[]": none of the labels
    return {"regression": d / "reviews.csv", "multi-label": d / "films.jsonl", "multi-label-csv": d / "films.csv"}


@pytest.fixture(scope="module")
def runs(tmp_path_factory, tiny_bert, files):
    """A finished run per (task, method): regression on the CSV, multi-label on the JSONL."""
    from attnlab.training import TrainConfig
    from attnlab.training.train import train

    root, threads, out = tmp_path_factory.mktemp("task-runs"), torch.get_num_threads(), {}
    for task in ("regression", "multi-label"):
        for method in METHODS:
            cfg = TrainConfig.from_sources(None, data=str(files[task]), model=str(tiny_bert), task=task,
                                           method=method, output_dir=str(root / f"{task}-{method}"), **TINY)
            out[task, method] = train(cfg, progress=False).path
    torch.set_num_threads(threads)
    return out


# -- data ---------------------------------------------------------------------------------------------

def test_data_formats_become_targets(files):
    from attnlab.data import load_data

    reg = load_data(str(files["regression"]), label_kind="score")
    assert reg.labels == ["stars"] and reg.splits["train"].features["label"].dtype == "float32"
    assert reg.columns["label"]["column"] == "stars" and "numbers" in reg.columns["label"]["why"]
    assert sum(len(s) for s in reg.splits.values()) == 40
    summary = reg.summary(log_warnings=False)
    assert set(summary["splits"]["train"]["target"]) == {"mean", "std", "min", "max"}

    lists = load_data(str(files["multi-label"]), label_kind="multi")
    strings = load_data(str(files["multi-label-csv"]), label_kind="multi")
    assert lists.labels == strings.labels == GENRES and lists.columns["label"]["column"] == "genres"
    want = {t: [float(g in labels) for g in GENRES] for t, labels in _ml_rows()}
    for ds in (lists, strings):
        for split in ds.splits.values():
            for row in split:
                assert row["label"] == want[row["text"]]
    per = lists.summary(log_warnings=False)["splits"]
    assert sum(per[s]["per_label"]["drama"] for s in per) == sum("drama" in g for _, g in _ml_rows())


@pytest.mark.parametrize("values, needle", [
    (["a|b", "a,b", "b"], "both '|' and ','"),
    (["a||b", "a", "b"], "empty label name"),
    (["a", "", "b"], "have no labels"),
    (["a", "7", "[1, {}]"], "is not a list of labels"),
])
def test_bad_label_sets_are_one_line_errors(tmp_path, values, needle):
    from attnlab.data import load_data

    rows = [f"film number {i} is here,\"{v}\"" for i, v in enumerate(values * 4)]
    path = write(tmp_path / "bad.csv", "text,label\n" + "\n".join(rows) + "\n")
    with pytest.raises(UserError, match=needle) as exc:
        load_data(str(path), label_kind="multi")
    assert "\n" not in str(exc.value)


def test_label_set_separators_and_json_lists():
    from attnlab.data.labels import parse_label_sets

    got = parse_label_sets({"train": pd.Series(["a, b", "c", "[]", '["d", "a"]'])}, "x")["train"]
    assert got == [["a", "b"], ["c"], [], ["d", "a"]]
    assert parse_label_sets({"train": pd.Series(["a;b", "b"])}, "x")["train"] == [["a", "b"], ["b"]]


def test_data_command_summarises_the_file_as_each_task(files, capsys):
    """``attnlab data --task``: the label column read as train reads it for that task: the target's
    spread (regression), rows per label of the label sets (multi-label); the file's own numbers."""
    reg = pd.read_csv(files["regression"])["stars"]
    code, out, err = run_cli(["data", "--data", str(files["regression"]), "--task", "regression", "--json"], capsys)
    assert code == 0, err
    s = json.loads(out)
    assert s["labels"] == ["stars"] and s["columns"]["label"]["column"] == "stars"
    spread = [v["target"] for v in s["splits"].values()]
    assert sum(v["rows"] for v in s["splits"].values()) == len(reg)
    assert min(t["min"] for t in spread) == pytest.approx(reg.min()) and max(t["max"] for t in spread) == pytest.approx(
        reg.max())
    code, out, _ = run_cli(["data", "--data", str(files["regression"]), "--task", "regression"], capsys)
    assert code == 0 and "target mean" in out and "stars=" not in out  # not 40 one-row "classes"

    for key in ("multi-label", "multi-label-csv"):
        code, out, err = run_cli(["data", "--data", str(files[key]), "--task", "multi-label", "--json"], capsys)
        assert code == 0, err
        s = json.loads(out)
        assert s["labels"] == GENRES
        for g in GENRES:  # every row that carries a label counts once for it, whatever split it went to
            assert sum(v["per_label"][g] for v in s["splits"].values()) == sum(g in labels for _, labels in _ml_rows())
    code, out, _ = run_cli(["data", "--data", str(files["multi-label"]), "--task", "multi-label"], capsys)
    assert code == 0 and "action=" in out and "labels: action, comedy, drama" in out
    code, _, err = run_cli(["data", "--data", str(files["multi-label"]), "--task", "sorting"], capsys)
    assert code == 2 and "invalid choice" in err


# -- metrics ------------------------------------------------------------------------------------------

def test_metric_functions_match_sklearn_and_scipy():
    from attnlab.evaluation.metrics import multilabel_metrics, regression_metrics, tune_thresholds

    rng = np.random.default_rng(0)
    y, p = rng.normal(size=50), rng.normal(size=50)
    m = regression_metrics(y, p)
    assert m["mse"] == pytest.approx(mean_squared_error(y, p)) and m["mae"] == pytest.approx(mean_absolute_error(y, p))
    assert m["pearson"] == pytest.approx(pearsonr(y, p)[0]) and m["spearman"] == pytest.approx(spearmanr(y, p)[0])
    assert regression_metrics(y, np.ones(50))["pearson"] is None  # undefined, not NaN

    truth = rng.random((60, 3)) < 0.4
    probs = np.clip(truth * 0.3 + rng.random((60, 3)) * 0.7, 0, 1)
    cuts = tune_thresholds(truth, probs)
    for k in range(3):  # no other cut gives that label a better F1
        best = max(f1_score(truth[:, k], probs[:, k] >= c, zero_division=0) for c in np.unique(probs[:, k]))
        assert f1_score(truth[:, k], probs[:, k] >= cuts[k]) == pytest.approx(best)
    m = multilabel_metrics(truth, probs, ["a", "b", "c"], cuts)
    pred = probs >= np.array(cuts)
    assert m["micro_f1"] == pytest.approx(f1_score(truth, pred, average="micro"))
    assert m["macro_f1"] == pytest.approx(f1_score(truth, pred, average="macro"))
    assert m["subset_accuracy"] == pytest.approx(accuracy_score(truth, pred))
    assert m["hamming_loss"] == pytest.approx(hamming_loss(truth, pred))


# -- the run directory --------------------------------------------------------------------------------

def test_every_method_trains_both_tasks_and_the_run_records_them(runs):
    from attnlab.rundir import open_run

    for (task, method), path in runs.items():
        run = open_run(path)
        assert run.config["task"] == run.metrics["task"] == task and run.metrics["method"] == method
        labels = json.loads((path / "labels.json").read_text())
        card = (path / "README.md").read_text()
        assert f"task: {task}" in card and not (path / "confusion_matrix.png").exists()
        if task == "regression":
            assert run.labels == ["stars"] and not run.thresholds
            assert run.config["metric_for_best_model"] == "mse" and "Pearson r" in card
            assert set(run.metrics["test"]) >= {"mse", "mae", "pearson", "spearman", "examples"}
        else:
            assert run.labels == GENRES and set(labels["thresholds"]) == set(GENRES)
            assert run.thresholds == labels["thresholds"] and run.config["metric_for_best_model"] == "micro_f1"
            assert set(run.metrics["test"]) >= {"micro_f1", "macro_f1", "subset_accuracy", "per_label"}
            assert all(run.metrics["test"]["per_label"][g]["threshold"] == run.thresholds[g] for g in GENRES)
        config = json.loads((path / "model" / "config.json").read_text()) if not run.is_adapter else None
        if config:
            assert config["problem_type"] == ("regression" if task == "regression" else "multi_label_classification")
            assert len(config["id2label"]) == len(run.labels)


def test_the_reloaded_run_scores_what_training_recorded(runs, files):
    """The test split's metrics in metrics.json equal scikit-learn/SciPy on the reloaded run's predictions
    of the same rows (fp32: only padding-order rounding differs)."""
    import attnlab
    from attnlab.training import TrainConfig
    from attnlab.training.build import load_config_data

    for method in ("full", "lora"):
        path = runs["regression", method]
        cfg = TrainConfig.from_sources(None, data=str(files["regression"]), task="regression", **TINY)
        test = load_config_data(cfg).splits["test"]
        pred = attnlab.load(str(path), precision="fp32").predict_scores(test["text"])
        got = json.loads((path / "metrics.json").read_text())["test"]
        y = np.asarray(test["label"])
        assert got["mse"] == pytest.approx(mean_squared_error(y, pred), rel=1e-4)
        assert got["mae"] == pytest.approx(mean_absolute_error(y, pred), rel=1e-4)
        assert got["spearman"] == pytest.approx(spearmanr(y, pred)[0], abs=1e-4)


def test_evaluate_matches_sklearn_on_the_same_predictions(runs, files, capsys):
    import attnlab
    from attnlab.inference.evaluate import evaluate_run

    df = pd.read_csv(files["regression"])
    for method in METHODS:
        path = runs["regression", method]
        m = evaluate_run(path, str(files["regression"]))
        pred = attnlab.load(str(path)).predict_scores(list(df["review"]))
        assert m["task"] == "regression" and m["examples"] == len(df)
        assert m["mse"] == pytest.approx(mean_squared_error(df["stars"], pred), rel=1e-5)
        assert m["mae"] == pytest.approx(mean_absolute_error(df["stars"], pred), rel=1e-5)
        assert m["pearson"] == pytest.approx(pearsonr(df["stars"], pred)[0], abs=1e-5)
        assert m["spearman"] == pytest.approx(spearmanr(df["stars"], pred)[0], abs=1e-5)

    ml = _ml_rows()
    truth = np.array([[g in labels for g in GENRES] for _, labels in ml])
    for method in METHODS:
        path = runs["multi-label", method]
        for data in (files["multi-label"], files["multi-label-csv"]):
            m = evaluate_run(path, str(data))
            predictor = attnlab.load(str(path))
            pred = predictor.predict_labels([t for t, _ in ml])
            assert m["task"] == "multi-label" and m["examples"] == len(ml)
            assert m["micro_f1"] == pytest.approx(f1_score(truth, pred, average="micro", zero_division=0))
            assert m["macro_f1"] == pytest.approx(f1_score(truth, pred, average="macro", zero_division=0))
            assert m["subset_accuracy"] == pytest.approx(accuracy_score(truth, pred))

    code, out, _ = run_cli(["evaluate", str(runs["multi-label", "full"]), "--data", str(files["multi-label"])], capsys)
    assert code == 0 and "micro-F1" in out and "| label | precision | recall | F1 | support | threshold |" in out
    code, out, _ = run_cli(["evaluate", str(runs["regression", "lora"]), "--data", str(files["regression"]),
                            "--json"], capsys)
    assert code == 0 and json.loads(out)["task"] == "regression" and "mse" in json.loads(out)


# -- predict, the Python API, serve -------------------------------------------------------------------

def test_predict_prints_a_score_or_the_labels_over_their_thresholds(runs, capsys):
    code, out, _ = run_cli(["predict", str(runs["regression", "full"]), "a warm film", "a dull film"], capsys)
    rows = [json.loads(line) for line in out.splitlines()]
    assert code == 0 and [set(r) for r in rows] == [{"text", "target", "score"}] * 2
    assert all(r["target"] == "stars" and isinstance(r["score"], float) for r in rows)

    code, out, _ = run_cli(["predict", str(runs["multi-label", "lora"]), "film with drama scenes"], capsys)
    row = json.loads(out)
    assert code == 0 and set(row) == {"text", "labels", "probabilities", "thresholds"}
    assert row["labels"] == [g for g in sorted(GENRES, key=lambda g: -row["probabilities"][g])
                             if row["probabilities"][g] >= row["thresholds"][g]]
    assert all(0 < p < 1 for p in row["probabilities"].values())


def test_serve_classifies_with_each_task(runs):
    pytest.importorskip("fastapi")
    from fastapi.testclient import TestClient

    from attnlab.serve import create_app

    reg, ml = runs["regression", "full"], runs["multi-label", "bitfit"]
    with TestClient(create_app([reg, ml], ui=False, chat=False, explain_models=[])) as client:
        r = client.post("/v1/classify", json={"texts": ["a warm film"], "run": reg.name})
        assert r.status_code == 200, r.text
        [row] = r.json()["results"]
        assert set(row) == {"target", "score"} and row["target"] == "stars"
        r = client.post("/v1/classify", json={"texts": ["film with action", "film with nothing"], "run": ml.name})
        assert r.status_code == 200, r.text
        rows = r.json()["results"]
        import attnlab

        want = attnlab.load(str(ml)).predict(["film with action", "film with nothing"])
        assert [x["labels"] for x in rows] == [x["labels"] for x in want]
        assert rows[0]["probabilities"] == pytest.approx(want[0]["probabilities"], abs=1e-5)


def test_v1_models_states_each_runs_task_and_what_its_predictions_are_made_of(runs):
    pytest.importorskip("fastapi")
    from fastapi.testclient import TestClient

    from attnlab.serve import create_app

    reg, ml = runs["regression", "full"], runs["multi-label", "lora"]
    with TestClient(create_app([reg, ml], ui=False, chat=False, explain_models=[])) as client:
        r_info, m_info = client.get("/v1/models").json()["runs"]
    reg_metrics, ml_metrics, ml_labels = (json.loads((p / name).read_text()) for p, name in (
        (reg, "metrics.json"), (ml, "metrics.json"), (ml, "labels.json")))
    assert r_info["task"] == "regression" and r_info["target"] == "stars" and "thresholds" not in r_info
    assert r_info["metrics"] == {"validation_mse": reg_metrics["validation"]["mse"],
                                 **{f"test_{k}": reg_metrics["test"][k] for k in ("mse", "pearson", "spearman")}}
    assert m_info["task"] == "multi-label" and m_info["labels"] == GENRES and "target" not in m_info
    assert m_info["thresholds"] == pytest.approx(ml_labels["thresholds"]) and set(m_info["thresholds"]) == set(GENRES)
    assert m_info["metrics"]["test_micro_f1"] == ml_metrics["test"]["micro_f1"]
    assert m_info["metrics"]["validation_micro_f1"] == ml_metrics["validation"]["micro_f1"]


def test_onnxruntime_engine_gives_the_same_outputs(runs):
    pytest.importorskip("onnxruntime")
    import attnlab

    texts = ["a warm and lovely film", "a dull film", "film with comedy and drama scenes"]
    for task, method in (("regression", "lora"), ("multi-label", "full")):
        torch_out = attnlab.load(str(runs[task, method]), precision="fp32").predict_proba(texts)
        onnx_out = attnlab.load(str(runs[task, method]), engine="onnxruntime").predict_proba(texts)
        assert np.abs(torch_out - onnx_out).max() < 1e-4


# -- one-line refusals --------------------------------------------------------------------------------

def test_bad_inputs_and_unsupported_uses_are_one_line_errors(runs, files, tiny_bert, tmp_path, capsys):
    rows = "".join(f"film number {i} here,{'good' if i % 2 else 'bad'}\n" for i in range(20))
    words = write(tmp_path / "words.csv", "text,label\n" + rows)
    base = ["train", "--model", str(tiny_bert), "--max-steps", "1", "--no-progress"]
    cases = [
        (["--data", str(words), "--task", "regression", "-o", str(tmp_path / "a")], "regression needs a number"),
        (["--data", str(files["regression"]), "--task", "regression", "--metric-for-best-model", "accuracy",
          "-o", str(tmp_path / "b")], "not a regression metric"),
        (["--data", "movie-snippet-ratings", "-o", str(tmp_path / "c")], "Pass --task regression"),
    ]
    for argv, needle in cases:
        code, _, err = run_cli(base + argv, capsys)
        assert code == 2 and err.count("\n") == 1 and needle in err, err
    for argv, needle in [
        (["compare", "--task", "regression", "--data", str(files["regression"]), "-o", str(tmp_path / "cmp")],
         "ranks runs by accuracy"),
        (["explain", "a film", "--model", str(runs["regression", "full"]), "--methods", "occlusion",
          "-o", str(tmp_path / "x")], "this run's task is regression"),
        (["evaluate", str(runs["regression", "full"]), "--data", str(words)], "regression needs a number"),
        (["evaluate", str(runs["multi-label", "full"]), "--data", str(write(
            tmp_path / "gap.csv", "text,label\na fine film,drama\na long film,\n"))], "1 rows have no labels"),
    ]:
        code, _, err = run_cli(argv, capsys)
        assert code == 2 and err.count("\n") == 1 and needle in err, err
    unseen = write(tmp_path / "unseen.jsonl", json.dumps({"text": "a film", "label": ["horror"]}) + "\n")
    code, _, err = run_cli(["evaluate", str(runs["multi-label", "full"]), "--data", str(unseen)], capsys)
    assert code == 2 and "labels the model never saw" in err and err.count("\n") == 1
    import attnlab

    with pytest.raises(UserError, match="averages its windows"):
        attnlab.load(str(runs["regression", "head"]), long_text="chunk", long_text_aggregate="max")


def test_train_cli_prints_the_tasks_numbers(tiny_bert, files, tmp_path, capsys):
    code, out, err = run_cli(["train", "--data", str(files["multi-label-csv"]), "--task", "multi-label",
                              "--model", str(tiny_bert), "--method", "head", "--max-steps", "2", "--no-progress",
                              "--precision", "fp32", "-o", str(tmp_path / "ml")], capsys)
    assert code == 0, err
    assert "validation micro-F1" in out and "subset accuracy" in out
    assert json.loads((tmp_path / "ml" / "labels.json").read_text())["labels"] == GENRES


def test_the_web_ui_shows_the_value_or_the_labels_over_their_thresholds(runs):
    """The Classify tab's handler on a regression and a multi-label run (through the Blocks app, as a click
    calls it): the value named by its target; the labels that pass their thresholds, and a row per label
    with its probability and threshold. A classification row still fills the box with its probabilities."""
    pytest.importorskip("gradio")
    import attnlab
    from attnlab.inference.tasks import TASKS
    from attnlab.serve.state import ServeState
    from attnlab.serve.ui import build_ui, prediction_view

    reg, ml = runs["regression", "full"], runs["multi-label", "full"]
    state = ServeState([reg, ml], chat=False, explain_models=[])
    try:
        handler = next(f.fn for f in build_ui(state).fns.values() if getattr(f.fn, "__name__", "") == "classify")
        value, detail, highlight = handler("a warm and lovely film", reg.name, "rollout")
        score = attnlab.load(str(reg)).predict_scores(["a warm and lovely film"])[0]
        assert value == f"stars: {score:.4g}" and "**stars**" in detail
        assert "this is a regression run" in highlight  # token attribution explains classes only

        texts = ["film with action and drama scenes", "film with nothing scenes"]
        want = attnlab.load(str(ml)).predict(texts)
        for text, row in zip(texts, want, strict=True):
            value, detail, _ = handler(text, ml.name, "rollout")
            assert value == (", ".join(row["labels"]) or "no label passes its threshold")
            table = {cells[0]: cells[1:] for line in detail.splitlines()[2:]
                     for cells in [[c.strip() for c in line.strip("|").split("|")]]}
            assert set(table) == set(GENRES)
            for g in GENRES:
                p, cut, applies = table[g]
                assert p == f"{row['probabilities'][g]:.1%}" and cut == f"{row['thresholds'][g]:.1%}"
                assert applies == ("yes" if g in row["labels"] else "no")
    finally:
        state.close()
    row = {"label": "good", "score": 0.7, "probabilities": {"bad": 0.3, "good": 0.7}}
    assert prediction_view(TASKS["classification"], row) == (row["probabilities"], "")
