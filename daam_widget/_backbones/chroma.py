"""Chroma: Flux.1's architecture with T5 alone, a key mask that keeps each prompt's tokens and one
padding token, and classifier-free guidance as a second transformer call after the positive one."""

from __future__ import annotations

from .._text_streams import TextStream
from .flux import FluxBackbone


class ChromaBackbone(FluxBackbone):
    name = "Chroma"
    pipelines = ("ChromaPipeline",)

    def streams(self) -> list[TextStream]:
        return [TextStream("t5")]
