"""POST /v1/explain with FastAPI's TestClient: the response's schema, every attribution method (the
same numbers as :func:`attnlab.explain.attribute` on the run), the text limits, bad methods and bad
runs, and explanations running beside classification from several threads at once. Runs come
from the session's ``tiny_bert_runs`` (a 2-layer BERT: seconds)."""

from __future__ import annotations

import threading

import numpy as np
import pytest

pytest.importorskip("fastapi")
pytest.importorskip("captum")

from fastapi.testclient import TestClient
from rest import rest_error as _error

from attnlab.explain.attribution import METHODS, attribute
from attnlab.serve import create_app

TEXT = "the movie was not good at all"
METHOD_KEYS = {"scores", "word_scores", "seconds"}


@pytest.fixture(scope="module")
def client(tiny_bert_runs):
    app = create_app([tiny_bert_runs["full"], tiny_bert_runs["lora"]], ui=False, chat=False, explain_models=[])
    with TestClient(app) as c:
        yield c


@pytest.fixture(scope="module")
def every_method(client) -> dict:
    r = client.post("/v1/explain", json={"text": TEXT})
    assert r.status_code == 200, r.text
    return r.json()


def test_schema_and_values_match_the_explain_api(every_method, tiny_bert_runs):
    body = every_method
    assert body["run"] == "full" and body["text"] == TEXT and list(body["methods"]) == list(METHODS)
    tokens = body["tokens"]
    assert tokens[0] == "[CLS]" and tokens[-1] == "[SEP]" and len(tokens) == 9
    assert body["special"] == [True] + [False] * 7 + [True]
    assert body["words"] == TEXT.split() and body["word_ids"] == [None, *range(7), None]
    assert body["label"] in ("negative", "positive") and 0.5 <= body["probability"] <= 1.0
    assert body["truncated"] is False and isinstance(body["notes"], list) and body["elapsed_ms"] > 0
    assert isinstance(body["ig_completeness_delta"], float)

    want = attribute(TEXT, str(tiny_bert_runs["full"]))[0]  # the run loaded by the explain API itself
    assert body["tokens"] == want.tokens and body["label"] == want.label
    assert body["probability"] == pytest.approx(want.probability, abs=1e-5)
    for method, row in body["methods"].items():
        assert set(row) == METHOD_KEYS and row["seconds"] >= 0
        assert len(row["scores"]) == len(tokens) and len(row["word_scores"]) == len(body["words"])
        np.testing.assert_allclose(row["scores"], want.scores[method], atol=1e-4, err_msg=method)
        np.testing.assert_allclose(row["word_scores"], want.word_scores(method), atol=1e-4, err_msg=method)


@pytest.mark.parametrize("method", METHODS)
def test_each_method_alone(client, every_method, method):
    r = client.post("/v1/explain", json={"text": TEXT, "methods": [method]})
    assert r.status_code == 200, r.text
    body = r.json()
    assert list(body["methods"]) == [method] and body["label"] == every_method["label"]
    np.testing.assert_allclose(body["methods"][method]["scores"], every_method["methods"][method]["scores"],
                               atol=1e-4)


def test_lora_run_order_and_all(client):
    r = client.post("/v1/explain", json={"text": TEXT, "run": "lora", "methods": ["occlusion", "attention"]})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["run"] == "lora" and list(body["methods"]) == ["attention", "occlusion"]
    assert sum(body["methods"]["attention"]["scores"]) == pytest.approx(1.0, abs=1e-4)  # [CLS]'s row: a distribution
    both = client.post("/v1/explain", json={"text": TEXT, "run": "lora", "methods": ["all"]}).json()
    assert list(both["methods"]) == list(METHODS)


def test_long_text_is_truncated_like_attention(client):
    r = client.post("/v1/explain", json={"text": "word " * 300, "methods": ["attention", "occlusion"]})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["truncated"] is True and len(body["tokens"]) == 128 and body["tokens"][-1] == "[SEP]"
    assert any("truncated from 302 to 128 tokens" in n for n in body["notes"])
    assert len(body["methods"]["occlusion"]["scores"]) == 128


@pytest.mark.parametrize("body,status,needle", [
    ({"text": TEXT, "methods": ["saliency"]}, 422,
     "unknown method 'saliency'; valid methods: attention, rollout, grad-rollout, ig, gradxinput, occlusion"),
    ({"text": TEXT, "methods": ["ig", "lime", "shap"]}, 422, "unknown methods 'lime', 'shap'; valid methods:"),
    ({"text": TEXT, "methods": []}, 422, "methods is empty"),
    ({"text": TEXT, "methods": "ig"}, 422, "methods: Input should be a valid list"),
    ({"text": TEXT, "methods": [1]}, 422, "methods.0: Input should be a valid string"),
    ({"text": ""}, 422, "text is empty"),
    ({"text": "\u200b"}, 422, "text is empty (nothing visible"),
    ({"text": "x" * 2001}, 422, "text is 2001 characters long (at most 2000)"),
    ({"text": ["a list"]}, 422, "text: Input should be a valid string"),
    ({"methods": ["ig"]}, 422, "text: required field is missing"),
    ({"text": TEXT, "model": "minilm-l6"}, 422, "model: unknown field"),
    ({"text": TEXT, "run": "nope"}, 404, "unknown run 'nope'; this server serves: full, lora"),
    ({"text": TEXT, "run": "../full"}, 400, "not a path"),
    ({"text": TEXT, "run": 3}, 422, "run: Input should be a valid string"),
])
def test_bad_requests(client, body, status, needle):
    _error(client.post("/v1/explain", json=body), status, needle)


def test_a_server_without_runs(tiny_bert_runs):
    with TestClient(create_app([], ui=False, chat=False, explain_models=[])) as c:
        _error(c.post("/v1/explain", json={"text": TEXT}), 404, "serves no runs")


def test_explain_beside_classify_from_threads(client, every_method):
    """The run's model is shared by the classify batcher and /v1/explain: under its lock, answers
    from concurrent requests are the ones each gets alone."""
    texts = ["a gorgeous, moving film", "a tedious mess"]
    alone = client.post("/v1/classify", json={"texts": texts}).json()["results"]
    got: dict[str, list] = {"explain": [], "classify": [], "errors": []}

    def work(kind: str) -> None:
        try:
            for _ in range(3):
                if kind == "explain":
                    r = client.post("/v1/explain", json={"text": TEXT, "methods": ["attention", "ig"]})
                else:
                    r = client.post("/v1/classify", json={"texts": texts})
                assert r.status_code == 200, r.text
                got[kind].append(r.json())
        except Exception as exc:  # reported below, in the test's thread
            got["errors"].append(repr(exc))

    threads = [threading.Thread(target=work, args=(k,)) for k in ("explain", "classify") * 2]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert got["errors"] == [] and len(got["explain"]) == 6 and len(got["classify"]) == 6
    for body in got["explain"]:
        for m in ("attention", "ig"):
            np.testing.assert_allclose(body["methods"][m]["scores"], every_method["methods"][m]["scores"], atol=1e-4)
    for results in got["classify"]:
        for row, want in zip(results["results"], alone, strict=True):
            assert row["label"] == want["label"] and row["score"] == pytest.approx(want["score"], abs=1e-5)
