"""Refresh the web UI screenshots of the documentation (``docs/img/serve-*.png``) from a real run.

Trains the quickstart's recipe (``attnlab.cli.QUICKSTART`` and its learning rates: minilm-l6 on the
packaged movie snippets, full and LoRA) into ``--cache`` (outside the repository; a finished run with
the same settings is reused, so only the first call trains: minutes on one core), serves both runs
and their comparison with ``attnlab serve`` on a free port, and photographs each tab in headless
Chromium (Playwright, Debian's ``/usr/bin/chromium``) at twice the pixel density, so the text stays
sharp when the site shrinks the image to its column:

    python docs/gen/serve_screenshots.py [--cache ~/.cache/attnlab/docs-run]

The chat tab needs SmolLM2 (``bash setup.sh``); without it that screenshot is left as it is.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
DOCS_IMG = REPO / "docs" / "img"
CACHE = Path("~/.cache/attnlab/docs-run")
CHROMIUM = Path("/usr/bin/chromium")
METHODS = "full,lora"  # the quickstart's pair; LoRA is served first (the run the pages use)
TEXT = "a gorgeous, moving film"
ATTENTION_TEXT = "the movie was not good at all"
QUESTION = "In machine learning, what does an attention head in a transformer do? Answer in one sentence."
VIEWPORT = {"width": 1000, "height": 760}
WIDE = {"compare": 1400}  # tabs whose content needs a wider page (the comparison's 14 columns)
TALL = {"attention", "compare"}  # tabs photographed whole (the viewer, the plots below the table)
SCALE = 2  # device pixels per CSS pixel
TIMEOUT_MS = 120_000


def quickstart_runs(cache: Path) -> dict[str, Path]:
    """The quickstart recipe's runs in ``cache`` (trained unless already there): {method: run dir}."""
    from attnlab.cli import QUICKSTART, QUICKSTART_LEARNING_RATES
    from attnlab.experiments import compare
    from attnlab.training.config import TrainConfig

    cfg = TrainConfig.from_sources(None, **QUICKSTART, output_dir=str(cache))
    result = compare(cfg, METHODS, QUICKSTART["model"], cache, progress=False,
                     learning_rates=QUICKSTART_LEARNING_RATES)
    return {row["method"]: Path(row["run_dir"]) for row in result["rows"]}


@contextlib.contextmanager
def serving(args: list[str], log_path: Path, timeout: float = 300) -> Iterator[str]:
    """``attnlab serve ARGS`` on a free port until the block ends: yields its URL once /healthz is ok."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "GRADIO_ANALYTICS_ENABLED": "False"}
    with open(log_path, "w") as log:
        proc = subprocess.Popen([sys.executable, "-m", "attnlab.cli", "serve", *args, "--port", str(port)],
                                stdout=log, stderr=subprocess.STDOUT, env=env)
        url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + timeout
            while True:
                if proc.poll() is not None:
                    raise RuntimeError(f"attnlab serve exited with {proc.returncode}: see {log_path}")
                with contextlib.suppress(OSError), urllib.request.urlopen(f"{url}/healthz", timeout=2) as r:
                    if json.load(r)["status"] == "ok":
                        break
                if time.monotonic() > deadline:
                    raise RuntimeError(f"attnlab serve did not answer within {timeout:.0f} s: see {log_path}")
                time.sleep(0.5)
            yield url
        finally:
            proc.terminate()
            proc.wait(30)


def _classify(pg) -> None:
    pg.locator("#classify-text textarea").fill(TEXT)
    pg.locator("#classify-btn").click()
    pg.locator("#classify-highlight .attr-token").first.wait_for()


def _attention(pg) -> None:
    pg.get_by_role("tab", name="Attention").click()
    pg.locator("#attention-text textarea").fill(ATTENTION_TEXT)
    pg.locator("#attention-btn").click()
    frame = pg.frame_locator("#attention-view iframe")
    frame.locator("svg.attn-head-svg[data-render-count='1']").wait_for()
    frame.locator(".attn-token[data-side=left][data-index='4']").hover()  # "not": its lines alone
    frame.locator("svg.attn-head-svg[data-hover='left:4']").wait_for()


def _compare(pg) -> None:
    pg.get_by_role("tab", name="Compare").click()
    pg.locator("#compare-table table").wait_for()
    pg.locator("#compare-plots img").first.wait_for()


def _chat(pg) -> None:
    pg.get_by_role("tab", name="Chat").click()
    for field, value in (("#chat-temperature", "0"), ("#chat-max-tokens", "64")):
        pg.locator(f"{field} input[type=number]").fill(value)
        pg.locator(f"{field} input[type=number]").press("Enter")
    pg.locator("#chat-input textarea").fill(QUESTION)
    pg.locator("#chat-input textarea").press("Enter")
    pg.locator("#chatbot [data-testid=bot]").last.wait_for()
    pg.wait_for_function("!document.querySelector('#chat-input textarea').disabled", timeout=TIMEOUT_MS)


def screenshots(url: str, out: Path, chat: bool) -> list[Path]:
    """Each tab, driven as a reader would, photographed into ``out/serve-<tab>.png``."""
    from playwright.sync_api import sync_playwright

    steps = {"classify": _classify, "attention": _attention, "compare": _compare} | ({"chat": _chat} if chat else {})
    written = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        for name, step in steps.items():
            viewport = VIEWPORT | {"width": WIDE.get(name, VIEWPORT["width"])}
            pg = browser.new_page(viewport=viewport, device_scale_factor=SCALE)
            pg.set_default_timeout(TIMEOUT_MS)
            pg.goto(f"{url}/ui/")
            pg.locator("#classify-text textarea").wait_for()
            step(pg)
            pg.wait_for_timeout(500)  # let the last redraw settle
            path = out / f"serve-{name}.png"
            pg.screenshot(path=str(path), full_page=name in TALL)
            written.append(path)
            pg.close()
        browser.close()
    return written


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--cache", type=Path, default=CACHE, help=f"where the quickstart runs live (default: {CACHE})")
    p.add_argument("--check", action="store_true", help="do nothing: pixels differ run to run")
    a = p.parse_args(argv)
    if a.check:
        return 0
    from attnlab.chat import chat_model_available

    cache = a.cache.expanduser()
    runs = quickstart_runs(cache)
    chat = chat_model_available("smollm2")
    args = ["--run", str(runs["lora"]), "--run", str(runs["full"]), "--compare-dir", str(cache)]
    with serving(args + ([] if chat else ["--no-chat"]), cache / "serve.log") as url:
        for path in screenshots(url, DOCS_IMG, chat):
            print(f"wrote {path.relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
