"""/docs in a real browser (headless Chromium): Swagger UI renders every endpoint from files the
server itself serves; the page requests nothing outside the server and logs no errors."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import serve_process

CHROMIUM = Path("/usr/bin/chromium")
sync_api = pytest.importorskip("playwright.sync_api")
pytest.importorskip("fastapi")
if not CHROMIUM.exists():
    pytest.skip(f"{CHROMIUM} not installed (apt-get install -y chromium)", allow_module_level=True)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    from attnlab.serve.routes.docs import swagger_assets

    if swagger_assets() is None:
        pytest.skip("Swagger UI's files are not installed (pip install swagger-ui-py)")
    with serve_process(["--no-ui", "--no-chat"], tmp_path_factory.mktemp("docs"), timeout=60) as url:
        yield url


def test_swagger_ui_renders_offline(server):
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        try:
            page = browser.new_page()
            errors, outside = [], []
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.on("request", lambda r: outside.append(r.url) if not r.url.startswith(server) else None)
            page.goto(f"{server}/docs")
            page.locator(".opblock").first.wait_for(timeout=30_000)
            paths = page.locator(".opblock-summary-path").all_inner_texts()
            assert {"/v1/classify", "/v1/attention", "/v1/generate", "/v1/models", "/healthz"} <= {
                p.replace("\u200b", "") for p in paths}, paths
            assert outside == [] and errors == [], (outside, errors)
        finally:
            browser.close()
