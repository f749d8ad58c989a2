"""PRX: a DiT whose blocks attend from the image tokens to [text, image] keys, the same text in every block.

The text is T5Gemma's last hidden state of the cleaned prompt (lower-cased, with DeepFloyd-style caption
cleaning, or only mojibake and HTML fixes with ``skip_text_cleaning=True``), padded under a key mask; words
are found in the cleaned text, so a prompt that cleaning changes beyond case maps by the words read back
from the ids. The guidance batch is ``[negative, positive]``; resolution binning generates at a fixed
set of sizes and resizes the image back, and the maps with it.
"""

from __future__ import annotations

from typing import Any

import torch

from .._text_streams import Template, TextStream
from ._base import (
    DenoiserCall,
    JointBackbone,
    argument,
    pipeline_call_locals,
    resized_back,
    size_before_binning,
)


class PRXBackbone(JointBackbone):
    name = "PRX"
    pipelines = ("PRXPipeline",)
    layer_pattern = r"blocks\.\d+\.attention"
    processors = ("PRXAttnProcessor2_0",)
    image_queries = True

    def read_call(self, args: tuple, kwargs: dict[str, Any]) -> DenoiserCall:
        return self.latent_call(
            argument(args, kwargs, 0, "hidden_states"),
            argument(args, kwargs, 1, "timestep"),
            argument(args, kwargs, 2, "encoder_hidden_states"),
            patch=int(self.denoiser.config.patch_size),
            output_size=size_before_binning(self.pipe),
        )

    def streams(self) -> list[TextStream]:
        cleaned = not pipeline_call_locals(self.pipe).get("skip_text_cleaning", False)
        return [TextStream("gemma", template=Template(lowercase=cleaned))]

    def finish(self, images: torch.Tensor, call: DenoiserCall) -> torch.Tensor:
        return resized_back(self.pipe, images, call)
