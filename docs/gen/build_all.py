"""Regenerate every generated page, snippet and figure of the documentation site.

    python docs/gen/build_all.py            # the quick generators (seconds): CLI/settings reference,
                                            # concept numbers, parameter counts, any other
                                            # docs/gen/*.py, results page
    python docs/gen/build_all.py --all      # also the model-running ones (minutes): prompting
                                            # examples and the decoder walkthrough (smollm2),
                                            # attention figures and the web UI screenshots
                                            # (headless chromium)
    python docs/gen/build_all.py --check    # exit 1 if a quick generator's output is out of date

Then ``mkdocs build --strict`` (or ``mkdocs serve``) builds the site.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
QUICK = ["docs/gen/cli_reference.py", "docs/gen/concepts.py", "docs/gen/param_counts.py",
         "benchmarks/render_results.py"]
SLOW = ["docs/gen/prompting.py", "docs/gen/explain_figures.py", "docs/gen/serve_screenshots.py",
        "docs/gen/decoder_walkthrough.py"]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--all", action="store_true", help="also run the slow, model-running generators")
    p.add_argument("--check", action="store_true", help="only check that the outputs are up to date")
    a = p.parse_args(argv)
    # generators other engineers add to docs/gen/ run with the quick ones (slow ones are listed above)
    known = {*QUICK, *SLOW, "docs/gen/build_all.py", "docs/gen/_docgen.py"}
    extra = sorted(p.relative_to(REPO).as_posix() for p in (REPO / "docs" / "gen").glob("*.py"))
    quick = QUICK[:-1] + [s for s in extra if s not in known] + QUICK[-1:]
    scripts = quick + (SLOW if a.all else [])
    failed = []
    for script in scripts:
        cmd = [sys.executable, str(REPO / script), *(["--check"] if a.check else [])]
        print(f"$ python {script}{' --check' if a.check else ''}", flush=True)
        if subprocess.run(cmd, cwd=REPO, check=False).returncode != 0:
            failed.append(script)
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
