"""Serve hardening (issue #17): the Host-header check against DNS rebinding, the web UI's file
routes (only what the UI made; no uploads), /docs without a CDN, and the attention-response cap.
Runs come from the session's tiny random BERT runs (2 layers x 2 heads)."""

from __future__ import annotations

import json
import shutil

import pytest

pytest.importorskip("fastapi")
from fastapi.testclient import TestClient

from attnlab.serve import Limits, create_app
from attnlab.serve.middleware import ALLOWED_HOSTS_ENV, allowed_hosts_for


def _error(r, status: int, *needles: str) -> str:
    assert r.status_code == status, (r.status_code, r.text)
    body = r.json()
    assert set(body) == {"error"} and isinstance(body["error"], str) and "\n" not in body["error"], body
    for n in needles:
        assert n in body["error"], (n, body["error"])
    return body["error"]


@pytest.fixture
def run(tiny_bert_runs, tmp_path):
    dst = tmp_path / "full"
    shutil.copytree(tiny_bert_runs["full"], dst)
    return dst


# -- Host header (DNS rebinding) ---------------------------------------------------------------------


def test_host_header_must_name_this_server(run):
    app = create_app([run], ui=False, chat=False, explain_models=[], allowed_hosts=allowed_hosts_for("127.0.0.1", {}))
    with TestClient(app, base_url="http://127.0.0.1:7860") as c:
        assert c.get("/healthz").status_code == 200
        for host in ("localhost:7860", "LOCALHOST", "127.0.0.1", "[::1]:7860", "10.1.2.3:80", "[2001:db8::1]"):
            assert c.get("/healthz", headers={"host": host}).status_code == 200, host
        for host in ("evil.example", "evil.example:7860", "127.0.0.1.evil.example", "localhost.evil.example"):
            _error(c.get("/healthz", headers={"host": host}), 400, "does not answer to the host name",
                   ALLOWED_HOSTS_ENV)
        _error(c.post("/v1/classify", json={"texts": ["fine"]}, headers={"host": "evil.example"}), 400, "host name")
    # without allowed_hosts (an app embedded in the caller's own server) there is no check
    with TestClient(create_app([run], ui=False, chat=False, explain_models=[])) as c:
        assert c.get("/healthz", headers={"host": "anything.example"}).status_code == 200


def test_allowed_hosts_follow_the_bind_address_and_the_environment(monkeypatch):
    import socket

    assert allowed_hosts_for("127.0.0.1", {}) == ["localhost", "127.0.0.1"]
    assert allowed_hosts_for("myhost.lan", {ALLOWED_HOSTS_ENV: " a.example, b.example ,"}) == [
        "localhost", "myhost.lan", "a.example", "b.example"]
    assert socket.gethostname() in allowed_hosts_for("0.0.0.0", {})
    assert allowed_hosts_for("127.0.0.1", {ALLOWED_HOSTS_ENV: "*"}) is None
    monkeypatch.setenv(ALLOWED_HOSTS_ENV, "proxy.example")
    assert "proxy.example" in allowed_hosts_for("127.0.0.1")


def test_serve_passes_the_host_check_to_the_app(monkeypatch):
    import uvicorn

    from attnlab.serve import server

    seen = {}
    monkeypatch.setattr(server, "steady_malloc", lambda: False)
    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: seen.update(app=app, **kw))
    monkeypatch.delenv(ALLOWED_HOSTS_ENV, raising=False)
    server.serve([], host="127.0.0.1", port=7999, chat=False, ui=False, explain_models=[])
    with TestClient(seen["app"], base_url="http://127.0.0.1:7999") as c:
        assert c.get("/healthz").status_code == 200
        _error(c.get("/healthz", headers={"host": "rebound.example"}), 400, "rebound.example")


# -- the web UI's file routes ----------------------------------------------------------------------


@pytest.fixture
def ui_client(run, tmp_path, monkeypatch):
    pytest.importorskip("gradio")
    monkeypatch.setenv("GRADIO_TEMP_DIR", str(tmp_path / "gradio-cache"))  # where the UI's files go
    compare = tmp_path / "compare"
    compare.mkdir()
    (compare / "comparison.md").write_text("# Comparison\n\n| method | acc |\n|---|---|\n| full | 0.5 |\n")
    (compare / "accuracy.png").write_bytes(b"\x89PNG\r\n\x1a\n")
    (compare / "model.safetensors").write_bytes(b"weights")
    app = create_app([run], chat=False, explain_models=[], compare_dir=compare)
    with TestClient(app) as c:
        yield c, app, compare, tmp_path


def _blocks(app):
    return next(r.app for r in app.routes if getattr(r, "path", None) == "/ui").get_blocks()


def test_gradio_serves_only_files_the_ui_made(ui_client):
    c, app, compare, tmp = ui_client
    for f in (compare / "model.safetensors", compare / "accuracy.png", compare / "comparison.md", run_file(app)):
        for url in (f"/ui/gradio_api/file={f}", f"/ui/gradio_api/file/{f}", f"/ui//gradio_api/file={f}"):
            _error(c.get(url), 404, "only the files it made")
    _error(c.get("/ui/gradio_api/file=http://127.0.0.1:1/x.png"), 404)
    # a file the UI handed to the page (as Gradio's cache copy) is served
    made = tmp / "gradio-cache" / "abc123" / "accuracy.png"
    made.parent.mkdir(parents=True)
    made.write_bytes(b"\x89PNG\r\n\x1a\n")
    blocks = _blocks(app)
    gallery = next(b for b in blocks.blocks.values() if type(b).__name__ == "Gallery")
    gallery.temp_files.add(str(made))
    r = c.get(f"/ui/gradio_api/file={made}")
    assert r.status_code == 200 and r.content == made.read_bytes()


def run_file(app):
    run = next(iter(app.state.serve.runs.values()))
    return run.model_dir / "model.safetensors"


def test_gradio_refuses_uploads(ui_client):
    c, _, _, tmp = ui_client
    r = c.post("/ui/gradio_api/upload", files={"files": ("evil.html", b"<script>alert(1)</script>", "text/html")})
    _error(r, 403, "uploads")
    _error(c.get("/ui/gradio_api/proxy=http://127.0.0.1:1/x"), 403)
    assert not [p for p in tmp.rglob("evil.html")]  # nothing was written
    assert c.get("/ui/").status_code == 200  # the UI itself still loads


def test_compare_tab_hands_gradio_images_not_paths(ui_client):
    from attnlab.serve.ui import _image

    _, app, compare, _ = ui_client
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(2, 2), dpi=40)
    ax.plot([0, 1], [1, 0])
    fig.savefig(compare / "accuracy.png")
    plt.close(fig)
    img = _image(compare / "accuracy.png")
    assert img.size == (80, 80)
    text, plots = app.state.serve.comparison()
    assert "| full | 0.5 |" in text and [p.name for p in plots] == ["accuracy.png"]


# -- /docs without a CDN -------------------------------------------------------------------------


def test_docs_load_nothing_from_outside(run, monkeypatch):
    from attnlab.serve.routes import docs

    with TestClient(create_app([run], ui=False, chat=False, explain_models=[])) as c:
        page = c.get("/docs")
        assert page.status_code == 200 and "/openapi.json" in page.text
        assert "http://" not in page.text and "https://" not in page.text, page.text
        assert c.get("/openapi.json").json()["paths"]
        assert c.get("/redoc", follow_redirects=False).headers["location"] == "/docs"
        if docs.swagger_assets() is not None:
            assert "/docs/assets/swagger-ui-bundle.js" in page.text
            js = c.get("/docs/assets/swagger-ui-bundle.js")
            assert js.status_code == 200 and len(js.content) > 100_000
            assert c.get("/docs/assets/swagger-ui.css").status_code == 200
            assert c.get("/docs/oauth2-redirect").status_code == 200
    monkeypatch.setattr(docs, "swagger_assets", lambda: None)  # swagger-ui-py not installed
    with TestClient(create_app([run], ui=False, chat=False, explain_models=[])) as c:
        page = c.get("/docs")
        assert page.status_code == 200 and "pip install swagger-ui-py" in page.text
        assert "POST /v1/classify" in page.text and "<script" not in page.text and "https://" not in page.text


# -- /v1/attention response cap ----------------------------------------------------------------------


def test_attention_size_comes_from_the_shapes():
    from attnlab.serve.errors import ApiError
    from attnlab.serve.routes.attention import check_size

    dims = ["layer", "head", "query", "key"]
    with pytest.raises(ApiError) as exc:  # smollm2 (30 layers x 9 heads), a 400-word text cut to 128 tokens
        check_size((30, 9, 128, 128), dims, Limits().max_attention_weights)
    assert exc.value.status == 422 and "4,423,680 attention weights (30 layers x 9 heads x 128 x 128 tokens" in (
        exc.value.message)
    check_size((6, 12, 128, 128), dims, Limits().max_attention_weights)  # minilm-l6, every head: fits
    check_size((9, 128, 128), dims[1:], Limits().max_attention_weights)  # smollm2, one layer: fits


def test_attention_response_is_capped(run):
    from attnlab.serve.routes.attention import JSON_BYTES_PER_WEIGHT

    limits = Limits(max_attention_weights=1000)
    with TestClient(create_app([run], ui=False, chat=False, explain_models=[], limits=limits)) as c:
        text = "a " * 30  # 32 tokens: 2 layers x 2 heads x 32 x 32 = 4,096 weights
        msg = _error(c.post("/v1/attention", json={"text": text}), 422, "4,096 attention weights",
                     "2 layers x 2 heads x 32 x 32 tokens", "at most 1,000", "pick a layer or a head")
        assert "MB" in msg
        _error(c.post("/v1/attention", json={"text": text, "layer": 0}), 422, "2,048 attention weights")
        _error(c.post("/v1/attention", json={"text": text, "layer": 0, "head": 1}), 422, "1,024",
               "send a shorter text")
        ok = c.post("/v1/attention", json={"text": "a " * 10, "layer": -1, "head": 0})
        assert ok.status_code == 200 and ok.json()["shape"] == [12, 12]
        _error(c.post("/v1/attention", json={"text": "a " * 14}), 422, "1,024")  # 2 x 2 x 16 x 16
        small = c.post("/v1/attention", json={"text": "a " * 13})  # 2 x 2 x 15 x 15 = 900
        assert small.status_code == 200 and json.loads(small.content)["shape"] == [2, 2, 15, 15]
        assert len(small.content) < 900 * JSON_BYTES_PER_WEIGHT + 4000
