"""The embedded toy world and model: flat shapes, true captions, exact masks, and a tiny Stable Diffusion.

>>> from daam_widget import toy
>>> s = toy.scene(7)
>>> s.caption, s.image.shape, len(s.masks)
>>> pipe = toy.load_pipeline()
>>> image = pipe(s.caption).images[0]
"""

from ._model import ToyPipeline, load_pipeline, unknown_words
from ._scoring import ToyScorer
from ._world import COLORS, EVALUATION_SEEDS, SHAPES, WORDS, Scene, ToyObject, render, scene

__all__ = [
    "COLORS",
    "EVALUATION_SEEDS",
    "SHAPES",
    "WORDS",
    "Scene",
    "ToyObject",
    "ToyPipeline",
    "ToyScorer",
    "load_pipeline",
    "render",
    "scene",
    "unknown_words",
]
