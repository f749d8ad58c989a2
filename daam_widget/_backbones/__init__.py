"""Denoiser families: one adapter per family behind the ``Backbone`` protocol (``_base``)."""

from __future__ import annotations

from typing import Any

from .._text_streams import TextStream
from ._base import Backbone, DenoiserCall, SoftmaxOver
from .auraflow import AuraFlowBackbone
from .bria_fibo import BriaFiboBackbone
from .chroma import ChromaBackbone
from .cogvideox import CogVideoXBackbone
from .cogview import CogView3PlusBackbone, CogView4Backbone
from .ernie_image import ErnieImageBackbone
from .flux import FluxBackbone
from .flux2 import Flux2Backbone, Flux2KleinBackbone
from .hidream import HiDreamBackbone
from .hunyuandit import HunyuanDiTBackbone
from .hunyuanimage import HunyuanImageBackbone
from .hunyuanvideo15 import HunyuanVideo15Backbone
from .kandinsky5 import Kandinsky5Backbone, Kandinsky5VideoBackbone
from .kolors import KolorsBackbone
from .krea2 import Krea2Backbone
from .longcat_image import LongCatImageBackbone
from .ltx2 import LTX2Backbone
from .lumina2 import Lumina2Backbone
from .nucleusmoe import NucleusMoEBackbone
from .ovis_image import OvisImageBackbone
from .pixart import PixArtBackbone, SanaBackbone
from .prx import PRXBackbone
from .qwen_image import QwenImageBackbone
from .sana_video import SanaVideoBackbone
from .sd3 import SD3Backbone
from .unet import UNetBackbone
from .wan import WanBackbone
from .z_image import ZImageBackbone

FAMILIES: tuple[type[Backbone], ...] = (
    UNetBackbone,
    SD3Backbone,
    FluxBackbone,
    PixArtBackbone,
    SanaBackbone,
    QwenImageBackbone,
    Flux2Backbone,
    Flux2KleinBackbone,
    ChromaBackbone,
    ZImageBackbone,
    CogView3PlusBackbone,
    CogView4Backbone,
    AuraFlowBackbone,
    Lumina2Backbone,
    Kandinsky5Backbone,
    HunyuanDiTBackbone,
    HiDreamBackbone,
    HunyuanImageBackbone,
    KolorsBackbone,
    OvisImageBackbone,
    ErnieImageBackbone,
    NucleusMoEBackbone,
    Krea2Backbone,
    PRXBackbone,
    LongCatImageBackbone,
    BriaFiboBackbone,
    WanBackbone,
    CogVideoXBackbone,
    HunyuanVideo15Backbone,
    LTX2Backbone,
    Kandinsky5VideoBackbone,
    SanaVideoBackbone,
)

__all__ = ["FAMILIES", "Backbone", "DenoiserCall", "SoftmaxOver", "TextStream", "backbone_for"]


UNMAPPABLE = {
    "GlmImagePipeline": (
        "GLM-Image cannot have prompt-word maps: its DiT's text keys are ByT5 embeddings of the prompt's "
        "quoted text only, and the prompt itself drives an autoregressive model whose image tokens "
        "condition the DiT"
    ),
}
"""Pipelines refused with the reason, where no family could give prompt-word maps."""


def backbone_for(pipe: Any) -> Backbone:
    """The family adapter of ``pipe``, chosen by its class (or a base class); a clear error otherwise."""
    names = {c.__name__ for c in type(pipe).__mro__}
    for name in names & set(UNMAPPABLE):
        raise TypeError(UNMAPPABLE[name])
    for family in FAMILIES:
        if names & set(family.pipelines):
            return family(pipe)
    supported = "; ".join(f"{' and '.join(f.pipelines)} ({f.name})" for f in FAMILIES)
    raise TypeError(
        f"{type(pipe).__name__} is not supported; daam_widget.trace supports {supported} "
        "(and their subclasses)"
    )
