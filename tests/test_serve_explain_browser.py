"""The Classify tab's method picker in a real browser (headless Chromium via Playwright): the token
highlight follows the chosen attribution method, with the scores POST /v1/explain gives for it.
The server is ``attnlab serve`` in a subprocess over the session's tiny BERT run."""

from __future__ import annotations

import json
import re
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from conftest import serve_process

CHROMIUM = Path("/usr/bin/chromium")
TIMEOUT_MS = 60_000
TEXT = "a gorgeous, moving film"
PICKED = ["ig", "occlusion", "attention", "gradxinput"]  # after the first highlight (rollout)

sync_api = pytest.importorskip("playwright.sync_api")
pytest.importorskip("gradio")
pytest.importorskip("captum")
if not CHROMIUM.exists():
    pytest.skip(f"{CHROMIUM} not installed (apt-get install -y chromium)", allow_module_level=True)


@pytest.fixture(scope="module")
def server(tiny_bert_runs, tmp_path_factory):
    root = tmp_path_factory.mktemp("serve-explain")
    with serve_process(["--run", str(tiny_bert_runs["full"]), "--num-threads", "1", "--no-chat"], root) as url:
        yield url


def _explain(server: str, method: str) -> dict:
    req = urllib.request.Request(f"{server}/v1/explain", data=json.dumps({"text": TEXT, "methods": [method]}).encode(),
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=60) as r:
        return json.load(r)


def _highlight(pg) -> list[str]:
    return pg.locator("#classify-highlight .attr-token").evaluate_all("ts => ts.map(t => t.style.background)")


def _strongest(colours: list[str], special: list[bool]) -> int:
    """The non-special token drawn most opaque (the highlight's alpha is |score| / max |score|)."""
    def alpha(colour: str) -> float:  # the browser writes an opaque rgba(...) as rgb(...)
        return float(re.findall(r"[\d.]+", colour)[-1]) if colour.startswith("rgba") else 1.0

    alphas = [-1.0 if s else alpha(c) for c, s in zip(colours, special, strict=True)]
    return int(np.argmax(alphas))


def test_switching_the_method_changes_the_highlight(server, tmp_path):
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        pg = browser.new_page(viewport={"width": 1200, "height": 860})
        pg.set_default_timeout(TIMEOUT_MS)
        errors = []
        pg.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        pg.on("pageerror", lambda e: errors.append(str(e)))
        pg.goto(f"{server}/ui/")
        pg.locator("#classify-text textarea").fill(TEXT)
        pg.locator("#classify-btn").click()
        pg.locator("#classify-highlight .attr-highlight[data-method='rollout']").wait_for()
        assert pg.locator("#classify-highlight .attr-token").all_inner_texts() == [
            "[CLS]", "a", "gorgeous", ",", "moving", "film", "[SEP]"]
        seen = {"rollout": _highlight(pg)}
        for method in PICKED:
            pg.locator("#classify-method").get_by_label(method, exact=True).check()
            pg.locator(f"#classify-highlight .attr-highlight[data-method='{method}']").wait_for()
            now = _highlight(pg)
            assert all(now != other for other in seen.values()), method
            want = _explain(server, method)  # the endpoint's scores for the same text and method
            scores = np.where(want["special"], 0.0, np.abs(want["methods"][method]["scores"]))
            assert _strongest(now, want["special"]) == int(np.argmax(scores)), method
            seen[method] = now
        assert "positive" in pg.locator("#classify-label").inner_text()
        pg.screenshot(path=str(tmp_path / "serve-explain.png"))
        assert errors == []
        browser.close()
