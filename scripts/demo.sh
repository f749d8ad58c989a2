#!/usr/bin/env bash
# Set up a fresh clone and run the main job on the embedded default pipeline.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/python scripts/demo.py "$@"
