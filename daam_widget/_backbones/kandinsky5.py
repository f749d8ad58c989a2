"""Kandinsky 5 (text-to-image): a DiT whose visual blocks cross-attend from the image tokens to the text.

The prompt goes into a Qwen2.5-VL chat template whose first 40 positions are dropped; the rest of the
window (padded to the longest prompt, unmasked) are the keys. CLIP gives a pooled vector only. Latents
are ``(batch, frames, h, w, channels)``, cut into 1x2x2 patches. The negative prompt is a second call after
the positive one.
"""

from __future__ import annotations

from typing import Any

from .._text_streams import Template, TextStream, from_position
from ._base import Backbone, DenoiserCall


class Kandinsky5Backbone(Backbone):
    name = "Kandinsky 5"
    pipelines = ("Kandinsky5T2IPipeline",)
    layer_pattern = r"visual_transformer_blocks\.\d+\.cross_attention"
    processors = ("Kandinsky5AttnProcessor",)
    negative_in_separate_call = True

    def read_call(self, args: tuple, kwargs: dict[str, Any]) -> DenoiserCall:
        latents = kwargs["hidden_states"]
        _, patch_h, patch_w = self.denoiser.config.patch_size
        h, w = int(latents.shape[-3]), int(latents.shape[-2])
        scale = int(self.pipe.vae_scale_factor_spatial)
        return DenoiserCall(
            batch=int(latents.shape[0]),
            timestep=kwargs["timestep"],
            embeddings=kwargs["encoder_hidden_states"],
            grid=(h // patch_h, w // patch_w),
            image_size=(h * scale, w * scale),
        )

    def streams(self) -> list[TextStream]:
        prefix, _, suffix = self.pipe.prompt_template.partition("{}")
        keys = from_position(int(self.pipe.prompt_template_encode_start_idx))
        return [TextStream("qwen", template=Template(prefix, suffix), keys=keys)]
