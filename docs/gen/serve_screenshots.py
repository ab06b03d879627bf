"""Refresh the web UI screenshots of the documentation (``docs/img/serve-*.png``).

Runs the browser tests of ``attnlab serve`` (``tests/test_serve_browser.py``: a real server,
headless Chromium, tiny trained runs) with ``ATTNLAB_DOCS_IMG`` pointing at ``docs/img``; the tests
copy each screenshot they took there. Without that variable the tests write only to their tmp
folders, so ``pytest`` never changes the repository. Needs Debian's chromium and the packaged
models; takes a minute or two:

    python docs/gen/serve_screenshots.py
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
DOCS_IMG = REPO / "docs" / "img"


def main(argv: list[str] | None = None) -> int:
    if "--check" in (argv or []):  # pixels differ run to run: there is nothing to compare
        return 0
    env = dict(os.environ, ATTNLAB_DOCS_IMG=str(DOCS_IMG))
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/test_serve_browser.py"]
    return subprocess.run(cmd, cwd=REPO, env=env, check=False).returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
