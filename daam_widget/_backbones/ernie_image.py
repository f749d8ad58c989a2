"""ERNIE-Image: a single-stream DiT whose layers attend over [image, text], the text of each sample padded
to the batch's longest under a key mask.

The text is Mistral-3's second-to-last layer of the prompt as it is (with ``<s>``, no template, no
padding). By default a prompt-enhancer model, when the pipeline has one, rewrites the prompt first
(``use_pe=True``): maps are then of the rewritten text, and the tracer says so. The guidance batch is
``[negative, positive]``; latents are the VAE's 2x2 patches, one token each.
"""

from __future__ import annotations

import warnings
from typing import Any

from .._text_streams import TextStream, valid_from
from ._base import DenoiserCall, JointBackbone, pipeline_call_locals


class ErnieImageBackbone(JointBackbone):
    name = "ERNIE-Image"
    pipelines = ("ErnieImagePipeline",)
    layer_pattern = r"layers\.\d+\.self_attention"
    processors = ("ErnieImageSingleStreamAttnProcessor",)
    text_first = False

    def read_call(self, args: tuple, kwargs: dict[str, Any]) -> DenoiserCall:
        return self.latent_call(kwargs["hidden_states"], kwargs["timestep"], kwargs["text_bth"])

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
