"""The documentation site: it builds with ``mkdocs build --strict``, its generated pages are up to date
with the code and the benchmark JSON, every CLI command and flag is documented, and the run-directory
page names every field a real run writes."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from scripts import load_script

REPO = Path(__file__).resolve().parents[1]
DOCS = REPO / "docs"
GEN = DOCS / "gen"
ANSI = re.compile(r"\x1b\[[0-9;]*m")
MAX_PNG_BYTES = 300_000


def _run(*args: str, timeout: int = 600) -> subprocess.CompletedProcess:
    env = dict(os.environ, NO_MKDOCS_2_WARNING="1", PYTHONHASHSEED="0")
    return subprocess.run([sys.executable, *args], cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=timeout, check=False)


def _nav_pages(node) -> list[str]:
    if isinstance(node, str):
        return [node]
    if isinstance(node, list):
        return [p for item in node for p in _nav_pages(item)]
    if isinstance(node, dict):
        return [p for v in node.values() for p in _nav_pages(v)]
    return []


def _all_docs_text() -> str:
    return "\n".join(p.read_text(encoding="utf-8") for p in sorted(DOCS.rglob("*.md")))


# -- the site builds ------------------------------------------------------------------------------

def test_mkdocs_build_strict(tmp_path):
    site = tmp_path / "site"
    proc = _run("-m", "mkdocs", "build", "--strict", "--config-file", str(REPO / "mkdocs.yml"), "--site-dir",
                str(site))
    out = ANSI.sub("", proc.stdout + proc.stderr)
    assert proc.returncode == 0, out[-4000:]
    warnings = [line for line in out.splitlines() if line.lstrip().startswith("WARNING")]
    assert not warnings, "\n".join(warnings)
    for page in ("index.html", "results/index.html", "reference/cli/index.html",
                 "concepts/self-attention/index.html", "reference/api/training/index.html",
                 "concepts/tokenization/index.html", "notebooks/decoder-walkthrough/index.html"):
        assert (site / page).is_file(), page
    html = (site / "concepts" / "self-attention" / "index.html").read_text(encoding="utf-8")
    assert "--8&lt;--" not in html and "--8<--" not in html  # every snippet was included
    api = (site / "reference" / "api" / "training" / "index.html").read_text(encoding="utf-8")
    assert "TrainConfig" in api and "from_sources" in api  # mkdocstrings rendered the docstrings


def test_every_page_is_in_the_nav_and_no_page_is_a_stub():
    config = yaml.safe_load((REPO / "mkdocs.yml").read_text(encoding="utf-8"))
    nav = set(_nav_pages(config["nav"]))
    pages = {p.relative_to(DOCS).as_posix() for p in DOCS.rglob("*.md") if not p.relative_to(DOCS).parts[0] == "gen"}
    pages |= {p.relative_to(DOCS).as_posix() for p in DOCS.glob("notebooks/*.ipynb")}  # rendered by mkdocs-jupyter
    assert pages - nav == set(), f"pages missing from the nav in mkdocs.yml: {sorted(pages - nav)}"
    assert nav - pages == set(), f"nav entries without a page: {sorted(nav - pages)}"
    for page in (p for p in nav if p.endswith(".md")):
        text = (DOCS / page).read_text(encoding="utf-8")
        words = len(re.findall(r"[A-Za-z]{2,}", re.sub(r"<!--.*?-->", "", text, flags=re.S)))
        minimum = 30 if page.startswith("reference/api/") else 100
        assert words >= minimum or "--8<--" in text, f"{page} looks like a stub ({words} words)"


# -- generated pages are up to date ---------------------------------------------------------------

@pytest.mark.parametrize("script", ["cli_reference.py", "concepts.py"])
def test_generated_docs_are_up_to_date(script):
    """The cheap generators, in process: regenerate and compare with the files on disk."""
    import torch

    gen = load_script(GEN / script, f"docs_gen_{script[:-3]}")
    with torch.random.fork_rng():  # the generators seed torch; leave the other tests' RNG alone
        outputs = gen.render()
    stale = [str(path.relative_to(REPO)) for path, text in outputs.items()
             if not path.is_file() or path.read_text(encoding="utf-8") != text]
    assert not stale, f"out of date: {stale}; run: python docs/gen/{script}"


def test_parameter_counts_are_up_to_date():
    """Loads the model once per method (a subprocess keeps transformers' logging settings out of here)."""
    proc = _run("docs/gen/param_counts.py", "--check")
    assert proc.returncode == 0, f"{proc.stderr[-3000:]}\nrun: python docs/gen/param_counts.py"


def test_results_page_is_up_to_date():
    proc = _run("benchmarks/render_results.py", "--check")
    assert proc.returncode == 0, proc.stderr[-3000:]


def test_model_generated_snippets_and_figures_exist():
    """prompting.py and explain_figures.py run real models (minutes), so they are not rerun here;
    their outputs must be present, generated, and small."""
    for name, script in (("prompting.md", "prompting.py"), ("explain_figures.md", "explain_figures.py")):
        text = (GEN / name).read_text(encoding="utf-8")
        assert text.startswith(f"<!-- generated by docs/gen/{script}"), name
    prompting = (GEN / "prompting.md").read_text(encoding="utf-8")
    assert "smollm2" in prompting and "**model**" in prompting and "P(positive)" in prompting
    explain = load_script(GEN / "explain_figures.py", "docs_gen_explain_figures")
    for png in explain.PNGS:
        assert png.is_file(), f"{png} missing: run python docs/gen/explain_figures.py"
    for png in DOCS.rglob("*.png"):
        assert png.stat().st_size < MAX_PNG_BYTES, f"{png} is {png.stat().st_size:,} bytes"


def test_every_snippet_a_page_includes_exists():
    for page in DOCS.rglob("*.md"):
        for ref in re.findall(r'--8<-- "([^"]+)"', page.read_text(encoding="utf-8")):
            assert (DOCS / ref).is_file(), f"{page.relative_to(REPO)} includes missing {ref}"


# -- the CLI is fully documented ------------------------------------------------------------------

def test_every_cli_command_and_option_is_documented():
    from attnlab.cli import build_parser

    ref = load_script(GEN / "cli_reference.py", "docs_gen_cli_reference")
    parser = build_parser()
    text = _all_docs_text()
    cli_md = (DOCS / "reference" / "cli.md").read_text(encoding="utf-8")
    commands = list(ref.walk_commands(parser))
    assert commands, "no commands found"
    missing = []
    for full, sub, _ in commands:
        if f"## {full} " not in cli_md:
            missing.append(f"command `{full}` has no section in docs/reference/cli.md")
        section = cli_md.split(f"## {full} ", 1)[-1].split("\n## ", 1)[0]
        for action in ref.option_actions(sub):
            names = action.option_strings or [action.metavar or action.dest]
            for name in names:
                if f"`{name}`" not in section:
                    missing.append(f"`{full} {name}` is not in its section of docs/reference/cli.md")
                if f"`{name}`" not in text:
                    missing.append(f"`{name}` appears nowhere in docs/")
    for action in parser._actions:
        for name in action.option_strings:
            if f"`{name}`" not in cli_md:
                missing.append(f"global option `{name}` is not in docs/reference/cli.md")
    assert not missing, "\n".join(missing) + "\nrun: python docs/gen/cli_reference.py"


def test_every_train_setting_is_documented():
    from attnlab.training import TrainConfig

    text = (DOCS / "reference" / "configuration.md").read_text(encoding="utf-8")
    for name in TrainConfig.field_names():
        assert f"`{name}`" in text, f"setting {name} is missing: run python docs/gen/cli_reference.py"


# -- recipes --------------------------------------------------------------------------------------

def test_recipes_load_and_are_documented():
    from attnlab.training import TrainConfig

    recipes = sorted((REPO / "src" / "attnlab" / "recipes").glob("*.yaml"))  # packaged: found by name
    assert len(recipes) >= 3
    text = (DOCS / "reference" / "configuration.md").read_text(encoding="utf-8")
    for path in recipes:
        cfg = TrainConfig.from_sources(path)
        assert cfg.method and path.read_text(encoding="utf-8").startswith("#"), path
        assert f"--config {path.stem} " in text, f"{path.name} is not listed: run python docs/gen/cli_reference.py"


# -- render_results.py ----------------------------------------------------------------------------

def _sst2_payload(test_accuracy: float) -> dict:
    return {"benchmark": "sst2", "date": "2026-01-01 00:00 UTC", "command": "sst2.py --epochs 1",
            "hardware": {"cpu": "Test CPU", "cpu_cores": 2, "memory_gib": 8.0},
            "versions": {"torch": "0.0", "transformers": "0.0"},
            "settings": {"epochs": 1.0, "batch_size": 32},
            "runs": [{"model": "minilm-l6", "method": m, "seed": 0, "dev_accuracy": 0.8, "test_accuracy": test_accuracy,
                      "trainable_params": n, "epoch_seconds": s}
                     for m, n, s in (("full", 22_713_986, 10.0), ("lora", 676_610, 7.5))]}


def test_render_results_handles_missing_unknown_and_broken_files(tmp_path):
    render = load_script(REPO / "benchmarks" / "render_results.py", "bench_render_results")
    results, out, img = tmp_path / "results", tmp_path / "docs" / "results.md", tmp_path / "docs" / "img"
    results.mkdir()
    (results / "sst2.json").write_text(json.dumps(_sst2_payload(0.85)))
    (results / "mystery_bench.json").write_text(json.dumps({
        "benchmark": "mystery_bench", "date": "2026-01-02", "command": "mystery.py",
        "rows": [{"name": "a", "accuracy": 0.5, "nested": {"x": 1}}, {"name": "b", "accuracy": 0.75}]}))
    (results / "broken.json").write_text("{not json")
    args = ["--results-dir", str(results), "--out", str(out), "--img-dir", str(img)]
    assert render.main(args) == 0
    text = out.read_text(encoding="utf-8")
    assert "Not yet measured: run `python benchmarks/qlora.py`" in text
    assert "| minilm-l6 | lora | 0 | 0.8000 | 0.8500 |" in text
    assert "Test CPU (2 cores)" in text and "`sst2.py --epochs 1`" in text
    assert "## Mystery bench" in text and "nested.x" in text
    assert "`broken.json` could not be rendered" in text
    assert (img / "sst2-runs.png").is_file() and (img / "mystery_bench-rows.png").is_file()
    assert "](img/sst2-runs.png)" in text
    assert render.main([*args, "--check"]) == 0
    (results / "sst2.json").write_text(json.dumps(_sst2_payload(0.9)))
    assert render.main([*args, "--check"]) == 1
    (results / "sst2.json").unlink()
    (results / "mystery_bench.json").unlink()
    (results / "broken.json").unlink()
    assert render.main(args) == 0
    assert out.read_text(encoding="utf-8").count("Not yet measured") == len(render.BENCHMARKS)


def test_render_results_shows_one_statistic_and_plots_what_a_benchmark_measures(tmp_path, monkeypatch):
    """Ablation variants average mean_step_seconds over repeats but carry repeat 0's other numbers: the page
    shows only the averaged statistic (each repeat next to it); infer_speed plots throughput, not accuracy;
    bars start at 0; one off-scale bar does not flatten the rest; a unique name labels a row on its own."""
    render = load_script(REPO / "benchmarks" / "render_results.py", "bench_render_results")
    raw = [{"name": n, "method": "full", "shows": s, "repeat": rep, "steps": 30, "warmup_steps": 5,
            "mean_step_seconds": m, "median_step_seconds": 0.1, "tokens_per_second": 999.0, "precision": "fp32"}
           for rep in (0, 1) for n, s, m in (("full: default", "reference", 0.3 + rep * 0.2),
                                              ("full: bf16", "bf16", 15.0 + rep))]
    variants = [{k: v for k, v in r.items() if k != "repeat"} | {"mean_step_seconds": mean, "default_speedup": x}
                for r, mean, x in ((raw[0], 0.4, 1.0), (raw[1], 15.5, 38.75))]
    results, out, img = tmp_path / "results", tmp_path / "results.md", tmp_path / "img"
    results.mkdir()
    (results / "train_ablation.json").write_text(json.dumps({
        "benchmark": "train_ablation", "date": "d", "command": "c", "variants": variants, "raw": raw[::-1]}))
    (results / "infer_speed.json").write_text(json.dumps({"benchmark": "infer_speed", "date": "d", "command": "c",
        "configurations": [{"name": f"cfg {i}", "sentences_per_second": s, "accuracy": 0.8}
                           for i, s in enumerate((40.0, 300.0))]}))
    assert render.main(["--results-dir", str(results), "--out", str(out), "--img-dir", str(img)]) == 0
    text = out.read_text(encoding="utf-8")
    section = text[text.index("**variants**\n"):text.index("**raw**\n")]
    assert "median" not in section and "tok/s" not in section
    assert "| full: default | full | reference | 30 | 5 | 2 | 0.4 | 0.3 | 0.5 | 1.00× |" in section
    raw_table = text[text.index("**raw**\n"):]
    assert raw_table.index("| full: default | full | 0 |") < raw_table.index("| full: default | full | 1 |") \
        < raw_table.index("| full: bf16 | full | 0 |")
    assert (img / "train_ablation-raw.png").is_file() and (img / "infer_speed-configurations.png").is_file()
    infer = json.loads((results / "infer_speed.json").read_text())["configurations"]
    assert render.plot_panels(infer, render.BENCHMARKS[[b.name for b in render.BENCHMARKS].index(
        "infer_speed")].plot) == [("sentences_per_second", ["sentences_per_second"])]
    assert render._on_scale_top([0.3, 0.4, 0.5, 0.45, 15.0]) == 0.5
    assert render._on_scale_top([3.8, 30.0, 66.0, 336.0, 407.0]) == 407.0
    assert render.row_labels(infer) == ["cfg 0", "cfg 1"]
    assert render.row_labels([{"model": "m", "method": "lora"}]) == ["m / lora"]

    from matplotlib.figure import Figure

    starts, original = [], Figure.savefig

    def record(fig, *args, **kwargs):
        starts.extend(ax.get_xlim()[0] for ax in fig.axes)
        return original(fig, *args, **kwargs)

    monkeypatch.setattr(Figure, "savefig", record)
    render.plot_rows(infer, tmp_path / "p.png", "t")  # accuracy (0.8) and throughput
    render.plot_rows(raw, tmp_path / "r.png", "t", ("mean_step_seconds",))
    assert starts == [0.0, 0.0, 0.0]  # every bar panel's value axis starts at 0


# -- the run-directory page matches what a run writes ---------------------------------------------

def test_run_directory_page_names_every_metrics_field(tiny_runs):
    page = (DOCS / "get-started" / "run-directory.md").read_text(encoding="utf-8")
    run = Path(tiny_runs["lora"])
    metrics = json.loads((run / "metrics.json").read_text(encoding="utf-8"))
    keys = set(metrics)
    for section in ("training", "params", "memory"):
        if isinstance(metrics.get(section), dict):
            keys |= set(metrics[section])
    keys |= set(metrics["validation"])
    missing = sorted(k for k in keys if f"`{k}`" not in page)
    assert not missing, f"docs/get-started/run-directory.md does not describe: {missing}"
    for f in run.iterdir():
        name = f.name + ("/" if f.is_dir() else "")
        assert name in page or f.name.startswith("."), f"{name} (in a run directory) is not described"
