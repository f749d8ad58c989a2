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
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from .._image_attribution import attribute_image
from .._metrics import mean_iou
from .._trace import trace
from ..analysis import TAUS
from . import _model
from ._scoring import (
    PARTS,
    ObjectScore,
    WordScore,
    find_objects,
    perfect_map_mask,
    relation_obeyed,
    score_objects,
    score_words,
    unrequested,
)
from ._world import EVALUATION_SEEDS, scene

DEFAULT_STEPS = 50
DEFAULT_GUIDANCE = 7.5
"""What ``pipe(prompt)`` uses (diffusers' defaults for StableDiffusionPipeline)."""
TAU = 0.4
TIMESTEPS = (100, 250, 400)


@dataclass(frozen=True)
class ImageResult:
    """The scores of one evaluation image: its requested objects and relation (generated images only), words.

    ``relation`` is ``None`` when the caption states no relation or the image is not generated.
    """

    seed: int
    caption: str
    objects: list[ObjectScore]
    unrequested: list[str]
    relation: bool | None
    words: list[WordScore]

    def to_json(self) -> dict[str, Any]:
        return {
            "seed": self.seed,
            "caption": self.caption,
            "objects": [{**asdict(o), "right": o.right, "size_right": o.size_right} for o in self.objects],
            "unrequested": self.unrequested,
            "relation_obeyed": self.relation,
            "words": [
                {
                    "word": w.word,
                    "part": w.part,
                    "color": w.color,
                    "iou": {str(t): v for t, v in w.ious.items()},
                }
                for w in self.words
            ],
        }


def generated_results(
    pipe: Any,
    seeds: Sequence[int],
    steps: int,
    guidance: float,
    taus: Sequence[float],
    batch: int,
    layers: Sequence[str] | None = None,
) -> Iterator[ImageResult]:
    """Generate the caption of each seed's scene (noise from the same seed) under the tracer, and score it."""
    for start in range(0, len(seeds), batch):
        chunk = seeds[start : start + batch]
        scenes = [scene(seed) for seed in chunk]
        with trace(pipe, layers=layers) as tc:
            out = pipe(
                [s.caption for s in scenes],
                num_inference_steps=steps,
                guidance_scale=guidance,
                generator=[torch.Generator().manual_seed(seed) for seed in chunk],
            )
        for k, (s, seed) in enumerate(zip(scenes, chunk, strict=True)):
            maps = tc.heat_maps(k, prompt=s.caption)
            image = np.asarray(out.images[k].convert("RGB"))
            found = find_objects(image)
            objects = score_objects(found, maps.words)
            truths = {o.color: found[o.color].region for o in objects if o.present}
            yield ImageResult(
                seed,
                s.caption,
                objects,
                unrequested(found, maps.words),
                relation_obeyed(found, maps.words),
                score_words(maps, truths, taus),
            )


def real_results(
    pipe: Any,
    seeds: Sequence[int],
    timesteps: Sequence[int],
    taus: Sequence[float],
    layers: Sequence[str] | None = None,
) -> Iterator[ImageResult]:
    """DAAM of each seed's rendered scene and caption (``attribute_image``) against the renderer's masks."""
    for seed in seeds:
        s = scene(seed)
        maps = attribute_image(pipe, s.image, s.caption, timesteps=timesteps, seed=seed, layers=layers)
        truths = {o.color: m for o, m in zip(s.objects, s.masks, strict=True)}
        yield ImageResult(seed, s.caption, [], [], None, score_words(maps, truths, taus))


def generation_summary(results: Sequence[ImageResult]) -> dict[str, Any]:
    """Shares of objects right (and why not), of images without unrequested objects, of size words and
    relations obeyed."""
    objects = [o for r in results for o in r.objects]
    sized = [o.size_right for o in objects if o.size_right is not None]
    related = [r.relation for r in results if r.relation is not None]
    present = [o for o in objects if o.present]
    return {
        "images": len(results),
        "objects": len(objects),
        "objects_right": _share(o.right for o in objects),
        "colors_present": _share(o.present for o in objects),
        "shape_right_when_present": _share(o.found_shape == o.shape for o in present),
        "images_without_unrequested": _share(not r.unrequested for r in results),
        "size_words_obeyed": _share(sized),
        "sized_objects": len(sized),
        "relations_obeyed": _share(related),
        "related_images": len(related),
    }


def attention_grids(unet: Any) -> list[tuple[int, int]]:
    """The (h, w) of every resolution at which ``unet`` (a UNet2DConditionModel) has cross-attention.

    Finest first: block ``i`` of the down path (and its mirror in the up path) works at the latent halved
    ``i`` times, rounding up.
    """
    config = unet.config
    h, w = (config.sample_size,) * 2 if isinstance(config.sample_size, int) else config.sample_size
    depth = len(config.down_block_types)
    levels = {i for i, kind in enumerate(config.down_block_types) if "CrossAttn" in kind}
    levels |= {depth - 1 - i for i, kind in enumerate(config.up_block_types) if "CrossAttn" in kind}
    if "CrossAttn" in (config.mid_block_type or ""):
        levels.add(depth - 1)
    return [(-(-h // 2**i), -(-w // 2**i)) for i in sorted(levels)]


def daam_summary(
    results: Sequence[ImageResult],
    taus: Sequence[float],
    tau: float = TAU,
    grids: Sequence[tuple[int, int]] = (),
) -> dict[str, Any]:
    """Mean IoU per part of speech and τ, beside the whole-image and centred-disk masks at every word.

    The disk has the mean area of the objects scored (the nouns' true masks) and is centred in the image.
    ``perfect_maps`` gives, for each of ``grids``, the mean IoU at ``tau`` of the best map a layer of that
    resolution could make (``perfect_map_mask``): the ceiling that DAAM's score is to be read against.
    ``parts`` is empty when no noun could be scored (none of the requested colours was drawn).
    """
    scores = [w for r in results for w in r.words]
    nouns = [w for w in scores if w.part == "noun"]
    if not nouns:  # the model drew none of the requested colours: nothing has a ground truth
        return {"tau": tau, "disk_area": None, "parts": {}}
    shape = nouns[0].truth.shape
    area = float(np.mean([w.truth.sum() for w in nouns]))
    ys, xs = np.mgrid[0 : shape[0], 0 : shape[1]] + 0.5
    disk = (xs - shape[1] / 2) ** 2 + (ys - shape[0] / 2) ** 2 <= area / np.pi
    whole = np.ones(shape, dtype=bool)
    parts: dict[str, Any] = {}
    for part in PARTS:
        group = [w for w in scores if w.part == part]
        if not group:
            continue
        parts[part] = {
            "words": len(group),
            "miou": {str(t): float(np.mean([w.ious[t] for w in group])) for t in taus},
            "whole_image": mean_iou((whole, w.truth) for w in group),
            "centred_disk": mean_iou((disk, w.truth) for w in group),
            "perfect_maps": {
                _grid_name(grid): mean_iou((perfect_map_mask(w.truth, grid, tau), w.truth) for w in group)
                for grid in grids
            },
        }
    return {"tau": tau, "disk_area": area, "parts": parts}


def evaluate(
    pipe: Any,
    images: int,
    settings: Sequence[tuple[int, float]] = ((DEFAULT_STEPS, DEFAULT_GUIDANCE),),
    taus: Sequence[float] = TAUS,
    timesteps: Sequence[int] = TIMESTEPS,
    batch: int = 8,
    real: bool = True,
    progress: bool = True,
    layers: Sequence[str] | None = None,
    first: int = 0,
) -> dict[str, Any]:
    """All three measurements on ``images`` held-out scenes from the ``first``; the first of ``settings`` is
    the headline.

    ``layers`` (cross-attention layer name prefixes, as ``trace`` takes them) sums the maps over those
    layers only: which layers localise, the question behind the reference's dropping of some.
    """
    if TAU not in taus:
        raise ValueError(f"taus must include {TAU}, the paper's threshold; got {list(taus)}")
    if first < 0:
        raise ValueError(f"first is a held-out scene's index, 0 or more; got {first}")
    seeds = [EVALUATION_SEEDS + first + i for i in range(images)]
    grids = attention_grids(pipe.unet)
    pipe.set_progress_bar_config(disable=True)
    total = images * (len(settings) + int(real))
    bar = tqdm(total=total, desc="evaluate", disable=not progress)
    report: dict[str, Any] = {
        "images": images,
        "first_seed": EVALUATION_SEEDS + first,
        "taus": list(taus),
        "layers": "all" if layers is None else list(layers),
        "attention_grids": [_grid_name(grid) for grid in grids],
    }
    report["generated"], per_image = [], {}
    for steps, guidance in settings:
        started, results = time.time(), []
        for result in generated_results(pipe, seeds, steps, guidance, taus, batch, layers):
            results.append(result)
            bar.update()
        report["generated"].append(
            {
                "steps": steps,
                "guidance": guidance,
                "seconds": round(time.time() - started, 1),
                "generation": generation_summary(results),
                "daam": daam_summary(results, taus, grids=grids),
            }
        )
        per_image[f"generated_{steps}_steps_guidance_{guidance}"] = [r.to_json() for r in results]
    if real:
        started, results = time.time(), []
        for result in real_results(pipe, seeds, timesteps, taus, layers):
            results.append(result)
            bar.update()
        report["real"] = {
            "timesteps": list(timesteps),
            "seconds": round(time.time() - started, 1),
            "daam": daam_summary(results, taus, grids=grids),
        }
        per_image["real"] = [r.to_json() for r in results]
    bar.close()
    report["per_image"] = per_image
    return report


def markdown(report: dict[str, Any]) -> str:
    """The report's tables: generation accuracy per setting, mIoU vs baselines at τ = 0.4, and per τ."""
    tau = str(TAU)
    lines = [
        f"Held-out scenes: seeds {report['first_seed']}..{report['first_seed'] + report['images'] - 1} "
        f"({report['images']} images)."
        + (
            ""
            if report["layers"] == "all"
            else f" Maps summed over layers {', '.join(report['layers'])} only."
        ),
        "",
        "| steps | guidance | objects right | colour present | shape right (colour present) "
        "| images without unrequested objects | size words obeyed | relations obeyed |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for run in report["generated"]:
        g = run["generation"]
        lines.append(
            f"| {run['steps']} | {run['guidance']} | {_pct(g['objects_right'])} ({g['objects']}) "
            f"| {_pct(g['colors_present'])} | {_pct(g['shape_right_when_present'])} "
            f"| {_pct(g['images_without_unrequested'])} "
            f"| {_pct(g['size_words_obeyed'])} ({g['sized_objects']}) "
            f"| {_pct(g['relations_obeyed'])} ({g['related_images']}) |"
        )
    grids = report["attention_grids"]
    rows = [
        (f"generated, {run['steps']} steps, guidance {run['guidance']}", run["daam"])
        for run in report["generated"]
    ]
    if "real" in report:
        rows.append((f"noised real, t = {report['real']['timesteps']}", report["real"]["daam"]))
    lines += [
        "",
        f"DAAM mean IoU at τ = {tau} against each word's object, beside masks that need no attention and "
        "the best a map at each attention resolution could score (the true mask seen cell by cell):",
        "",
        _table_row(
            ["images", "words", "count", "DAAM", "whole image", "centred disk"]
            + [f"perfect {grid} map" for grid in grids]
        ),
        _table_row(["---"] * (6 + len(grids))),
    ]
    for name, daam in rows:
        for part, p in daam["parts"].items():
            scores = [p["miou"][tau], p["whole_image"], p["centred_disk"]]
            scores += [p["perfect_maps"][grid] for grid in grids]
            lines.append(_table_row([name, part, str(p["words"])] + [f"{x:.3f}" for x in scores]))
    taus = report["taus"]
    lines += [
        "",
        "DAAM mean IoU across τ:",
        "",
        "| images | words | " + " | ".join(f"τ = {t}" for t in taus) + " |",
        "| --- | --- | " + " | ".join("---" for _ in taus) + " |",
    ]
    for name, daam in rows:
        for part, p in daam["parts"].items():
            lines.append(
                f"| {name} | {part} | " + " | ".join(f"{p['miou'][str(t)]:.3f}" for t in taus) + " |"
            )
    return "\n".join(lines) + "\n"


def _table_row(cells: Sequence[str]) -> str:
    return "| " + " | ".join(cells) + " |"


def _grid_name(grid: tuple[int, int]) -> str:
    return f"{grid[0]}x{grid[1]}"


def _share(flags: Any) -> float | None:
    flags = list(flags)
    return float(np.mean(flags)) if flags else None


def _pct(share: float | None) -> str:
    return "n/a" if share is None else f"{100 * share:.1f}%"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--pipeline", type=Path, help="a saved pipeline folder (default: the shipped weights)"
    )
    parser.add_argument("--images", type=int, default=200, help="held-out scenes to evaluate")
    parser.add_argument(
        "--first",
        type=int,
        default=0,
        help="the first held-out scene's index (default 0; 200 skips the usual set)",
    )
    parser.add_argument("--steps", type=int, nargs="+", default=[DEFAULT_STEPS], help="DDIM steps (each)")
    parser.add_argument(
        "--guidance", type=float, nargs="+", default=[DEFAULT_GUIDANCE], help="guidance scales (each)"
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
    pipe = _model.load_pipeline(path=args.pipeline)
    settings = list(itertools.product(args.steps, args.guidance))
    report = evaluate(
        pipe,
        args.images,
        settings,
        TAUS,
        args.timesteps,
        args.batch,
        not args.no_real,
        layers=args.layers,
        first=args.first,
    )
    folder = args.pipeline if args.pipeline is not None else _model.WEIGHTS
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
