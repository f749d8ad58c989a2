"""Stable Diffusion 1.x / 2.x and SDXL: a UNet with real cross-attention to CLIP tokens."""

from __future__ import annotations

from typing import Any, ClassVar

import torch

from .._aggregate import latent_grid
from .._text_streams import TextStream
from ._base import CrossAttentionBackbone, DenoiserCall, argument


class UNetBackbone(CrossAttentionBackbone):
    """Keys are the 77 CLIP positions; SDXL's two encoders sit side by side in the features, and both
    tokenizers split text the same way, so the first tokenizer indexes them."""

    name = "Stable Diffusion 1.x, 2.x and SDXL"
    pipelines: ClassVar[tuple[str, ...]] = ("StableDiffusionPipeline", "StableDiffusionXLPipeline")
    denoiser_attribute = "unet"

    def read_call(self, args: tuple, kwargs: dict[str, Any]) -> DenoiserCall:
        return self.latent_call(
            argument(args, kwargs, 0, "sample"),
            argument(args, kwargs, 1, "timestep"),
            argument(args, kwargs, 2, "encoder_hidden_states"),
        )

    def layer_grid(self, call: DenoiserCall, queries: int) -> tuple[int, int]:
        h, w = call.grid
        return latent_grid(queries, (h, w))

    def streams(self) -> list[TextStream]:
        return [TextStream("clip")]

    def encode_text(self, prompt: str) -> dict[str, Any]:
        device = self.denoiser.device
        encoded = self.pipe.encode_prompt(
            prompt=prompt, device=device, num_images_per_prompt=1, do_classifier_free_guidance=False
        )
        text: dict[str, Any] = {"encoder_hidden_states": encoded[0].to(self.denoiser.dtype)}
        if getattr(self.pipe, "text_encoder_2", None) is not None:
            text["pooled"] = encoded[2]
        return text

    def denoise(self, latents: torch.Tensor, timestep: int, text: dict[str, Any]) -> None:
        extra = {}
        if "pooled" in text:  # SDXL's micro-conditioning: original size, crop (0, 0), target size
            height, width = (side * int(self.pipe.vae_scale_factor) for side in latents.shape[-2:])
            dtype = self.denoiser.dtype
            size = [[height, width, 0, 0, height, width]]
            time_ids = torch.tensor(size, device=latents.device, dtype=dtype)
            extra["added_cond_kwargs"] = {"text_embeds": text["pooled"].to(dtype), "time_ids": time_ids}
        self.denoiser(latents, timestep, encoder_hidden_states=text["encoder_hidden_states"], **extra)
