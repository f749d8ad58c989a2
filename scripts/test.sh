#!/usr/bin/env bash
# Set up a fresh clone and run the default test suite (slow and GPU tiers are opt-in: pytest -m slow).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
. .venv/bin/activate
ruff check daam_widget tests bench scripts
python -m pytest "$@"
