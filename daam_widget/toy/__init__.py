"""The embedded toy world and models: flat shapes, true captions, exact masks, a tiny Stable Diffusion and a
tiny Flux.

>>> from daam_widget import toy
>>> s = toy.scene(7)
>>> s.caption, s.image.shape, len(s.masks)
>>> pipe = toy.load_pipeline()  # the UNet; toy.load_pipeline("flux"): the transformer
>>> image = pipe(s.caption).images[0]
"""

from ._flux_model import ToyFluxPipeline
from ._model import MODELS, ToyPipeline, load_pipeline
from ._scoring import ToyScorer
from ._world import COLORS, EVALUATION_SEEDS, SHAPES, WORDS, Scene, ToyObject, render, scene, unknown_words

__all__ = [
    "COLORS",
    "EVALUATION_SEEDS",
    "MODELS",
    "SHAPES",
    "WORDS",
    "Scene",
    "ToyFluxPipeline",
    "ToyObject",
    "ToyPipeline",
    "ToyScorer",
    "load_pipeline",
    "render",
    "scene",
    "unknown_words",
]
