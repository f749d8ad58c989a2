"""Chroma: Flux.1's architecture with T5 alone, a key mask that keeps each prompt's tokens and one
padding token, and classifier-free guidance as a second transformer call after the positive one."""

from __future__ import annotations

import dataclasses
from typing import Any

from .._text_streams import TextStream
from ._base import DenoiserCall
from .flux import FluxBackbone


class ChromaBackbone(FluxBackbone):
    name = "Chroma"
    pipelines = ("ChromaPipeline",)

    def read_call(self, args: tuple, kwargs: dict[str, Any]) -> DenoiserCall:
        return dataclasses.replace(super().read_call(args, kwargs), mask=kwargs.get("attention_mask"))

    def streams(self) -> list[TextStream]:
        return [TextStream("t5")]
