"""Which map is right: DAAM, its variants and ConceptAttention scored against the toy world's exact masks.

For each held-out scene, generated (the pipeline's call, noise from the scene's seed) and noised real
(``image_trace``, as ``attribute_image`` runs), every method's Eq. 7 masks of the caption's nouns and colour
words are scored against their objects (the colour segment found in a generated image; the renderer's
mask in a real one), as ``toy.evaluate`` scores DAAM. The methods:

- ``daam``: Eq. 6 with the softmax over text keys (``softmax_over="text"``);
- ``daam_all``: Eq. 6 with the model's own softmax over image and text keys (joint attention only);
- ``renormalized``: ``daam`` with each pixel shared among the content words (``HeatMaps.renormalized``);
- ``best_layer`` and ``best_layers``: ``daam`` summed over the single layer, and over the 2 or 3 layers,
  whose noun mIoU at τ = 0.4 was best on other held-out scenes (``selection``), never on the scored ones;
- ``concepts``: ConceptAttention (joint families), the caption's colour and shape words as concepts.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from .._backbones import backbone_for
from .._heat_maps import HeatMaps
from .._image_attribution import image_trace
from .._trace import Trace, trace
from ._evaluation import mean_or_none
from ._scoring import (
    WordScore,
    drawn_regions,
    find_objects,
    noun_phrases,
    perfect_map_miou,
    score_objects,
    score_words,
)
from ._world import EVALUATION_SEEDS, Scene, scene

METHODS: dict[str, str] = {
    "daam": "DAAM, text",
    "daam_all": "DAAM, all keys",
    "renormalized": "DAAM renormalised",
    "best_layer": "best layer",
    "best_layers": "best 2-3 layers",
    "concepts": "ConceptAttention",
}
"""Each method's name in the report and its column in the table (the module docstring says what each is)."""
JOINT_ONLY = ("daam_all", "concepts")
KINDS = ("generated", "real")
PARTS = ("noun", "color")
TAU = 0.4
SELECTION_OFFSET = 10_000
"""Layers are chosen on held-out scenes ``EVALUATION_SEEDS + SELECTION_OFFSET + i``, never scored."""
Layers = tuple[str, ...]


@dataclass(frozen=True)
class SceneMaps:
    """One scene's maps by method (and by layer subset), with the true mask of each object by colour."""

    scene: Scene
    maps: dict[str, HeatMaps]
    layer_maps: dict[Layers, HeatMaps]
    truths: dict[str, np.ndarray]


def is_joint(pipe: Any) -> bool:
    """Whether the pipeline's attention is joint (image and text keys in one softmax), where ``daam_all``
    differs from ``daam`` and ConceptAttention applies."""
    return backbone_for(pipe).concept_blocks_pattern is not None


def concepts_of(caption: str) -> list[str]:
    """The caption's colour and shape words, object by object (so the toy's scorer finds their objects)."""
    return [w for p in noun_phrases(caption.replace(",", " ").split()) for w in (p.color, p.shape)]


def _read_maps(
    tc: Trace, plain: Trace | None, caption: str, subsets: Sequence[Layers], concepts: bool
) -> tuple[dict[str, HeatMaps], dict[Layers, HeatMaps]]:
    daam = tc.heat_maps(0, prompt=caption)
    maps = {"daam": daam, "renormalized": daam.renormalized()}
    if plain is not None:
        maps["daam_all"] = plain.heat_maps(0, prompt=caption)
    if concepts:
        maps["concepts"] = tc.concept_maps(0)
    layer_maps = {s: tc.heat_maps(0, prompt=caption, layers=list(s)) for s in subsets}
    return maps, layer_maps


def generated_maps(pipe: Any, seed: int, call: dict[str, Any], subsets: Sequence[Layers]) -> SceneMaps:
    """The scene's caption generated under the tracer (twice on joint models: ``daam_all`` needs the
    model's own softmax), every method's maps, and each requested object's segment as found."""
    s = scene(seed)
    joint = is_joint(pipe)
    concepts = concepts_of(s.caption) if joint else None
    traces: list[Trace] = []
    images = []
    for softmax_over in ("text", "all") if joint else ("text",):
        chosen = concepts if softmax_over == "text" else None
        with trace(pipe, softmax_over=softmax_over, concepts=chosen) as tc:
            out = pipe(s.caption, generator=torch.Generator().manual_seed(seed), **call)
        traces.append(tc)
        images.append(np.asarray(out.images[0].convert("RGB")))
    if any(not np.array_equal(images[0], other) for other in images[1:]):
        raise RuntimeError(
            f"scene {seed}: the two traced generations differ; the pipeline is not deterministic"
        )
    image = images[0]
    maps, layer_maps = _read_maps(traces[0], traces[1] if joint else None, s.caption, subsets, joint)
    found = find_objects(image)
    truths = drawn_regions(found, score_objects(found, maps["daam"].words))
    return SceneMaps(s, maps, layer_maps, truths)


def real_maps(pipe: Any, seed: int, timesteps: Sequence[int], subsets: Sequence[Layers]) -> SceneMaps:
    """The rendered scene noised to ``timesteps`` and denoised once each with its caption (as
    ``attribute_image``), every method's maps, and the renderer's exact masks."""
    s = scene(seed)
    joint = is_joint(pipe)
    concepts = concepts_of(s.caption) if joint else None
    tc, _ = image_trace(pipe, s.image, s.caption, timesteps=timesteps, seed=seed, concepts=concepts)
    plain = None
    if joint:
        plain, _ = image_trace(pipe, s.image, s.caption, timesteps=timesteps, seed=seed, softmax_over="all")
    maps, layer_maps = _read_maps(tc, plain, s.caption, subsets, joint)
    truths = s.masks_by_color()
    return SceneMaps(s, maps, layer_maps, truths)


def layer_subsets(names: Sequence[str], largest: int = 3) -> list[Layers]:
    """Every set of 1 to ``largest`` layers, in the tracer's order."""
    return [c for r in range(1, largest + 1) for c in itertools.combinations(names, r)]


def words_by_part(
    maps: HeatMaps, truths: dict[str, np.ndarray], taus: Sequence[float]
) -> dict[str, list[WordScore]]:
    """Each scored noun's and colour word's scores (IoU at every τ, and its true mask), by part of speech."""
    scores: dict[str, list[WordScore]] = {p: [] for p in PARTS}
    for w in score_words(maps, truths, taus):
        if w.part in scores:
            scores[w.part].append(w)
    return scores


def choose_layers(
    scenes: Sequence[SceneMaps], taus: Sequence[float]
) -> tuple[Layers, Layers, dict[str, float]]:
    """The best single layer and the best set of 2 or 3 layers by noun mIoU at τ = 0.4 on ``scenes``, and
    every subset's score there (for the record)."""
    score: dict[Layers, float] = {}
    for subset in scenes[0].layer_maps:
        ious = [
            w.ious[TAU] for s in scenes for w in words_by_part(s.layer_maps[subset], s.truths, taus)["noun"]
        ]
        score[subset] = float(np.mean(ious)) if ious else 0.0
    single = max((s for s in score if len(s) == 1), key=score.__getitem__)
    few = max((s for s in score if len(s) > 1), key=score.__getitem__)
    return single, few, {" + ".join(k): v for k, v in score.items()}


def _seeds(first: int, count: int) -> list[int]:
    return [EVALUATION_SEEDS + first + i for i in range(count)]


def compare(
    pipe: Any,
    images: int,
    selection: int,
    *,
    call: dict[str, Any],
    timesteps: Sequence[int],
    taus: Sequence[float],
    progress: bool = True,
) -> dict[str, Any]:
    """Every method on ``images`` held-out scenes (from the first), generated and noised real, with the
    layers chosen on ``selection`` other held-out scenes; returns the report ``_report`` tabulates."""
    if images < 1 or selection < 1:
        raise ValueError(f"images and selection must be 1 or more, not {images} and {selection}")
    if TAU not in taus:
        raise ValueError(f"taus must include {TAU}; got {list(taus)}")
    pipe.set_progress_bar_config(disable=True)
    joint = is_joint(pipe)
    with trace(pipe) as probe:
        names = probe.layer_names
    subsets = layer_subsets(names)

    bar = tqdm(total=len(KINDS) * (images + selection), desc="compare", disable=not progress)

    def maps_of(kind: str, seed: int, chosen: Sequence[Layers]) -> SceneMaps:
        if kind == "generated":
            result = generated_maps(pipe, seed, call, chosen)
        else:
            result = real_maps(pipe, seed, timesteps, chosen)
        bar.update()
        return result

    report: dict[str, Any] = {
        "images": images,
        "selection": selection,
        "first_seed": EVALUATION_SEEDS,
        "selection_first_seed": EVALUATION_SEEDS + SELECTION_OFFSET,
        "call": call,
        "timesteps": list(timesteps),
        "taus": list(taus),
        "layers": names,
        "methods": {m: label for m, label in METHODS.items() if joint or m not in JOINT_ONLY},
        "kinds": {},
    }
    for kind in KINDS:
        picked = [maps_of(kind, seed, subsets) for seed in _seeds(SELECTION_OFFSET, selection)]
        single, few, subset_scores = choose_layers(picked, taus)
        scored: dict[str, dict[str, list[WordScore]]] = {m: {p: [] for p in PARTS} for m in report["methods"]}
        grids: list[tuple[int, int]] = []
        for seed in _seeds(0, images):
            s = maps_of(kind, seed, [single, few])
            s.maps["best_layer"], s.maps["best_layers"] = s.layer_maps[single], s.layer_maps[few]
            grids = [tuple(g) for g in s.maps["daam"].settings["resolutions"]]
            for method in scored:
                for part, words in words_by_part(s.maps[method], s.truths, taus).items():
                    scored[method][part] += words
        truths = {p: [w.truth for w in words] for p, words in scored["daam"].items()}
        report["kinds"][kind] = {
            "best_layer": list(single),
            "best_layers": list(few),
            "selection_scores": subset_scores,
            "words": {p: len(truths[p]) for p in PARTS},
            "miou": {
                m: {
                    p: {str(t): mean_or_none(w.ious[t] for w in words) for t in taus}
                    for p, words in parts.items()
                }
                for m, parts in scored.items()
            },
            "perfect_maps": {
                f"{g[0]}x{g[1]}": {p: perfect_map_miou(t, g, TAU) if t else None for p, t in truths.items()}
                for g in grids
            },
        }
    bar.close()
    return report
