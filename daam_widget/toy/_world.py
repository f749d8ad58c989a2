"""The toy world: one to three flat shapes on a plain background, a true caption, and exact masks.

A scene is drawn from a seed, so any scene (training or evaluation) can be rebuilt from its seed alone.
Colours and shapes are distinct within a scene, so every colour word and every noun names exactly one
object, and an object's region in any image of the world is the segment of its colour.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

SIZE = 64
BACKGROUND = (245, 245, 245)
COLORS: dict[str, tuple[int, int, int]] = {
    "red": (210, 30, 40),
    "green": (40, 160, 60),
    "blue": (40, 80, 220),
    "yellow": (235, 220, 40),
    "purple": (140, 50, 180),
    "orange": (240, 130, 20),
}
SHAPES: tuple[str, ...] = ("circle", "square", "triangle", "star", "diamond")
SIZES: dict[str, tuple[float, float]] = {"small": (9.0, 12.0), "big": (14.0, 18.0)}
"""Half-extents in pixels. Large enough that an object spans two or more cells of the 8x8 attention grid:
with 6-9 / 11-15 a perfect 8x8 map scored 0.72 IoU, with these 0.79 (docs/toy.md)."""
RELATIONS: tuple[str, ...] = ("to the left of", "to the right of", "above", "below")
PREFIXES: tuple[str, ...] = ("", "", "a photo of ", "a picture of ", "an image of ")
WORDS: tuple[str, ...] = (
    *"a an of photo picture image and to the left right above below small big".split(),
    *COLORS,
    *SHAPES,
)


@dataclass(frozen=True)
class ToyObject:
    """One flat shape: its name, colour name, size word, centre (x, y) in pixels and half-extent ``r``."""

    shape: str
    color: str
    size: str
    x: float
    y: float
    r: float

    def mask(self, size: int = SIZE) -> np.ndarray:
        """The pixels (bool ``(size, size)``) whose centres lie inside the shape."""
        ys, xs = np.mgrid[0:size, 0:size] + 0.5
        return shape_mask(self.shape, (xs - self.x) / self.r, (ys - self.y) / self.r)

    @property
    def box(self) -> Box:
        return (self.x - self.r, self.x + self.r, self.y - self.r, self.y + self.r)

    def relation_to(self, other: ToyObject) -> tuple[str, ...]:
        """The relations (from ``RELATIONS``) that hold from this object to ``other``."""
        return box_relations(self.box, other.box)


Box = tuple[float, float, float, float]
"""(left, right, top, bottom) in pixels, y pointing down."""


def box_relations(a: Box, b: Box) -> tuple[str, ...]:
    """The relations (from ``RELATIONS``) that hold from box ``a`` to box ``b``: only when fully apart."""
    held = []
    if a[1] < b[0]:
        held.append("to the left of")
    if a[0] > b[1]:
        held.append("to the right of")
    if a[3] < b[2]:
        held.append("above")
    if a[2] > b[3]:
        held.append("below")
    return tuple(held)


@dataclass(frozen=True)
class Scene:
    """A rendered scene: ``image`` (``(64, 64, 3)`` uint8), ``caption``, ``objects`` and their ``masks``.

    ``masks[i]`` is the bool ``(64, 64)`` mask of ``objects[i]``; objects never overlap.
    """

    image: np.ndarray
    caption: str
    objects: tuple[ToyObject, ...]
    masks: tuple[np.ndarray, ...]

    def masks_by_color(self) -> dict[str, np.ndarray]:
        """Each object's exact mask, by its colour (which names exactly one object of a scene)."""
        return {o.color: m for o, m in zip(self.objects, self.masks, strict=True)}

    def mask_of(self, word: str) -> np.ndarray:
        """The mask of the object a colour word or a noun of the caption names."""
        for obj, mask in zip(self.objects, self.masks, strict=True):
            if word in (obj.shape, obj.color):
                return mask
        raise KeyError(f"{word!r} names no object of this scene; objects: {self.objects}")


_POLYGONS: dict[str, list[tuple[float, float]]] = {
    "square": [(-0.85, -0.85), (0.85, -0.85), (0.85, 0.85), (-0.85, 0.85)],
    "triangle": [(0.0, -1.0), (1.0, 0.8), (-1.0, 0.8)],
    "diamond": [(0.0, -1.0), (1.0, 0.0), (0.0, 1.0), (-1.0, 0.0)],
    "star": [
        (rad * np.sin(k * np.pi / 5), -rad * np.cos(k * np.pi / 5))
        for k in range(10)
        for rad in [1.0 if k % 2 == 0 else 0.45]
    ],
}


def shape_mask(shape: str, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Inside test of a unit shape (half-extent 1, centred at 0) at ``u`` (rightwards), ``v`` (down)."""
    if shape == "circle":
        return u**2 + v**2 <= 1.0
    if shape not in _POLYGONS:
        raise KeyError(f"{shape!r} is not a shape; shapes are: {', '.join(SHAPES)}")
    return _inside_polygon(_POLYGONS[shape], u, v)


def _inside_polygon(points: list[tuple[float, float]], u: np.ndarray, v: np.ndarray) -> np.ndarray:
    inside = np.zeros(np.broadcast(u, v).shape, dtype=bool)
    for (x0, y0), (x1, y1) in zip(points, points[1:] + points[:1], strict=True):
        crosses = (y0 > v) != (y1 > v)
        with np.errstate(divide="ignore", invalid="ignore"):
            x_at = x0 + (v - y0) * (x1 - x0) / (y1 - y0)
        inside ^= crosses & (u < x_at)
    return inside


def random_objects(rng: np.random.Generator, size: int = SIZE) -> tuple[ToyObject, ...]:
    """One to three objects with distinct shapes and colours, inside the image, boxes at least 2 px apart."""
    count = int(rng.choice([1, 2, 3], p=[0.3, 0.4, 0.3]))
    shapes = rng.choice(SHAPES, count, replace=False)
    colors = rng.choice(list(COLORS), count, replace=False)
    while True:
        objects = []
        for shape, color in zip(shapes, colors, strict=True):
            size_word = str(rng.choice(list(SIZES)))
            r = float(rng.uniform(*SIZES[size_word]))
            x, y = rng.uniform(r + 1, size - r - 1, 2)
            objects.append(ToyObject(str(shape), str(color), size_word, float(x), float(y), r))
        if all(
            abs(a.x - b.x) > a.r + b.r + 2 or abs(a.y - b.y) > a.r + b.r + 2
            for i, a in enumerate(objects)
            for b in objects[i + 1 :]
        ):
            return tuple(objects)


def noun_phrase(obj: ToyObject, with_size: bool) -> str:
    words = [obj.size] if with_size else []
    words += [obj.color, obj.shape]
    article = "an" if words[0][0] in "aeiou" else "a"
    return " ".join([article, *words])


def describe(objects: tuple[ToyObject, ...], rng: np.random.Generator) -> str:
    """A true caption: every object named once, in a random order, sometimes sized, related where true."""
    order = [objects[i] for i in rng.permutation(len(objects))]
    phrases = [noun_phrase(obj, bool(rng.random() < 0.5)) for obj in order]
    body = phrases[0]
    if len(order) > 1:
        held = set(order[0].relation_to(order[1]))
        if len(order) == 3:
            held &= set(order[0].relation_to(order[2]))
        if held and rng.random() < 0.6:
            relation = str(rng.choice(sorted(held)))
            body = f"{phrases[0]} {relation} " + " and ".join(phrases[1:])
        elif len(order) == 2:
            body = f"{phrases[0]} and {phrases[1]}"
        else:
            body = f"{phrases[0]}, {phrases[1]} and {phrases[2]}"
    return str(rng.choice(PREFIXES)) + body


def render(objects: tuple[ToyObject, ...], size: int = SIZE) -> tuple[np.ndarray, tuple[np.ndarray, ...]]:
    """The image (``(size, size, 3)`` uint8, hard edges) and each object's mask."""
    image = np.empty((size, size, 3), dtype=np.uint8)
    image[:] = BACKGROUND
    masks = tuple(obj.mask(size) for obj in objects)
    for obj, mask in zip(objects, masks, strict=True):
        image[mask] = COLORS[obj.color]
    return image, masks


def scene(seed: int) -> Scene:
    """The scene of a seed: layout, caption and image all follow from it.

    Training draws seeds below ``EVALUATION_SEEDS``; evaluation uses seeds from it upwards (held out).
    """
    rng = np.random.default_rng(seed)
    objects = random_objects(rng)
    caption = describe(objects, rng)
    image, masks = render(objects)
    return Scene(image, caption, objects, masks)


EVALUATION_SEEDS = 1_000_000_000


_WORD = re.compile(r"[^\W_]+")


def unknown_words(prompt: str) -> list[str]:
    """The words of ``prompt`` the toy's tokenizers do not hold (case-insensitive), in order."""
    known = set(WORDS)
    return [w for w in dict.fromkeys(_WORD.findall(prompt.lower())) if w not in known]


def warn_of_unknown_words(prompts: Iterable[str | list[str] | None], stacklevel: int) -> None:
    """Warn, naming them, of the words of ``prompts`` (strings, lists of them, or ``None``) the toy's
    tokenizers do not hold: they are split into letters the model never saw, and DAAM would map letters."""
    for text in (t for group in prompts for t in ([group] if isinstance(group, str) else group or [])):
        if unknown := unknown_words(text):
            warnings.warn(
                f"the toy model does not know {', '.join(map(repr, unknown))}: its words are "
                f"{', '.join(WORDS)}; unknown words are split into letters it never learned",
                stacklevel=stacklevel + 1,
            )
