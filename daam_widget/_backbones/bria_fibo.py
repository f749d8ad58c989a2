"""Bria FIBO: Flux.1's architecture ([text, image] in double- and single-stream blocks) on SmolLM3, with
latents that are not packed (one token per latent pixel of a 16x VAE).

The prompt is given to SmolLM3 as it is (FIBO expects a JSON caption, whose keys and values are then the
words), padded to the batch's longest under a key mask; the text keys are the last two layers side by
side. The guidance batch is ``[negative, positive]``.
"""

from __future__ import annotations

from .._text_streams import TextStream, valid_from
from ._base import pipeline_call_locals
from .flux import FluxLayoutBackbone


class BriaFiboBackbone(FluxLayoutBackbone):
    name = "Bria FIBO"
    pipelines = ("BriaFiboPipeline",)
    processors = ("BriaFiboAttnProcessor", "BriaAttnProcessor")
    negative_in_separate_call = False
    packing = 1

    def guided(self) -> bool | None:
        return float(pipeline_call_locals(self.pipe).get("guidance_scale", 1.0)) > 1  # its only rule

    def streams(self) -> list[TextStream]:
        return [TextStream("smollm3", keys=valid_from(0))]
