"""DAAM on a given image: noise it, let the denoiser denoise it once per timestep with a prompt, trace that.

This turns DAAM into zero-shot segmentation of any image and caption, not only of generated ones: the
maps show where the model, asked to denoise this image given this prompt, looks for each word.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from diffusers import DDPMScheduler

from ._backbones import SoftmaxOver, backbone_for
from ._heat_maps import HeatMaps
from ._trace import Trace, trace


def attribute_image(
    pipe: Any,
    image: Any,
    prompt: str,
    *,
    timesteps: Sequence[int] = (100, 250, 400),
    seed: int = 0,
    layers: Sequence[str] | None = None,
    heads: Sequence[int] | None = None,
    softmax_over: SoftmaxOver = "text",
    concepts: Sequence[str] | None = None,
    concept_layers: Sequence[str] | None = None,
) -> HeatMaps:
    """The DAAM maps of ``prompt``'s words on ``image``; with ``concepts``, the ConceptAttention maps of
    those concepts instead (zero-shot segmentation, as the paper evaluates it; joint families only).

    The image is encoded by the pipeline's VAE and noised to each of ``timesteps`` (fresh noise per
    timestep from ``seed``) by the forward process of the pipeline's noise schedule: for diffusion models
    ``DDPMScheduler.add_noise`` on the scheduler's betas (``x_t = sqrt(a_t) x_0 + sqrt(1 - a_t) e``), for
    flow matching (SD3, Flux, Sana) ``x_t = (1 - s) x_0 + s e`` with ``s = t / 1000``, as ``scale_noise``.
    The denoiser runs once per timestep with the prompt, without guidance; the maps sum over those runs,
    as Eq. 6 sums over steps.

    ``image``: a PIL image or an ``(H, W, 3)`` uint8 array, H and W multiples of what the model needs (the
    VAE's factor, times the patch size for transformers). ``layers``, ``heads`` and ``softmax_over`` are as
    ``trace`` takes them.
    """
    tc, pixels = image_trace(
        pipe,
        image,
        prompt,
        timesteps=timesteps,
        seed=seed,
        layers=layers,
        heads=heads,
        softmax_over=softmax_over,
        concepts=concepts,
        concept_layers=concept_layers,
    )
    maps = tc.concept_maps(0) if concepts is not None else tc.heat_maps(0, prompt=prompt)
    maps.image = pixels
    maps.settings.update({"source": "attribute_image", "timesteps": list(timesteps), "seed": seed})
    return maps


def image_trace(
    pipe: Any,
    image: Any,
    prompt: str,
    *,
    timesteps: Sequence[int] = (100, 250, 400),
    seed: int = 0,
    **trace_options: Any,
) -> tuple[Trace, np.ndarray]:
    """The trace of ``attribute_image``'s denoiser runs, and the image's pixels: for reading several kinds
    of map (layers, concepts) of one image from one set of runs. ``trace_options`` go to ``trace``."""
    backbone = backbone_for(pipe)
    if backbone.video:
        raise NotImplementedError(
            f"attribute_image attributes an image; {type(pipe).__name__} makes videos (trace it as it "
            "generates: daam_widget.trace(pipe))"
        )
    if not isinstance(prompt, str) or not prompt.strip():
        raise ValueError(
            f"prompt must be the text whose words are attributed (a non-empty string), not {prompt!r}"
        )
    pixels = np.asarray(image.convert("RGB") if hasattr(image, "convert") else image)
    if pixels.ndim != 3 or pixels.shape[2] != 3 or pixels.dtype != np.uint8:
        raise ValueError(
            f"image must be RGB uint8 (H, W, 3) or a PIL image, not {pixels.dtype} {pixels.shape}"
        )
    height, width = pixels.shape[:2]
    multiple, why = backbone.pixel_multiple()
    if height == 0 or width == 0 or height % multiple or width % multiple:
        raise ValueError(f"image size {height}x{width} must be a positive multiple of {why}")
    scheduler = pipe.scheduler
    flow = _is_flow_matching(scheduler)
    if not flow and getattr(scheduler, "alphas_cumprod", None) is None:
        raise TypeError(f"{type(scheduler).__name__} has no alphas_cumprod to noise the image with")
    # DDPM's forward process on the pipeline's noise schedule: a pure function of the timestep, unlike the
    # add_noise of samplers that look the timestep up in the schedule of their last set_timesteps.
    diffusion = None if flow else DDPMScheduler.from_config(scheduler.config)
    length = int(scheduler.config.get("num_train_timesteps", 1000))
    whole = all(isinstance(t, int | np.integer) and not isinstance(t, bool) for t in timesteps)
    if not timesteps or not whole or not all(0 <= t < length for t in timesteps):
        raise ValueError(f"timesteps must be whole numbers in 0..{length - 1}, not {list(timesteps)}")
    device, dtype = backbone.denoiser.device, backbone.denoiser.dtype
    x = torch.from_numpy(pixels).permute(2, 0, 1)[None].to(device, pipe.vae.dtype) / 127.5 - 1
    generator = torch.Generator(device).manual_seed(seed)
    with torch.no_grad(), trace(pipe, guidance=False, **trace_options) as tc:
        latents = backbone.encode_image(x).float()
        text = backbone.encode_text(prompt)
        for t in timesteps:
            noise = torch.randn(latents.shape, generator=generator, device=device, dtype=torch.float32)
            if diffusion is None:
                sigma = t / length
                noisy = (1 - sigma) * latents + sigma * noise
            else:
                noisy = diffusion.add_noise(latents, noise, torch.tensor([t], device=device))
            backbone.denoise(noisy.to(dtype), t, text)
    return tc, pixels


def _is_flow_matching(scheduler: Any) -> bool:
    config = scheduler.config
    return (
        type(scheduler).__name__.startswith("FlowMatch")
        or config.get("prediction_type") == "flow_prediction"
        or bool(config.get("use_flow_sigmas"))
    )
