#!/usr/bin/env bash
# Set up a fresh clone, run the main job on the embedded default pipeline (artifacts/demo/: maps file,
# overlay PNG, the widget as one HTML file), then open JupyterLab on notebooks/quickstart.ipynb.
#   scripts/demo.sh --headless   no JupyterLab: also execute the quickstart and write its static HTML export
#                                (artifacts/demo/quickstart.html: the widget still hovers, no kernel)
set -euo pipefail
cd "$(dirname "$0")/.."
headless=0
args=()
for arg in "$@"; do
  if [ "$arg" = "--headless" ]; then headless=1; else args+=("$arg"); fi
done
bash scripts/setup.sh
. .venv/bin/activate
python scripts/demo.py ${args[@]+"${args[@]}"}
if [ "$headless" = 1 ]; then
  mkdir -p artifacts/demo
  cp notebooks/quickstart.ipynb artifacts/demo/quickstart.ipynb
  jupyter nbconvert --to html --execute --ExecutePreprocessor.timeout=600 artifacts/demo/quickstart.ipynb
  echo "wrote artifacts/demo/quickstart.html (open it in a browser: the widget works without a kernel)"
else
  root=()
  [ "$(id -u)" = 0 ] && root=(--allow-root)  # jupyter refuses root without it
  exec jupyter lab ${root[@]+"${root[@]}"} notebooks/quickstart.ipynb
fi
