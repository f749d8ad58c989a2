"""Evaluate the toy model on held-out scenes: ``python -m daam_widget.toy.evaluate``.

For the scenes of seeds ``EVALUATION_SEEDS + i`` (never seen in training; ``--first`` skips some, so that a
result can be checked on scenes that did not decide it), three measurements:

(a) generation: each caption is generated (the pipeline's default call unless ``--steps``/``--guidance``
    say otherwise) and scored automatically (``_scoring``): the share of requested objects drawn right,
    and of images with no unrequested object;
(b) DAAM on the generated images: each noun's, colour's and size word's Eq. 7 mask against its object's
    colour segment in the generated image, mean IoU across τ, beside two masks that need no attention (the
    whole image; a centred disk of the mean object area) and the ceiling of each attention resolution (the
    true mask seen cell by cell at that resolution, ``perfect_map_mask``);
(c) the same on the rendered (real) images against the renderer's exact masks, the maps coming from
    ``attribute_image`` (the image noised to a few timesteps and denoised once each with its caption).

Writes ``evaluation.json`` (summaries and per-image scores) and ``evaluation.md`` (tables) to ``--out``.
"""

from __future__ import annotations

import argparse
import itertools
import json
from pathlib import Path

import torch

from ..analysis import TAUS
from . import _model
from ._evaluation import TIMESTEPS, default_call, evaluate
from ._report import markdown


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", choices=_model.MODELS, default="sd", help="which toy (default: sd)")
    parser.add_argument(
        "--pipeline", type=Path, help="a saved pipeline folder of that model (default: the shipped weights)"
    )
    parser.add_argument("--images", type=int, default=200, help="held-out scenes to evaluate")
    parser.add_argument(
        "--first",
        type=int,
        default=0,
        help="the first held-out scene's index (default 0; 200 skips the usual set)",
    )
    parser.add_argument("--steps", type=int, nargs="+", help="denoising steps (each; default: the model's)")
    parser.add_argument(
        "--guidance", type=float, nargs="+", help="guidance scales (each; default: the model's)"
    )
    parser.add_argument("--timesteps", type=int, nargs="+", default=list(TIMESTEPS), help="for (c)")
    parser.add_argument("--batch", type=int, default=8, help="images per pipeline call")
    parser.add_argument("--no-real", action="store_true", help="skip (c), DAAM on noised real images")
    parser.add_argument(
        "--layers", nargs="+", help="sum only these cross-attention layers (name prefixes); default all"
    )
    parser.add_argument("--out", type=Path, default=Path("artifacts/toy-eval"))
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    args = parser.parse_args(argv)

    torch.set_num_threads(args.threads)
    pipe = _model.load_pipeline(args.model, path=args.pipeline)
    steps, guidance = default_call(pipe)
    settings = list(itertools.product(args.steps or [steps], args.guidance or [guidance]))
    report = evaluate(
        pipe,
        args.images,
        settings=settings,
        taus=TAUS,
        timesteps=args.timesteps,
        batch=args.batch,
        real=not args.no_real,
        layers=args.layers,
        first=args.first,
    )
    folder = Path(pipe.config._name_or_path)
    training = folder / "training.json"
    report["pipeline"] = str(folder)
    report["training"] = json.loads(training.read_text()) if training.exists() else None
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "evaluation.json").write_text(json.dumps(report, indent=1) + "\n")
    table = markdown(report)
    (args.out / "evaluation.md").write_text(table)
    print(table)


if __name__ == "__main__":
    main()
