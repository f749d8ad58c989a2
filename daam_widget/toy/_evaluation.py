"""The toy model's evaluation on held-out scenes: generation scored automatically, DAAM on the generated
images, and DAAM on the rendered (real) images (see ``toy.evaluate`` for the command and what is measured).
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from .._image_attribution import attribute_image
from .._metrics import mean_iou
from .._trace import trace
from ..analysis import TAUS
from ._scoring import (
    PARTS,
    ObjectScore,
    WordScore,
    drawn_regions,
    find_objects,
    perfect_map_miou,
    relation_obeyed,
    score_objects,
    score_words,
    unrequested,
)
from ._world import EVALUATION_SEEDS, scene

TAU = 0.4
TIMESTEPS = (100, 250, 400)


@dataclass(frozen=True)
class ImageResult:
    """The scores of one evaluation image: its requested objects and relation (generated images only), words.

    ``relation`` is ``None`` when the caption states no relation or the image is not generated. ``grids``:
    the token grids of the attention its maps sum, as the trace found them.
    """

    seed: int
    caption: str
    objects: list[ObjectScore]
    unrequested: list[str]
    relation: bool | None
    words: list[WordScore]
    grids: tuple[tuple[int, int], ...] = ()

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
                generator=[torch.Generator().manual_seed(seed) for seed in chunk],
                **call_of(pipe, steps, guidance),
            )
        for k, (s, seed) in enumerate(zip(scenes, chunk, strict=True)):
            maps = tc.heat_maps(k, prompt=s.caption)
            image = np.asarray(out.images[k].convert("RGB"))
            found = find_objects(image)
            objects = score_objects(found, maps.words)
            truths = drawn_regions(found, objects)
            yield ImageResult(
                seed,
                s.caption,
                objects,
                unrequested(found, maps.words),
                relation_obeyed(found, maps.words),
                score_words(maps, truths, taus),
                tuple((g[-2], g[-1]) for g in tc.resolutions),
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
        truths = s.masks_by_color()
        grids = tuple(tuple(g) for g in maps.settings["resolutions"])
        yield ImageResult(seed, s.caption, [], [], None, score_words(maps, truths, taus), grids)


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
        "objects_right": mean_or_none(o.right for o in objects),
        "colors_present": mean_or_none(o.present for o in objects),
        "shape_right_when_present": mean_or_none(o.found_shape == o.shape for o in present),
        "images_without_unrequested": mean_or_none(not r.unrequested for r in results),
        "size_words_obeyed": mean_or_none(sized),
        "sized_objects": len(sized),
        "relations_obeyed": mean_or_none(related),
        "related_images": len(related),
    }


def daam_summary(
    results: Sequence[ImageResult],
    taus: Sequence[float],
    tau: float = TAU,
    grids: Sequence[tuple[int, int]] | None = None,
) -> dict[str, Any]:
    """Mean IoU per part of speech and τ, beside the whole-image and centred-disk masks at every word.

    The disk has the mean area of the objects scored (the nouns' true masks) and is centred in the image.
    ``perfect_maps`` gives, for each of ``grids`` (default: the results' own), the mean IoU at ``tau`` of the
    best map a layer of that resolution could make (``perfect_map_mask``): the ceiling that DAAM's score is
    to be read against.
    ``parts`` is empty when no noun could be scored (none of the requested colours was drawn).
    """
    if grids is None:
        grids = results[0].grids if results else ()
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
                grid_name(grid): perfect_map_miou((w.truth for w in group), grid, tau) for grid in grids
            },
        }
    return {"tau": tau, "disk_area": area, "parts": parts}


def evaluate(
    pipe: Any,
    images: int,
    *,
    settings: Sequence[tuple[int, float]] | None = None,
    taus: Sequence[float] = TAUS,
    timesteps: Sequence[int] = TIMESTEPS,
    batch: int = 8,
    real: bool = True,
    progress: bool = True,
    layers: Sequence[str] | None = None,
    first: int = 0,
) -> dict[str, Any]:
    """All three measurements on ``images`` held-out scenes from the ``first``; the first of ``settings``
    (steps, guidance) is the headline, by default the pipeline's default call (``default_call``).

    ``layers`` (cross-attention layer name prefixes, as ``trace`` takes them) sums the maps over those
    layers only: which layers localise, the question behind the reference's dropping of some.
    """
    if TAU not in taus:
        raise ValueError(f"taus must include {TAU}, the paper's threshold; got {list(taus)}")
    if first < 0:
        raise ValueError(f"first is a held-out scene's index, 0 or more; got {first}")
    seeds = [EVALUATION_SEEDS + first + i for i in range(images)]
    settings = [default_call(pipe)] if settings is None else settings
    pipe.set_progress_bar_config(disable=True)
    total = images * (len(settings) + int(real))
    bar = tqdm(total=total, desc="evaluate", disable=not progress)
    report: dict[str, Any] = {
        "images": images,
        "first_seed": EVALUATION_SEEDS + first,
        "taus": list(taus),
        "layers": "all" if layers is None else list(layers),
    }
    report["generated"], per_image = [], {}
    for steps, guidance in settings:
        started, results = time.time(), []
        for result in generated_results(pipe, seeds, steps, guidance, taus, batch, layers):
            results.append(result)
            bar.update()
        report.setdefault("attention_grids", [grid_name(g) for g in results[0].grids] if results else [])
        report["generated"].append(
            {
                "steps": steps,
                "guidance": guidance,
                "seconds": round(time.time() - started, 1),
                "generation": generation_summary(results),
                "daam": daam_summary(results, taus),
            }
        )
        per_image[f"generated_{steps}_steps_guidance_{guidance}"] = [r.to_json() for r in results]
    if real:
        started, results = time.time(), []
        for result in real_results(pipe, seeds, timesteps, taus, layers):
            results.append(result)
            bar.update()
        report.setdefault("attention_grids", [grid_name(g) for g in results[0].grids] if results else [])
        report["real"] = {
            "timesteps": list(timesteps),
            "seconds": round(time.time() - started, 1),
            "daam": daam_summary(results, taus),
        }
        per_image["real"] = [r.to_json() for r in results]
    bar.close()
    report["per_image"] = per_image
    return report


def default_call(pipe: Any) -> tuple[int, float]:
    """The steps and guidance scale of a toy pipeline's ``pipe(prompt)``."""
    return pipe.default_steps, pipe.default_guidance


def call_of(pipe: Any, steps: int, guidance: float) -> dict[str, Any]:
    """A toy pipeline's call keywords for ``steps`` and ``guidance`` (each toy names its own guidance)."""
    return {"num_inference_steps": steps, pipe.guidance_keyword: guidance}


def grid_name(grid: tuple[int, int]) -> str:
    return f"{grid[0]}x{grid[1]}"


def mean_or_none(values: Any) -> float | None:
    """The mean of ``values`` (numbers or flags), or None when there are none."""
    values = list(values)
    return float(np.mean(values)) if values else None
