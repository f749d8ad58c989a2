#!/usr/bin/env bash
# Set up a fresh clone: the widget's frontend bundle (npm ci, npm run build: daam_widget/static/, which the
# wheel ships), then a virtual environment in .venv with the CPU build of torch (pinned first, so that
# nothing pulls a multi-GB CUDA build), then the package in editable mode with its test extras.
set -euo pipefail
cd "$(dirname "$0")/.."
npm ci --no-audit --no-fund --loglevel=error
npm run build --silent
[ -x .venv/bin/python ] || python3 -m venv .venv
. .venv/bin/activate
python -m pip install -q --disable-pip-version-check "torch==2.13.0"
python -m pip install -q --disable-pip-version-check -e ".[test]"
