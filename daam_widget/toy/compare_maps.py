"""Which map is right on the toys: ``python -m daam_widget.toy.compare_maps``.

On held-out scenes, generated and noised real, the noun and colour mIoU at τ = 0.4 of DAAM (softmax over
text, and over all keys), DAAM renormalised over content words, the best single layer and the best 2-3
layers (chosen on other held-out scenes), and ConceptAttention, for each toy model where the method
applies (``_map_methods`` says how each is computed). Writes ``maps.json`` and ``maps.md`` to ``--out``.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from .._files import write_text_atomically
from ..analysis import TAUS
from . import _model
from ._evaluation import TIMESTEPS, call_of, default_call
from ._map_methods import compare
from ._report import methods_markdown


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", choices=_model.MODELS, default=list(_model.MODELS))
    parser.add_argument("--images", type=int, default=200, help="held-out scenes scored")
    parser.add_argument("--selection", type=int, default=100, help="other held-out scenes choosing layers")
    parser.add_argument("--timesteps", type=int, nargs="+", default=list(TIMESTEPS), help="noised real")
    parser.add_argument("--out", type=Path, default=Path("artifacts/toy-maps"))
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    args = parser.parse_args(argv)

    torch.set_num_threads(args.threads)
    reports = {}
    for model in args.models:
        started = time.time()
        pipe = _model.load_pipeline(model)
        reports[model] = compare(
            pipe,
            args.images,
            args.selection,
            call=call_of(pipe, *default_call(pipe)),
            timesteps=args.timesteps,
            taus=TAUS,
        )
        reports[model]["seconds"] = round(time.time() - started, 1)
    args.out.mkdir(parents=True, exist_ok=True)
    write_text_atomically(args.out / "maps.json", json.dumps(reports, indent=1) + "\n")
    table = methods_markdown(reports)
    write_text_atomically(args.out / "maps.md", table)
    print(table)


if __name__ == "__main__":
    main()
