"""The bad-input table of docs/reliability.md, generated from the cases in tests/test_bad_input.py, so
the page lists exactly what the tests run (tests/test_bad_input.py checks this file is up to date).

* ``docs/gen/bad_input_summary.md`` how many bad-input cases, per kind of input
* ``docs/gen/bad_input_cases.md``   every case: group, input, what the one-line error must say
* ``docs/gen/reliability_tests.md`` every reliability/safety test, and the resume test's settings and tolerance

    python docs/gen/reliability.py            # write
    python docs/gen/reliability.py --check    # exit 1 if out of date
"""

from __future__ import annotations

import ast
import sys
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _docgen import GEN, REPO, banner, md_table, run_main

SCRIPT = "docs/gen/reliability.py"
SUMMARY_MD = GEN / "bad_input_summary.md"
CASES_MD = GEN / "bad_input_cases.md"
TESTS_MD = GEN / "reliability_tests.md"
TEST_FILES = ("test_reliability_resume.py", "test_bad_input.py", "test_properties.py", "test_safety.py")


def _cases():
    sys.path.insert(0, str(REPO / "tests"))
    import test_bad_input

    return test_bad_input.CASES, test_bad_input.group_of


def render() -> dict[Path, str]:
    cases, group_of = _cases()
    counts = Counter(group_of(c) for c in cases)
    summary = ", ".join(f"{n} {g}" for g, n in counts.items())
    rows = [(group_of(c), f"`{c.id}`", f"`{c.needle}`", "subprocess" if c.subprocess else "in-process")
            for c in cases]
    head = (banner(SCRIPT)
            + f"**{len(cases)} cases** ({summary}), {sum(c.subprocess for c in cases)} of them in a fresh "
            "`python -m attnlab.cli` process, the rest through `attnlab.cli.main` in the test process. Each "
            "must exit with code 2 without a traceback; stderr must hold exactly one line that starts with "
            "`error:`, as its last line, containing the case's expected text (in a fresh process that line "
            "is all of stderr); and every file and folder must be left as it was.\n")
    table = banner(SCRIPT) + md_table(["input", "case", "error line contains", "run"], rows)
    return {SUMMARY_MD: head, CASES_MD: table, TESTS_MD: _tests_md()}


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
    return (banner(SCRIPT) + md_table(["file", "test", "kind"], rows) + "\n"
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
