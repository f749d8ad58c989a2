"""ERNIE-Image: a single-stream DiT whose layers attend over [image, text], the text of each sample padded
to the batch's longest under a key mask.

The text is Mistral-3's second-to-last layer of the prompt as it is (with ``<s>``, no template, no
padding). By default a prompt-enhancer model, when the pipeline has one, rewrites the prompt first
(``use_pe=True``): maps are then of the rewritten text, and the tracer says so. The guidance batch is
``[negative, positive]``; latents are the VAE's 2x2 patches, one token each.
"""

from __future__ import annotations

import re
import warnings
from typing import Any

from .._text_streams import TextStream, valid_from
from ._base import Backbone, DenoiserCall, Layout, pipeline_call_locals

PROCESSORS = ("ErnieImageSingleStreamAttnProcessor",)


class ErnieImageBackbone(Backbone):
    name = "ERNIE-Image"
    pipelines = ("ErnieImagePipeline",)
    joint = True

    def attention_layers(self) -> dict[str, Any]:
        layers = {
            name: module
            for name, module in self.denoiser.named_modules()
            if re.fullmatch(r"layers\.\d+\.self_attention", name)
        }
        self.check_processors(layers, PROCESSORS)
        return layers

    def read_call(self, args: tuple, kwargs: dict[str, Any]) -> DenoiserCall:
        return self.latent_call(kwargs["hidden_states"], kwargs["timestep"], kwargs["text_bth"])

    def has_text(self, arguments: dict[str, Any]) -> bool:
        return True

    def positions(self, arguments: dict[str, Any], call: DenoiserCall) -> Layout:
        image = call.grid[0] * call.grid[1]
        return slice(0, image), slice(image, image + call.text_length)

    def streams(self) -> list[TextStream]:
        call_locals = pipeline_call_locals(self.pipe)
        if call_locals.get("use_pe", False) and getattr(self.pipe, "pe", None) is not None:
            warnings.warn(
                "ERNIE-Image rewrote the prompt with its prompt enhancer (use_pe=True): the maps are of the "
                "rewritten text, whose words heat_maps() reads from the token ids; pass use_pe=False to map "
                "the prompt as written",
                stacklevel=2,
            )
        return [TextStream("mistral", keys=valid_from(0))]
