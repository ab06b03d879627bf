"""Regression tests for the attacker-style review ("Hardening"): one bad text must not fail its
batch-mates, run files of the wrong shape, and CLI bounds. Every user mistake ends as one line
(CLI: exit 2 on stderr; REST: a 4xx JSON error), never a traceback or a 500."""

from __future__ import annotations

import asyncio
import json
import shutil
import threading
from pathlib import Path

import pytest
import yaml
from conftest import run_cli

POISON = "\ud800"  # a lone surrogate: valid JSON ("\ud800"), not encodable as UTF-8
BAD_TEXTS = {
    "lone-surrogate": (POISON, "not valid Unicode"),
    "nul-only": ("\x00\x00\x00", "is empty"),
    "zero-width-only": ("\u200b\u200c\u200d\u2060\ufeff", "is empty"),
    "controls-and-spaces": (" \x01\t\x7f \u200b\n", "is empty"),
}
GOOD = ["a gorgeous, moving film", "a tedious mess", "the movie was not good at all", "fine",
        "an utterly charming romp", "dull", "i loved every minute", "the plot makes no sense"]


_cli = run_cli  # conftest's


def _one_line_error(code: int, err: str, *needles: str) -> None:
    assert code == 2, err
    assert err.startswith("error: ") and err.count("\n") == 1, err
    assert "Traceback" not in err
    for n in needles:
        assert n in err, (n, err)


def _json_error(r, status: int, *needles: str) -> str:
    assert r.status_code == status, (r.status_code, r.text)
    assert "Traceback" not in r.text
    body = r.json()
    assert set(body) == {"error"} and isinstance(body["error"], str) and "\n" not in body["error"]
    for n in needles:
        assert n in body["error"], (n, body["error"])
    return body["error"]


@pytest.fixture
def run_copy(tiny_bert_runs, tmp_path):
    """A private copy of a finished tiny run, to break."""

    def copy(method: str = "full", name: str | None = None) -> Path:
        dst = tmp_path / (name or f"run-{method}")
        shutil.copytree(tiny_bert_runs[method], dst)
        return dst

    return copy


# -- 1. one bad text must not fail its batch-mates -----------------------------------------------


def test_text_rule_is_shared():
    from attnlab.data.text import text_problem
    from attnlab.inference.predictor import Predictor

    for text, needle in BAD_TEXTS.values():
        assert needle in text_problem(text)
    for ok in ("fine", " ok ", "caf\u00e9", "emoji \U0001f600", "a\x00b", "\u200bword"):
        assert text_problem(ok) is None, ok
    from attnlab.errors import UserError

    with pytest.raises(UserError, match="text 2 is not valid Unicode"):
        Predictor._check(["fine", POISON])


@pytest.fixture
def rest(tiny_bert_runs, tmp_path):
    pytest.importorskip("fastapi")
    from fastapi.testclient import TestClient

    from attnlab.serve import create_app

    run = tmp_path / "full"
    shutil.copytree(tiny_bert_runs["full"], run)
    with TestClient(create_app([run], ui=False, chat=False, explain_models=[])) as client:
        yield client


@pytest.mark.parametrize("name", list(BAD_TEXTS))
def test_rest_refuses_bad_texts_with_422(rest, name, caplog):
    text, needle = BAD_TEXTS[name]
    # sent as raw JSON so the lone surrogate travels as the escape "\ud800", as a client would send it
    body = json.dumps({"texts": ["fine", text]}).encode()
    r = rest.post("/v1/classify", content=body, headers={"content-type": "application/json"})
    _json_error(r, 422, "texts[1]", needle)
    r = rest.post("/v1/attention", content=json.dumps({"text": text}).encode(),
                  headers={"content-type": "application/json"})
    _json_error(r, 422, needle)
    assert "Traceback" not in caplog.text
    assert rest.post("/v1/classify", json={"texts": ["fine"]}).status_code == 200  # still serving


@pytest.mark.parametrize("edge_check", [True, False], ids=["refused-at-the-edge", "fails-in-the-model"])
def test_one_poisoned_request_does_not_fail_its_batch_mates(tiny_bert_runs, tmp_path, monkeypatch, edge_check):
    """1 poisoned + 8 good requests in flight at once, sharing a batch: the 8 get their answers.
    With the edge check the poisoned one is a 422; with it bypassed (as for a text that only the
    model chokes on) the merged batch fails, the batcher retries each request alone, and only the
    poisoned one gets an error (the Predictor's own check: a one-line 400)."""
    pytest.importorskip("fastapi")
    import httpx
    from fastapi.testclient import TestClient

    from attnlab.serve import Limits, create_app

    run = tmp_path / "full"
    shutil.copytree(tiny_bert_runs["full"], run)
    app = create_app([run], ui=False, chat=False, explain_models=[], limits=Limits(batch_wait_ms=100))
    state = app.state.serve
    if not edge_check:
        monkeypatch.setattr(state, "check_texts", lambda texts, field="texts": list(texts))
    poisoned = json.dumps({"texts": [POISON]}).encode()

    async def go():
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as ac:
            await ac.post("/v1/classify", json={"texts": ["warm-up"]})  # loads the model
            before = state.batches_run("full")
            bad = ac.post("/v1/classify", content=poisoned, headers={"content-type": "application/json"})
            rs = await asyncio.gather(bad, *[ac.post("/v1/classify", json={"texts": [t]}) for t in GOOD])
            return rs, state.batches_run("full") - before

    try:
        (bad, *good), batches = asyncio.run(go())
        assert [r.status_code for r in good] == [200] * len(GOOD), [r.text for r in good]
        together = TestClient(app).post("/v1/classify", json={"texts": GOOD}).json()["results"]
    finally:
        state.close()
    assert [r.json()["results"][0]["label"] for r in good] == [r["label"] for r in together]
    _json_error(bad, 422 if edge_check else 400, "not valid Unicode")
    if edge_check:
        assert batches < len(GOOD)  # the good ones did share batches


def test_micro_batcher_retries_each_request_alone_when_a_batch_fails():
    from attnlab.serve import MicroBatcher

    calls = []

    def fn(texts):
        calls.append(list(texts))
        if "poison" in texts:
            raise ValueError("cannot encode poison")
        return [len(t) for t in texts]

    b = MicroBatcher(fn, max_batch=64, wait_ms=200)
    try:
        results: dict[int, object] = {}
        go = threading.Barrier(6)

        def submit(i: int) -> None:
            texts = ["poison"] if i == 0 else ["x" * i, "y" * (i + 1)]
            go.wait()
            try:
                results[i] = b.submit(texts).result(timeout=10)
            except ValueError as exc:
                results[i] = exc

        threads = [threading.Thread(target=submit, args=(i,)) for i in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert isinstance(results[0], ValueError) and "poison" in str(results[0])
        assert {i: results[i] for i in range(1, 6)} == {i: [i, i + 1] for i in range(1, 6)}
        assert any(len(c) > 1 and "poison" in c for c in calls)  # the poison did share a batch first
        assert b.requests == 5
    finally:
        b.close()


@pytest.mark.parametrize("name", list(BAD_TEXTS))
def test_cli_predict_refuses_bad_texts(run_copy, name, capsys):
    text, needle = BAD_TEXTS[name]
    code, out, err = _cli(["predict", str(run_copy()), "fine", text], capsys)
    _one_line_error(code, err, "text 2", needle)
    assert out == ""


# -- 2. run files of the wrong shape ----------------------------------------------------------------


def _set_config(key: str, value: object):
    def edit(r: Path) -> None:
        cfg = yaml.safe_load((r / "config.yaml").read_text())
        cfg[key] = value
        (r / "config.yaml").write_text(yaml.safe_dump(cfg))

    return edit


def _write(name: str, text: str):
    return lambda r: (r / name).write_text(text)


BROKEN_RUNS = {
    "labels-a-list": (_write("labels.json", '["negative", "positive"]'), "labels.json"),
    "labels-duplicated": (_write("labels.json", '{"labels": ["negative", "negative"]}'), "more than once"),
    "labels-not-strings": (_write("labels.json", '{"labels": [0, 1]}'), "labels.json"),
    "labels-empty-name": (_write("labels.json", '{"labels": ["negative", " "]}'), "labels.json"),
    "labels-key-missing": (_write("labels.json", '{"names": ["negative", "positive"]}'), "labels.json"),
    "metrics-a-list": (_write("metrics.json", "[1, 2]"), "metrics.json"),
    "config-a-list": (_write("config.yaml", "- a\n- b\n"), "config.yaml"),
    "config-a-string": (_write("config.yaml", "just some words\n"), "config.yaml"),
    "max-length-lots": (_set_config("max_length", "lots"), "max_length"),
    "max-length-zero": (_set_config("max_length", 0), "max_length"),
    "max-length-null": (_set_config("max_length", None), "max_length"),
}


@pytest.mark.parametrize("name", list(BROKEN_RUNS))
def test_run_files_of_the_wrong_shape_are_one_line_errors(run_copy, name, capsys):
    edit, needle = BROKEN_RUNS[name]
    run = run_copy()
    edit(run)
    code, out, err = _cli(["predict", str(run), "a fine film"], capsys)
    _one_line_error(code, err, "run directory is corrupted", needle)
    assert out == ""


def test_run_with_an_empty_config_still_opens(run_copy):
    from attnlab.training.rundir import open_run

    run = run_copy()
    (run / "config.yaml").write_text("")
    assert open_run(run).config == {}


def test_serve_refuses_a_broken_run_at_start(run_copy, capsys, monkeypatch):
    uvicorn = pytest.importorskip("uvicorn")

    def refuse(*args, **kwargs):  # a regression must fail here, not serve forever
        raise AssertionError("the server started on a broken run")

    monkeypatch.setattr(uvicorn, "run", refuse)
    run = run_copy()
    _write("labels.json", '{"labels": ["negative", "negative"]}')(run)
    code, _, err = _cli(["serve", "--run", str(run), "--no-ui", "--no-chat"], capsys)
    _one_line_error(code, err, "more than once")


# -- 3. CLI bounds ----------------------------------------------------------------------------------


@pytest.mark.parametrize("port", ["70000", "0", "-1", "65536", "http"])
def test_serve_port_out_of_range_is_a_usage_error(port, capsys, monkeypatch):
    uvicorn = pytest.importorskip("uvicorn")
    monkeypatch.setattr(uvicorn, "run", lambda *a, **k: pytest.fail("the server started on a bad --port"))
    code, out, err = _cli(["serve", "--port", port, "--no-ui", "--no-chat"], capsys)
    _one_line_error(code, err, "--port")
    assert out == ""


def test_serve_port_accepts_the_whole_range():
    from attnlab.cli import build_parser

    for port in ("1", "7860", "65535"):
        assert build_parser().parse_args(["serve", "--port", port]).port == int(port)


@pytest.fixture
def no_evaluation(monkeypatch):
    """A bad --output must be refused before any work: evaluating at all fails the test."""
    import attnlab.inference.evaluate as ev

    def refuse(*args, **kwargs):
        raise AssertionError("evaluate_run ran before --output was checked")

    monkeypatch.setattr(ev, "evaluate_run", refuse)


def test_evaluate_output_that_is_a_directory(run_copy, sst2_dir, tmp_path, capsys, no_evaluation):
    target = tmp_path / "existing"
    target.mkdir()
    code, out, err = _cli(["evaluate", str(run_copy()), "--data", "sst2", "--data-dir", str(sst2_dir),
                           "--output", str(target)], capsys)
    _one_line_error(code, err, "--output", "directory")
    assert out == ""
    assert list(target.iterdir()) == [] and sorted(p.name for p in tmp_path.iterdir()) == ["existing", "run-full"]


def test_evaluate_output_in_a_missing_folder(run_copy, sst2_dir, tmp_path, capsys, no_evaluation):
    target = tmp_path / "nope" / "metrics.json"
    code, out, err = _cli(["evaluate", str(run_copy()), "--data", "sst2", "--data-dir", str(sst2_dir),
                           "--output", str(target)], capsys)
    _one_line_error(code, err, "--output", "does not exist")
    assert out == ""
    assert not target.parent.exists()


def test_evaluate_output_to_a_file_still_works(run_copy, sst2_dir, tmp_path, capsys):
    target = tmp_path / "metrics.json"
    code, _, err = _cli(["evaluate", str(run_copy()), "--data", "sst2", "--data-dir", str(sst2_dir),
                         "--split", "validation", "--max-samples", "8", "--output", str(target)], capsys)
    assert code == 0, err
    assert "accuracy" in json.loads(target.read_text())
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp file left beside it
