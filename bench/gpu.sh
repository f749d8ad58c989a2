#!/usr/bin/env bash
# Every GPU case of the benchmark in one device run, written to one JSON.
#
# Here, once: bash ../shared/device/wheels.sh (fills .whl/) and npm run build (the widget bundle the package
# imports). Then on the GPU machine, with carry [".whl", "daam_widget/static"]:
#   bash bench/gpu.sh                      # writes $OUT/gpu.json (artifacts/gpu.json without $OUT)
#   CASES=sd21-512-cuda bash bench/gpu.sh  # some cases only (bench/overhead.py --help lists them)
# The models are built on the GPU with random weights; nothing is downloaded.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -d .whl ]; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target .site .whl/*.whl
  export PYTHONPATH=$PWD/.site:$PWD
fi
export PYTHONUNBUFFERED=1
out="${OUT:-artifacts}"
mkdir -p "$out"
default=$(python3 -c 'import sys; sys.path.insert(0, "bench"); from overhead import CASES
print(",".join(n for n in CASES if n.split("-")[0] in ("sd21", "sdxl", "flux") and "-cuda" in n and not n.endswith("-all")))')
python3 bench/overhead.py --no-reference --cases "${CASES:-$default}" ${REPS:+--reps "$REPS"} --json "$out/gpu.json" \
  2>&1 | tee "$out/gpu.log"
