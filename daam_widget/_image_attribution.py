"""DAAM on a given image: noise it, let the UNet denoise it once per timestep with a prompt, trace that.

This turns DAAM into zero-shot segmentation of any image and caption, not only of generated ones: the
maps show where the UNet, asked to denoise this image given this prompt, looks for each word.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from ._heat_maps import HeatMaps
from ._trace import trace


def attribute_image(
    pipe: Any,
    image: Any,
    prompt: str,
    *,
    timesteps: Sequence[int] = (100, 250, 400),
    seed: int = 0,
    layers: Sequence[str] | None = None,
    heads: Sequence[int] | None = None,
) -> HeatMaps:
    """The DAAM maps of ``prompt``'s words on ``image``.

    The image is encoded by the pipeline's VAE, noised to each of ``timesteps`` by the forward process
    ``x_t = sqrt(a_t) x_0 + sqrt(1 - a_t) e`` (``a_t`` from ``pipe.scheduler.alphas_cumprod``, fresh noise per
    timestep from ``seed``), and the UNet is run once per timestep with the prompt, without guidance. The
    maps sum over those runs, as Eq. 6 sums over steps.

    ``image``: a PIL image or an ``(H, W, 3)`` uint8 array, H and W multiples of ``pipe.vae_scale_factor``.
    """
    pixels = np.asarray(image.convert("RGB") if hasattr(image, "convert") else image)
    scale = int(pipe.vae_scale_factor)
    if pixels.ndim != 3 or pixels.shape[2] != 3 or pixels.dtype != np.uint8:
        raise ValueError(
            f"image must be RGB uint8 (H, W, 3) or a PIL image, not {pixels.dtype} {pixels.shape}"
        )
    height, width = pixels.shape[:2]
    if height % scale or width % scale:
        raise ValueError(f"image size {height}x{width} must be a multiple of the VAE's factor {scale}")
    alphas = getattr(pipe.scheduler, "alphas_cumprod", None)
    if alphas is None:
        raise TypeError(f"{type(pipe.scheduler).__name__} has no alphas_cumprod to noise the image with")
    if not timesteps or not all(0 <= t < len(alphas) for t in timesteps):
        raise ValueError(f"timesteps must be in 0..{len(alphas) - 1}, not {list(timesteps)}")
    unet = pipe.unet
    device, dtype = unet.device, unet.dtype
    x = torch.from_numpy(pixels).permute(2, 0, 1)[None].to(device, pipe.vae.dtype) / 127.5 - 1
    generator = torch.Generator(device).manual_seed(seed)
    with torch.no_grad(), trace(pipe, guidance=False, layers=layers, heads=heads) as tc:
        latents = pipe.vae.encode(x).latent_dist.mean * pipe.vae.config.scaling_factor
        encoded = pipe.encode_prompt(
            prompt=prompt, device=device, num_images_per_prompt=1, do_classifier_free_guidance=False
        )
        extra = {}
        if getattr(pipe, "text_encoder_2", None) is not None:
            size = [height, width, 0, 0, height, width]
            extra["added_cond_kwargs"] = {
                "text_embeds": encoded[2].to(dtype),
                "time_ids": torch.tensor([size], device=device, dtype=dtype),
            }
        for t in timesteps:
            a = alphas[t].to(device=device, dtype=torch.float32)
            noise = torch.randn(latents.shape, generator=generator, device=device, dtype=torch.float32)
            noisy = a.sqrt() * latents.float() + (1 - a).sqrt() * noise
            unet(noisy.to(dtype), t, encoder_hidden_states=encoded[0].to(dtype), **extra)
    maps = tc.heat_maps(0, prompt=prompt)
    maps.image = pixels
    maps.settings.update({"source": "attribute_image", "timesteps": list(timesteps), "seed": seed})
    return maps
