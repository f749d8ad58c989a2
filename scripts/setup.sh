#!/usr/bin/env bash
# Set up a fresh clone: a virtual environment in .venv with the CPU build of torch (pinned first, so that
# nothing pulls a multi-GB CUDA build), then the package in editable mode with its test extras.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x .venv/bin/python ] || python3 -m venv .venv
. .venv/bin/activate
python -m pip install -q --disable-pip-version-check "torch==2.13.0"
python -m pip install -q --disable-pip-version-check -e ".[test]"
