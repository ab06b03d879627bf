"""The tables of docs/reliability.md: the bad-input cases from ``docs/gen/bad_input_cases.toml``, the
list that tests/test_bad_input.py runs (so the page lists exactly what the tests run; that test checks
these files are up to date), the reliability tests, and the load test's result.

* ``docs/gen/bad_input_summary.md`` how many bad-input cases, per kind of input
* ``docs/gen/bad_input_cases.md``   every case: group, input, what the one-line error must say
* ``docs/gen/reliability_tests.md`` every reliability/safety test, and the resume test's settings and tolerance
* ``docs/gen/serve_load.md``        the load test's numbers, read from benchmarks/results/serve_load.json

    python docs/gen/reliability.py            # write
    python docs/gen/reliability.py --check    # exit 1 if out of date
"""

from __future__ import annotations

import ast
import sys
import tomllib
from collections import Counter
from pathlib import Path

from _docgen import GEN, REPO, banner, run_main

from attnlab.evaluation.tables import markdown_table, read_result

SCRIPT = "docs/gen/reliability.py"
SUMMARY_MD = GEN / "bad_input_summary.md"
CASES_MD = GEN / "bad_input_cases.md"
TESTS_MD = GEN / "reliability_tests.md"
SERVE_MD = GEN / "serve_load.md"
SERVE_JSON = REPO / "benchmarks" / "results" / "serve_load.json"
CASES_TOML = GEN / "bad_input_cases.toml"
TEST_FILES = ("test_reliability_resume.py", "test_bad_input.py", "test_properties.py", "test_safety.py",
              "test_disk_full.py", "test_resume_corrupt.py")


def render() -> dict[Path, str]:
    cases = tomllib.loads(CASES_TOML.read_text(encoding="utf-8"))
    cli = [(group["input"], c) for group in cases["cli"] for c in group["cases"]]
    rest = cases["rest"]
    counts = Counter(kind for kind, _ in cli)
    in_fresh_process = sum(bool(c.get("subprocess")) for _, c in cli)
    rows = [(kind, f"`{c['id']}`", f"`{c['error']}`", "subprocess" if c.get("subprocess") else "in-process")
            for kind, c in cli]
    rows += [(rest["input"], f"`{c['id']}`", f"`{c['error']}`", f"HTTP {c['status']}, `{c['path']}`")
             for c in rest["cases"]]
    head = (banner(SCRIPT)
            + f"**{len(cli)} cases** ({', '.join(f'{n} {kind}' for kind, n in counts.items())}), {in_fresh_process} "
            "of them in a fresh `python -m attnlab.cli` process, the rest through `attnlab.cli.main` in the test "
            "process. Each must exit with code 2 without a traceback; stderr must hold exactly one line that starts "
            "with `error:`, as its last line, containing the case's expected text (in a fresh process that line is "
            "all of stderr); and every file and folder must be left as it was.\n"
            f"\n**{len(rest['cases'])} more cases** send a bad body to `attnlab serve`'s REST API (wrong types, "
            "empty lists, oversize bodies and texts, invalid UTF-8 and JSON, texts with nothing visible or that are "
            "not valid Unicode, deep nesting, out-of-range layers and heads, unknown fields and runs, paths instead "
            "of names). Each must get a 4xx status whose JSON body is exactly `{\"error\": \"<one line>\"}` "
            "containing the case's expected text, leave the served run's files as they were, and leave the server "
            "answering the next good request.\n")
    table = banner(SCRIPT) + markdown_table(["input", "case", "error contains", "run"], rows)
    return {SUMMARY_MD: head, CASES_MD: table, TESTS_MD: _tests_md(), SERVE_MD: _serve_load_md()}


def _serve_load_md() -> str:
    """The load test's result (benchmarks/serve_load.py), or a note that it has not been run."""
    r = read_result(SERVE_JSON)
    if r is None:
        return (banner(SCRIPT) + '!!! warning "Not yet run"\n    The REST server\'s load test is '
                "`benchmarks/serve_load.py`; it writes `benchmarks/results/serve_load.json`, from which this "
                "section is generated. It has not been run yet, so there are no numbers here.\n")
    s, hw = r.get("settings", {}), r.get("hardware", {})

    def ms(*keys: str) -> str:
        return " / ".join("n/a" if r.get(k) is None else f"{r[k]:,.0f}" for k in keys) + " ms"

    def mib(*keys: str) -> str:
        return " / ".join("n/a" if r.get(k) is None else f"{r[k]:,.0f}" for k in keys) + " MiB"

    failures = ", ".join(f"{n} {why}" for why, n in (r.get("failures") or {}).items())
    flat = "flat" if r.get("memory_flat") else "**not flat**"
    warmup = s.get("warmup_requests", 0)
    rows = [("requests", f"{r['requests']:,} from {r['clients']} concurrent clients (after {warmup} warm-up "
                         "requests, not counted)"),
            ("failed requests", f"**{r['failed_requests']}**" + (f" ({failures})" if failures else "")),
            ("throughput", f"{r['requests_per_second']:,.1f} requests/s ({r['duration_s']:,.1f} s in all)"),
            ("latency p50 / p90 / p99 / max", ms("p50_ms", "p90_ms", "p99_ms", "max_ms")),
            ("time inside the server p50 / p99", ms("server_p50_ms", "server_p99_ms")),
            ("server memory (RSS): idle / load start / load end / max", mib("rss_mib_idle", "rss_mib_start",
                                                                          "rss_mib_end", "rss_mib_max")),
            ("memory growth, second half of the load vs first", f"{r['rss_growth_mib']:+.1f} MiB: {flat} "
                                                                f"({r.get('memory_rule', '')})")]
    by_requests = r.get("rss_mib_by_requests") or {}
    if by_requests:
        counts = [int(k) for k in by_requests]
        step = f"{counts[0]:,}, {counts[1]:,}, ..., {counts[-1]:,}" if len(counts) > 2 else ", ".join(map(str, counts))
        rows.append((f"server memory after {step} requests", " → ".join(f"{v:,.0f}" for v in by_requests.values())
                     + " MiB"))
    for why, text in (r.get("failure_examples") or {}).items():
        rows.append((f"first failure: {why}", f"`{text}`" if text else "-"))
    machine = ", ".join(str(x) for x in (hw.get("gpu"), hw.get("cpu"), hw.get("cpu_cores") and
                                         f"{hw['cpu_cores']} cores", hw.get("memory_gib") and
                                         f"{hw['memory_gib']} GiB RAM") if x) or "not recorded"
    if s.get("load_average_1m") is not None:
        machine += f" (load average {s['load_average_1m']:g} during the test)"
    threads = s.get("server_threads")
    served = f"`{s.get('method', '?')}` run of `{s.get('model', '?')}`" + (
        f" ({threads} torch thread{'' if threads == 1 else 's'})" if threads else "")
    note = f'\n!!! note "Note recorded with the result"\n    {r["note"]}\n' if r.get("note") else ""
    return (banner(SCRIPT)
            + f"`benchmarks/serve_load.py` starts `attnlab serve` (REST API only) on 127.0.0.1 with a {served}, "
            f"and sends `{s.get('endpoint', 'POST /v1/classify')}` requests with one SST-2 validation sentence each "
            f"({s.get('sentence_chars_min', '?')} to {s.get('sentence_chars_max', '?')} characters, median "
            f"{s.get('sentence_chars_median', '?')}). A request fails on a status other than 200, a timeout "
            f"({s.get('timeout_s', '?'):g} s), a connection error or a malformed answer; the script exits 1 if one "
            "does or if the server's memory grows.\n\n"
            + markdown_table(["measured", "value"], rows)
            + f"\n- **Machine:** {machine}\n- **Date:** {r.get('date', 'not recorded')}\n"
            f"- **Command:** `{r.get('command', 'not recorded')}`\n"
            f"- **Data:** `benchmarks/results/serve_load.json` (also on the [results page](results.md#serve-load))\n"
            + note)


def _tests_md() -> str:
    """The test functions of the reliability files (read with ``ast``, nothing imported) and the
    resume test's constants."""
    rows, consts = [], {}
    for name in TEST_FILES:
        tree = ast.parse((REPO / "tests" / name).read_text(encoding="utf-8"))
        for node in tree.body:
            if isinstance(node, ast.FunctionDef) and node.name.startswith("test_"):
                params = any(_dotted(d).endswith("parametrize") for d in node.decorator_list)
                hypo = any(_dotted(d) == "given" for d in node.decorator_list)
                kind = "parametrized" if params else f"hypothesis, {_max_examples(tree)} examples" if hypo else ""
                rows.append((f"`tests/{name}`", node.name.removeprefix("test_").replace("_", " "), kind))
            if name == TEST_FILES[0] and isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name):
                consts[node.targets[0].id] = ast.literal_eval(node.value)
    settings = " ".join(consts["SETTINGS"])
    return (banner(SCRIPT) + markdown_table(["file", "test", "kind"], rows) + "\n"
            + f"The resume tests train a 2-layer random BERT on SST-2 with `{settings}`, and compare the "
            f"resumed run with an uninterrupted one: equal accuracies and confusion matrices; validation and "
            f"test loss, every logged training loss and every saved weight within **{consts['TOL']:g}**.\n")


def _max_examples(tree: ast.Module) -> int:
    """``max_examples`` of the module's ``settings(...)`` call."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and _dotted(node) == "settings":
            return next(ast.literal_eval(k.value) for k in node.keywords if k.arg == "max_examples")
    raise ValueError("no settings(max_examples=...) in the property tests")


def _dotted(node: ast.AST) -> str:
    node = node.func if isinstance(node, ast.Call) else node
    if isinstance(node, ast.Attribute):
        return f"{_dotted(node.value)}.{node.attr}"
    return node.id if isinstance(node, ast.Name) else ""


def main(argv: list[str] | None = None) -> int:
    return run_main(SCRIPT, render, argv=argv, description=__doc__.splitlines()[0])


if __name__ == "__main__":
    sys.exit(main())
