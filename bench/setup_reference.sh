#!/usr/bin/env bash
# Build bench/.reference-venv: the reference implementation, castorini's `daam` 0.2.0 from PyPI, with its own
# pins (diffusers 0.21.2, transformers 4.30.2, accelerate 0.23.0) next to the CPU build of torch 2.13.
#
# torch is installed first and pinned, so that nothing pulls a multi-GB CUDA build. daam 0.2.0 does not
# import without two packages it does not declare: matplotlib, and a huggingface_hub old enough to still
# export `cached_download` (diffusers 0.21.2 imports it), hence `huggingface_hub<0.26`.
# daam also installs spaCy, and downloads a spaCy model with `os.system` the first time one of its parsing
# helpers (`parsed_heat_maps`, `dependency_relations`) runs. bench/reference.py never calls them: it finds a
# word's tokens with `compute_word_heat_map(word)`, which only tokenizes. Nothing in daam is stubbed or patched.
# pip resolves numpy 2.x and gradio 5 under these pins; daam's tracing path works with them.
set -euo pipefail
cd "$(dirname "$0")"
venv=.reference-venv
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
pip=("$venv/bin/python" -m pip install -q --disable-pip-version-check)
"${pip[@]}" "torch==2.13.0"
"${pip[@]}" "daam==0.2.0" "matplotlib" "huggingface_hub<0.26" "torch==2.13.0"
"$venv/bin/python" -c "import daam, diffusers, transformers, torch; print('reference venv: daam', daam.__version__ if hasattr(daam, '__version__') else '0.2.0', 'diffusers', diffusers.__version__, 'transformers', transformers.__version__, 'torch', torch.__version__)"
