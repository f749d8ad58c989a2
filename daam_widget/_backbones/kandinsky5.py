"""Kandinsky 5 text-to-image and text-to-video: a DiT whose visual blocks cross-attend from the image or
video tokens to the text.

The prompt goes into a Qwen2.5-VL chat template whose first ``prompt_template_encode_start_idx`` positions
(the system turn: 40 for images, 128 for videos) are dropped; the rest of the window (padded to the longest
prompt, unmasked) are the keys. CLIP gives a pooled vector only. Latents are ``(batch, frames, h, w,
channels)`` (one frame for an image), cut into 1x2x2 patches. The negative prompt is a second call after
the positive one.

The video pipeline's VAE (``AutoencoderKLHunyuanVideo``) is causal in time: its convolutions pad on the
past side only, its mid-block attention is masked frame-causally, and its upsampling keeps the first frame
alone and repeats every later one, so the first frame is decoded from latent frame 0 alone and every
following ``temporal_compression_ratio`` (4) frames from one latent frame; only its group norms pool their
statistics over the whole clip. A transformer with sparse "nabla" attention (``attention_type="nabla"``)
orders the video tokens in blocks of 8 x 8 (``to_fractal``), which the token grid does not follow: it is
refused.
"""

from __future__ import annotations

import dataclasses
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


class Kandinsky5VideoBackbone(Kandinsky5Backbone):
    """The text-to-video pipeline: the image family's keys, template rule and guidance, its grid with the
    latent frames before the rows (the pipeline keeps the temporal patch at 1)."""

    name = "Kandinsky 5 (video)"
    pipelines = ("Kandinsky5T2VPipeline",)
    video = True

    def read_call(self, args: tuple, kwargs: dict[str, Any]) -> DenoiserCall:
        sparse = kwargs.get("sparse_params")
        if sparse is not None and sparse.get("to_fractal"):
            raise NotImplementedError(
                "Kandinsky 5 with nabla attention orders the video tokens in blocks of 8 x 8 (to_fractal), "
                "which the token grid does not follow yet; transformers with attention_type='regular' are "
                "traced"
            )
        call = super().read_call(args, kwargs)
        frames = int(kwargs["hidden_states"].shape[1])
        temporal = int(self.pipe.vae_scale_factor_temporal)
        return dataclasses.replace(call, grid=(frames, *call.grid), temporal_factor=temporal)
