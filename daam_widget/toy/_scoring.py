"""Automatic scoring of images of the toy world: what objects an image shows, and where DAAM puts each word.

No model is needed. Each pixel takes the palette colour whose blend with the background passes nearest to
it (``color_labels``); objects are the connected regions of coloured pixels, each of the colour most of its
pixels have, and a colour's largest region is its object candidate, whose shape is the one whose template,
fitted to the region's area and centroid, overlaps it best. Colours are distinct within a scene, so a
caption asks for at most one object per colour: a requested object is right when its colour's region is
there, of a plausible size and of the requested shape; a colour the caption does not name, with a region of
object size, is an unrequested object.

DAAM is scored per word: every noun, colour adjective and size adjective of a caption names one object (the
object of its noun phrase), whose mask is the word's ground truth.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import cache

import numpy as np
import torch
import torch.nn.functional as F

from .._aggregate import upsample_once
from .._heat_maps import HeatMaps
from .._metrics import mean_iou, threshold
from ..analysis import TAUS, tau_sweep
from ._world import BACKGROUND, COLORS, RELATIONS, SHAPES, SIZES, Box, box_relations, shape_mask

MIN_COVER = 0.5
"""A pixel is a colour's when it is at least this much of the colour blended with the background: the
renderer's rule (a pixel belongs to a shape when its centre is inside) applied to blurred edges."""
MAX_RESIDUAL = 100.0
"""A pixel farther than this (RGB) from every colour-background blend belongs to no colour. Decoded colours
drift (greens turn teal, purples magenta) by up to about 60; palette colours are at least 92 apart."""
MIN_AREA = 20
"""Pixels a colour's region needs to count as an object: the smallest object of the world (a small star)
covers about 106."""
MIN_SHAPE_IOU = 0.6
"""The best template must overlap the region at least this much for its shape to count."""
RADIUS_RANGE = (0.6 * SIZES["small"][0], 1.25 * SIZES["big"][1])
"""Plausible half-extents: the world draws 9..18 pixels; generated shapes may be a little off."""
SIZE_BOUNDARY = (SIZES["small"][1] + SIZES["big"][0]) / 2
"""Half-extent that tells 'small' (9..12) from 'big' (14..18)."""


def color_labels(image: np.ndarray) -> np.ndarray:
    """Each pixel's colour: an index into ``COLORS``, or -1 for the background (or no colour).

    A pixel ``p`` is read as a blend ``bg + a (c - bg)`` of the background with each palette colour ``c``;
    it takes the colour whose blend line passes nearest to it, among those with coverage ``a >= MIN_COVER``
    and within ``MAX_RESIDUAL``. Plain nearest-colour tests fail on decoded images: blurred edges lie between
    a colour and the background, nearer to a third colour at times.
    """
    image = np.asarray(image)
    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"image must be (h, w, 3) RGB, not {image.shape}")
    offset = image.astype(np.float64) - BACKGROUND
    colors = np.array(list(COLORS.values()), dtype=np.float64) - BACKGROUND
    cover = offset @ colors.T / (colors**2).sum(1)
    residual = np.linalg.norm(offset[..., None, :] - cover[..., None] * colors, axis=-1)
    residual[cover < MIN_COVER] = np.inf
    labels = residual.argmin(-1)
    labels[residual.min(-1) > MAX_RESIDUAL] = -1
    return labels


def segment_colors(image: np.ndarray) -> dict[str, np.ndarray]:
    """Each colour name -> bool ``(h, w)`` mask of its pixels (``color_labels``)."""
    labels = color_labels(image)
    return {name: labels == k for k, name in enumerate(COLORS)}


def components(mask: np.ndarray) -> list[np.ndarray]:
    """The 4-connected regions of a bool mask, largest first."""
    height, width = mask.shape
    labels = np.zeros(mask.shape, dtype=np.int32)
    sizes = [0]
    for start in zip(*np.nonzero(mask), strict=True):
        if labels[start]:
            continue
        label = len(sizes)
        labels[start] = label
        queue, size = deque([start]), 0
        while queue:
            y, x = queue.popleft()
            size += 1
            for ny, nx in ((y - 1, x), (y + 1, x), (y, x - 1), (y, x + 1)):
                if 0 <= ny < height and 0 <= nx < width and mask[ny, nx] and not labels[ny, nx]:
                    labels[ny, nx] = label
                    queue.append((ny, nx))
        sizes.append(size)
    order = sorted(range(1, len(sizes)), key=lambda k: -sizes[k])
    return [labels == k for k in order]


@cache
def unit_moments(shape: str) -> tuple[float, float, float]:
    """Area and centroid ``(area, x, y)`` of a unit shape (half-extent 1, centred at 0), on a fine grid."""
    steps = 801
    v, u = np.mgrid[-1 : 1 : steps * 1j, -1 : 1 : steps * 1j]
    inside = shape_mask(shape, u, v)
    cell = (2 / (steps - 1)) ** 2
    return float(inside.sum() * cell), float(u[inside].mean()), float(v[inside].mean())


def fitted_template(shape: str, mask: np.ndarray) -> tuple[np.ndarray, float]:
    """The unit ``shape`` with the mask's area and centroid, and its half-extent ``r``.

    Area and centroid barely move when a shape's thin tips hold no pixel centre, or when a blurred edge
    thins it evenly; the bounding box would move with both.
    """
    ys, xs = np.nonzero(mask)
    area, ux, uy = unit_moments(shape)
    r = float(np.sqrt(len(xs) / area))
    cx, cy = xs.mean() + 0.5 - ux * r, ys.mean() + 0.5 - uy * r
    grid_y, grid_x = np.mgrid[0 : mask.shape[0], 0 : mask.shape[1]] + 0.5
    return shape_mask(shape, (grid_x - cx) / r, (grid_y - cy) / r), r


def classify_shape(mask: np.ndarray) -> tuple[str, float, float]:
    """The shape whose fitted template overlaps ``mask`` best, that IoU, and the template's half-extent.

    An empty mask gives ``("", 0.0, 0.0)``.
    """
    if not mask.any():
        return "", 0.0, 0.0
    best = ("", -1.0, 0.0)
    for shape in SHAPES:
        template, radius = fitted_template(shape, mask)
        score = float((template & mask).sum() / (template | mask).sum())
        if score > best[1]:
            best = (shape, score, radius)
    return best


@dataclass(frozen=True)
class Found:
    """What the scorer sees of one colour in an image.

    ``segment``: every pixel of the colour; ``region``: the largest object of the colour (empty if none),
    the requested object's region and DAAM's ground truth; ``others``: the areas of its other objects.
    """

    color: str
    segment: np.ndarray
    region: np.ndarray
    shape: str
    shape_iou: float
    radius: float
    others: tuple[int, ...]

    @property
    def present(self) -> bool:
        return int(self.region.sum()) >= MIN_AREA

    @property
    def plausible_size(self) -> bool:
        return RADIUS_RANGE[0] <= self.radius <= RADIUS_RANGE[1]

    @property
    def size(self) -> str:
        """'small' or 'big', as the world would call the fitted half-extent ('' when absent)."""
        if not self.present:
            return ""
        return "small" if self.radius < SIZE_BOUNDARY else "big"


def find_objects(image: np.ndarray) -> dict[str, Found]:
    """Colour name -> what the image shows of it, for every colour of the world.

    Objects are the connected regions of coloured pixels (any colour), each of the colour most of its
    pixels have: a decoded object whose colour drifts in places is still one object of one colour.
    """
    labels = color_labels(image)
    regions: dict[str, list[np.ndarray]] = {name: [] for name in COLORS}
    for region in components(labels >= 0):
        if region.sum() >= MIN_AREA:
            regions[list(COLORS)[int(np.bincount(labels[region]).argmax())]].append(region)
    found = {}
    for k, color in enumerate(COLORS):
        if regions[color]:
            region = regions[color][0]
            shape, score, radius = classify_shape(region)
        else:
            region, shape, score, radius = np.zeros(labels.shape, dtype=bool), "", 0.0, 0.0
        others = tuple(int(r.sum()) for r in regions[color][1:])
        found[color] = Found(color, labels == k, region, shape, score, radius, others)
    return found


@dataclass(frozen=True)
class Phrase:
    """One noun phrase of a caption ('a small red circle'): its words and their indices in the word list.

    ``size`` and ``size_index`` are ``""`` and ``-1`` when the caption gives no size.
    """

    shape: str
    color: str
    size: str
    shape_index: int
    color_index: int
    size_index: int


def noun_phrases(words: Sequence[str]) -> list[Phrase]:
    """The world's noun phrases, ``[size] colour shape``, in a caption's words (punctuation excluded)."""
    phrases, size, color = [], (-1, ""), (-1, "")
    for k, word in enumerate(w.lower() for w in words):
        if word in SIZES:
            size = (k, word)
        elif word in COLORS:
            color = (k, word)
        elif word in SHAPES:
            if color[0] < 0:
                raise ValueError(f"{word!r} (word {k}) has no colour before it in {list(words)}")
            phrases.append(Phrase(word, color[1], size[1], k, color[0], size[0]))
            size, color = (-1, ""), (-1, "")
    return phrases


@dataclass(frozen=True)
class ObjectScore:
    """A requested object judged in an image: is its colour there, its shape right, its size plausible."""

    shape: str
    color: str
    size: str
    present: bool
    found_shape: str
    shape_iou: float
    plausible_size: bool
    found_size: str

    @property
    def right(self) -> bool:
        """The object counts as generated: colour present, plausible size, requested shape, clearly."""
        return (
            self.present
            and self.plausible_size
            and self.found_shape == self.shape
            and self.shape_iou >= MIN_SHAPE_IOU
        )

    @property
    def size_right(self) -> bool | None:
        """Whether the size word was obeyed; ``None`` when the caption gave none."""
        return None if not self.size else self.present and self.found_size == self.size


def score_objects(found: Mapping[str, Found], words: Sequence[str]) -> list[ObjectScore]:
    """Each object a caption's words request, judged against what ``find_objects`` saw."""
    scores = []
    for p in noun_phrases(words):
        f = found[p.color]
        scores.append(
            ObjectScore(p.shape, p.color, p.size, f.present, f.shape, f.shape_iou, f.plausible_size, f.size)
        )
    return scores


def drawn_regions(found: Mapping[str, Found], objects: Sequence[ObjectScore]) -> dict[str, np.ndarray]:
    """The region of each requested object whose colour was drawn, by colour: what its words are scored
    against in a generated image (an object not drawn has no ground truth)."""
    return {o.color: found[o.color].region for o in objects if o.present}


def relation_obeyed(found: Mapping[str, Found], words: Sequence[str]) -> bool | None:
    """Whether the image obeys the caption's spatial relation; ``None`` when the caption states none.

    The world relates its first noun phrase to every other one, and only when the boxes lie fully apart:
    the same test here, on the boxes of the regions found. A relation between objects that are not all
    there is not obeyed (as a size word on a missing object is not).
    """
    text = f" {' '.join(w.lower() for w in words)} "
    stated = [relation for relation in RELATIONS if f" {relation} " in text]
    if not stated:
        return None
    regions = [found[p.color] for p in noun_phrases(words)]
    if not all(f.present for f in regions):
        return False
    first, *others = (_box(f.region) for f in regions)
    return all(stated[0] in box_relations(first, other) for other in others)


def _box(region: np.ndarray) -> Box:
    """The box of the region's pixel centres: inside the drawn shape's box, as the renderer's rule has it."""
    ys, xs = np.nonzero(region)
    return (xs.min() + 0.5, xs.max() + 0.5, ys.min() + 0.5, ys.max() + 0.5)


def unrequested(found: Mapping[str, Found], words: Sequence[str]) -> list[str]:
    """Colours with a region of object size that the caption did not ask for."""
    requested = {p.color for p in noun_phrases(words)}
    return [color for color, f in found.items() if color not in requested and f.present]


PARTS = {"noun": SHAPES, "color": tuple(COLORS), "size": tuple(SIZES)}
"""Part of speech -> the world's words of it that DAAM is scored on."""


@dataclass(frozen=True)
class WordScore:
    """One word's DAAM score: Eq. 7 mask IoU with its object's true mask at each τ.

    ``index`` is the word's index in ``HeatMaps.words``; ``truth`` the bool ``(H, W)`` mask it is scored
    against (kept for the baselines, not written out).
    """

    word: str
    part: str
    index: int
    color: str
    ious: dict[float, float]
    truth: np.ndarray


def word_targets(words: Sequence[str]) -> list[tuple[int, str, str]]:
    """``(word index, part of speech, colour of its object)`` for every scored word of a caption."""
    targets = []
    for p in noun_phrases(words):
        targets.append((p.shape_index, "noun", p.color))
        targets.append((p.color_index, "color", p.color))
        if p.size_index >= 0:
            targets.append((p.size_index, "size", p.color))
    return sorted(targets)


def score_words(
    maps: HeatMaps, truths: Mapping[str, np.ndarray], taus: Sequence[float] = TAUS
) -> list[WordScore]:
    """DAAM scores of a caption's nouns and adjectives; ``truths`` maps an object's colour to its mask.

    Words whose object has no mask in ``truths`` (an object the model did not draw) are skipped: they have
    no ground truth.
    """
    scores = []
    for index, part, color in word_targets(maps.words):
        if color not in truths:
            continue
        truth = np.asarray(truths[color], dtype=bool)
        ious = tau_sweep([(maps, index, truth)], taus)
        scores.append(WordScore(maps.words[index], part, index, color, ious, truth))
    return scores


class ToyScorer:
    """The toy world's ``analysis.Scorer``: its words' parts of speech, its captions' grammar (exact, with
    spaCy's English labels), and each noun, colour and size word's object as ``find_objects`` finds it in a
    generated image (``toy.evaluate`` scores images the same way). Words whose object was not drawn are not
    scored: they have no ground truth."""

    name = "toy"

    def parts_of_speech(self, maps: HeatMaps) -> list[str]:
        from ._grammar import PART_OF_SPEECH

        return [PART_OF_SPEECH.get(w.lower(), "") for w in maps.words]

    def dependencies(self, maps: HeatMaps) -> list[tuple[int, int, str]] | None:
        from ._grammar import caption_dependencies

        return caption_dependencies(maps.words)

    def word_scores(self, maps: HeatMaps, taus: Sequence[float]) -> list[tuple[str, str, dict[float, float]]]:
        if maps.image is None or maps.image.shape[:2] != maps.shape:
            return []
        found = find_objects(maps.image)
        truths = drawn_regions(found, score_objects(found, maps.words))
        return [(s.part, s.word, s.ious) for s in score_words(maps, truths, taus)]


def perfect_map_mask(truth: np.ndarray, grid: tuple[int, int], tau: float) -> np.ndarray:
    """The Eq. 7 mask of the best map a cross-attention layer of ``grid`` cells could give for ``truth``.

    A layer sees the image only cell by cell: at best its map is the share of each cell the object covers.
    Upsampled to the image as DAAM upsamples (bicubic) and thresholded at ``tau``, it bounds how well any
    map of that resolution can score; small objects lose most at coarse grids.
    """
    cells = F.adaptive_avg_pool2d(torch.from_numpy(np.asarray(truth, np.float32))[None], grid)
    return threshold(upsample_once([cells], truth.shape)[0].numpy(), tau)


def perfect_map_miou(truths: Iterable[np.ndarray], grid: tuple[int, int], tau: float) -> float:
    """The mean IoU with ``truths`` of the best maps a layer of ``grid`` cells could make for them
    (``perfect_map_mask``): the ceiling a map of that resolution is read against."""
    return mean_iou((perfect_map_mask(t, grid, tau), t) for t in truths)
