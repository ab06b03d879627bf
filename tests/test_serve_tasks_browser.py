"""The web UI's Classify tab in a real browser (headless Chromium via Playwright) for the tasks that do
not predict one class: a regression run shows its value named by the target, a multi-label run the
labels over their thresholds and a table of every label's probability and threshold. The runs are
tiny random-BERT head runs on the files of test_tasks_regression_multilabel (2 steps): the page is
checked against the same run's Python predictions, not for accuracy."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from conftest import serve_process, write
from test_tasks_regression_multilabel import GENRES, TINY, _ml_rows, _reg_rows

CHROMIUM = Path("/usr/bin/chromium")
TIMEOUT_MS = 60_000
TEXT = "film with action and drama scenes"

sync_api = pytest.importorskip("playwright.sync_api")
pytest.importorskip("gradio")
if not CHROMIUM.exists():
    pytest.skip(f"{CHROMIUM} not installed (apt-get install -y chromium)", allow_module_level=True)


@pytest.fixture(scope="module")
def task_runs(tmp_path_factory, tiny_bert) -> dict[str, Path]:
    import torch

    from attnlab.training import TrainConfig
    from attnlab.training.train import train

    root, threads = tmp_path_factory.mktemp("task-ui"), torch.get_num_threads()
    pd.DataFrame(_reg_rows(), columns=["review", "stars"]).to_csv(root / "reviews.csv", index=False)
    write(root / "films.jsonl", "".join(json.dumps({"body": t, "genres": g}) + "\n" for t, g in _ml_rows()))
    runs = {}
    for task, data in (("regression", "reviews.csv"), ("multi-label", "films.jsonl")):
        cfg = TrainConfig.from_sources(None, data=str(root / data), model=str(tiny_bert), task=task, method="head",
                                       output_dir=str(root / "runs" / task), **TINY)
        runs[task] = train(cfg, progress=False).path
    torch.set_num_threads(threads)
    return runs


@pytest.fixture(scope="module")
def page(task_runs, tmp_path_factory):
    root = tmp_path_factory.mktemp("task-serve")
    args = ["--run", str(task_runs["regression"]), "--run", str(task_runs["multi-label"]), "--num-threads", "1",
            "--no-chat"]
    with serve_process(args, root) as url, sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        pg = browser.new_page(viewport={"width": 1200, "height": 860})
        pg.set_default_timeout(TIMEOUT_MS)
        pg.errors = []
        pg.on("pageerror", lambda e: pg.errors.append(str(e)))
        pg.goto(f"{url}/ui/")
        pg.locator("#classify-text textarea").wait_for()
        yield pg
        assert pg.errors == [], pg.errors
        browser.close()


def test_a_regression_and_a_multilabel_run_in_the_classify_tab(page, task_runs):
    import attnlab

    pg = page
    pg.locator("#classify-text textarea").fill(TEXT)
    pg.locator("#classify-btn").click()  # the first served run: regression
    score = attnlab.load(str(task_runs["regression"])).predict_scores([TEXT])[0]
    pg.locator("#classify-label", has_text=f"stars: {score:.4g}").wait_for()
    assert "stars" in pg.locator("#classify-detail").inner_text()
    pg.locator("#classify-highlight", has_text="this is a regression run").wait_for()

    pg.locator("#classify-run input").click()
    pg.get_by_role("option", name="multi-label").click()
    pg.locator("#classify-btn").click()
    want = attnlab.load(str(task_runs["multi-label"])).predict([TEXT])[0]
    pg.locator("#classify-detail table").wait_for()
    rows = pg.locator("#classify-detail tbody tr").all_inner_texts()
    cells = {r.split("\t")[0].strip(): [c.strip() for c in r.split("\t")[1:]] for r in rows}
    assert set(cells) == set(GENRES)
    for g in GENRES:
        assert cells[g] == [f"{want['probabilities'][g]:.1%}", f"{want['thresholds'][g]:.1%}",
                            "yes" if g in want["labels"] else "no"]
    shown = ", ".join(want["labels"]) or "no label passes its threshold"
    pg.locator("#classify-label", has_text=shown).wait_for()
