"""Every Python snippet in the docs runs as written.

Each page's ```` ```python ```` blocks run in order in one fresh namespace (so a page may build on its
earlier blocks), in a temporary working directory. A block followed by a ```` ```text title="Output" ````
block must print exactly that text. Two kinds of block are checked differently, and say so in an
HTML comment on the line above them:

* ``<!-- excerpt: src/...py -->``: lines quoted from the source to read; each must appear in that file;
* ``<!-- run-by: tests/test_x.py -->``: needs a trained run; that test runs it (and must name the page).

A page whose snippets read what the reader made first (a trained run, a ``reviews.csv``, a running
server) gets it from ``NEEDS`` before its blocks run: the paths the page names are links to tiny
runs in the temporary directory, ``reviews.csv`` is a small labelled file, and the server is a real
``attnlab serve`` on a free port (the page's ``http://127.0.0.1:7860`` is replaced by its URL). The
``attnlab`` commands a page's Python builds on are in ``COMMANDS``, taken from the page and run
first. Pages that train run on tiny budgets (``BUDGET``). The page stays what a reader runs; the
plumbing is here.

Pages in ``NOT_YET_RUNNABLE`` cannot run here yet; each is listed with the reason, so a new page
cannot slip in untested.
"""

from __future__ import annotations

import contextlib
import functools
import io
import re
import shlex
from pathlib import Path

import pytest
from conftest import TINY, run_cli, serve_process

REPO = Path(__file__).resolve().parents[1]
DOCS = REPO / "docs"
FENCE = re.compile(r"(?:<!-- (?P<kind>excerpt|run-by): (?P<ref>\S+) -->\n)?(?:<!-- [^\n]* -->\n)*"
                   r"```python[^\n]*\n(?P<code>.*?)^```\n"
                   r"(?:\s*```text title=\"Output\"\n(?P<out>.*?)^```)?", re.S | re.M)

NOT_YET_RUNNABLE: dict[str, str] = {}  # page: why it cannot run in the suite (none today)

SERVER_URL = "http://127.0.0.1:7860"  # where the pages say `attnlab serve` listens
RUN_PATHS = ("runs/my-run", "runs/lora", "runs/quickstart/minilm-l6-lora")  # the pages' names for a LoRA run
NEEDS = {  # page: what its snippets read ("run": RUN_PATHS; "scratch": runs/scratch; "chat": SmolLM2)
    "concepts/is-attention-an-explanation.md": {"run"},
    "get-started/quickstart.md": {"run"},
    "get-started/run-directory.md": {"run"},
    "howto/compare.md": {"reviews", "budget"},
    "howto/explain.md": {"run"},
    "howto/serve.md": {"run", "server"},
    "howto/tune.md": {"reviews", "budget"},
    "serve.md": {"run", "server", "chat"},
    "speed.md": {"run"},
    "study.md": {"scratch"},
}
COMMANDS = {  # page: the `attnlab` commands (as the page shows them) its Python blocks build on
    "howto/compare.md": ["attnlab compare --data reviews.csv --models none --baselines tfidf-lr"],
    "howto/serve.md": ["attnlab merge runs/quickstart/minilm-l6-lora merged/"],
}
BUDGET = dict(max_train_samples=32, max_eval_samples=16, max_steps=2, num_threads=1)  # for pages that train
TRIALS = 2  # a tuning snippet's trials, whatever it asks for
TRAINS = {"run", "scratch", "server", "budget"}  # needs that train a model (the `train` test tier)


def _pages() -> dict[str, list[re.Match]]:
    pages = {}
    for path in sorted(DOCS.rglob("*.md")):
        rel = path.relative_to(DOCS).as_posix()
        blocks = list(FENCE.finditer(path.read_text(encoding="utf-8")))
        if blocks and not rel.startswith("gen/"):
            pages[rel] = blocks
    return pages


PAGES = _pages()
RUNNABLE = sorted(p for p in PAGES if p not in NOT_YET_RUNNABLE)


def _chat_available() -> bool:
    from attnlab.chat import chat_model_available

    return chat_model_available("smollm2")


@pytest.fixture(scope="session")
def tiny_scratch_run(tmp_path_factory, sst2_dir) -> Path:
    """A scratch-encoder run (the registry's random init, built in a tmp cache) on the tiny SST-2 slice."""
    from attnlab.training import TrainConfig
    from attnlab.training.train import train

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("ATTNLAB_CACHE", str(tmp_path_factory.mktemp("cache")))
        cfg = TrainConfig.from_sources(data="sst2", data_dir=str(sst2_dir), model="scratch-encoder", method="full",
                                       output_dir=str(tmp_path_factory.mktemp("scratch") / "run"), **TINY)
        return train(cfg, progress=False).path


@pytest.fixture(scope="session")
def docs_server(tiny_runs, tmp_path_factory) -> str:
    """`attnlab serve` of the tiny LoRA run (with chat where SmolLM2 is installed): its URL."""
    args = ["--run", str(tiny_runs["lora"]), "--num-threads", "1"] + ([] if _chat_available() else ["--no-chat"])
    with serve_process(args, tmp_path_factory.mktemp("docs-serve")) as url:
        yield url


def _prepare(page: str, request, monkeypatch, capsys) -> dict[str, str]:
    """Make in the working directory what ``page`` reads; returns the text replacements for its code."""
    needs = NEEDS.get(page, set())
    if "chat" in needs and not _chat_available():
        pytest.skip("SmolLM2 not installed (bash setup.sh)")
    if "run" in needs:
        for name in RUN_PATHS:
            Path(name).parent.mkdir(parents=True, exist_ok=True)
            Path(name).symlink_to(request.getfixturevalue("tiny_runs")["lora"], target_is_directory=True)
    if "scratch" in needs:
        Path("runs").mkdir(exist_ok=True)
        Path("runs/scratch").symlink_to(request.getfixturevalue("tiny_scratch_run"), target_is_directory=True)
    if "reviews" in needs:
        assert request.getfixturevalue("tiny_csv").resolve() == Path("reviews.csv").resolve()
    if "budget" in needs:
        import torch

        import attnlab.experiments
        from attnlab.training import TrainConfig

        from_sources, tune = TrainConfig.from_sources.__func__, attnlab.experiments.tune
        monkeypatch.setattr(TrainConfig, "from_sources",
                            classmethod(lambda cls, *a, **kw: from_sources(cls, *a, **{**kw, **BUDGET})))
        monkeypatch.setattr(attnlab.experiments, "tune", lambda *a, **kw: tune(*a, **{**kw, "n_trials": TRIALS}))
        request.addfinalizer(functools.partial(torch.set_num_threads, torch.get_num_threads()))
    text = (DOCS / page).read_text(encoding="utf-8")
    for command in COMMANDS.get(page, []):
        assert command in text, f"docs/{page} does not show {command!r}"
        code, out, err = run_cli(shlex.split(command)[1:], capsys)
        assert code == 0, f"{command}: {err or out}"
    if "server" in needs:
        assert SERVER_URL in text, f"docs/{page} does not call {SERVER_URL}"
        return {SERVER_URL: request.getfixturevalue("docs_server")}
    return {}


def _param(page: str):
    return pytest.param(page, marks=[pytest.mark.train] if NEEDS.get(page, set()) & TRAINS else [])


def test_every_page_with_snippets_is_run_or_listed():
    assert set(NOT_YET_RUNNABLE) <= set(PAGES), sorted(set(NOT_YET_RUNNABLE) - set(PAGES))
    assert set(NEEDS) | set(COMMANDS) <= set(RUNNABLE), sorted((set(NEEDS) | set(COMMANDS)) - set(RUNNABLE))
    assert "concepts/tokenization.md" in RUNNABLE and "concepts/multi-head.md" in RUNNABLE


@pytest.mark.parametrize("page", [_param(p) for p in RUNNABLE])
def test_docs_snippets_run(page, tmp_path, monkeypatch, capsys, request):
    import torch

    monkeypatch.chdir(tmp_path)
    replacements = _prepare(page, request, monkeypatch, capsys)
    scope: dict = {"__name__": "__docs__"}
    for block in PAGES[page]:
        line = (DOCS / page).read_text(encoding="utf-8")[:block.start("code")].count("\n") + 1
        where = f"docs/{page}:{line}"
        if block["kind"] == "excerpt":
            source = (REPO / block["ref"]).read_text(encoding="utf-8")
            for code_line in filter(None, (c.strip() for c in block["code"].splitlines())):
                assert code_line in source, f"{where}: {code_line!r} is not in {block['ref']}"
            continue
        if block["kind"] == "run-by":
            assert page in (REPO / block["ref"]).read_text(encoding="utf-8"), f"{where}: {block['ref']} does not run it"
            continue
        code = block["code"]
        for old, new in replacements.items():
            code = code.replace(old, new)
        stdout = io.StringIO()
        with torch.random.fork_rng(), contextlib.redirect_stdout(stdout):
            exec(compile(code, where, "exec"), scope)  # the docs' own code
        if block["out"] is not None:
            assert stdout.getvalue().strip() == block["out"].strip(), f"{where}: the output shown is not what it prints"


def test_decoder_walkthrough_snippets_are_generated():
    """docs/gen/decoder_walkthrough.py runs SmolLM2 (a minute), so it is not rerun here; every snippet
    the page includes must exist and come from it (the notebook checks the same numbers live)."""
    page = (DOCS / "concepts" / "decoder-walkthrough.md").read_text(encoding="utf-8")
    refs = re.findall(r'--8<-- "(gen/decoder_[a-z_]+\.md)"', page)
    assert len(refs) >= 7, refs
    for ref in refs:
        text = (DOCS / ref).read_text(encoding="utf-8")
        assert text.startswith("<!-- generated by docs/gen/decoder_walkthrough.py"), ref
    assert "max abs diff" in (DOCS / "gen" / "decoder_layer.md").read_text(encoding="utf-8")
