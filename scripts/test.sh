#!/usr/bin/env bash
# Set up a fresh clone and run the default test suite: lint, mypy, the frontend's typecheck and unit tests, then
# pytest, whose default run includes the real-browser tests (tests/browser: JupyterLab, save_html and the
# nbconvert export in Debian's chromium). Slow and GPU tiers are opt-in: pytest -m slow, pytest -m gpu.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
if [ -z "${DAAM_CHROMIUM:-}" ] && ! command -v chromium >/dev/null; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
  else
    echo "no chromium and no root for apt-get: the browser tests will be skipped (set DAAM_CHROMIUM)"
  fi
fi
. .venv/bin/activate
ruff check daam_widget tests bench scripts
mypy
npm run typecheck --silent
npm test --silent
python -m pytest "$@"
