"""The pipelines the benchmark runs, random-init from configs in code (no files, no network).

- ``tiny``: the test rig's SD-2-style pipeline (``tests/rig.py``), its VAE scaling latents by 2.
- ``tiny8``: the same UNet and text encoder with a VAE that scales by 8 and ``sample_size`` 64, so that the
  reference (which reads its latent size off ``unet.config.sample_size * vae_scale_factor`` and accepts
  only 512, 768 or 1024 px) runs at 512 px on 64x64 latents.
- ``sd21``: a UNet shaped like Stable Diffusion 2.1-base (320/640/1280/1280 channels, 5/10/20/20 heads,
  1024-dim cross-attention, linear projections, 865 M parameters), a 1024-wide two-layer CLIP text encoder
  and the tiny VAE that scales by 8.
"""

from __future__ import annotations

import pathlib
import sys
from typing import Any

import torch
from diffusers import AutoencoderKL, DDIMScheduler, StableDiffusionPipeline, UNet2DConditionModel
from transformers import CLIPTextConfig, CLIPTextModel

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

from tests.rig import sd_pipeline, tokenizer

PIPELINES = ("tiny", "tiny8", "sd21")


def vae_by_8() -> AutoencoderKL:
    """A tiny VAE with four blocks: latents are 1/8 of the image, as in Stable Diffusion."""
    return AutoencoderKL(
        block_out_channels=(8, 8, 16, 16),
        down_block_types=("DownEncoderBlock2D",) * 4,
        up_block_types=("UpDecoderBlock2D",) * 4,
        latent_channels=4,
        norm_num_groups=4,
        layers_per_block=1,
    )


def sd21_unet(sample_size: int = 64) -> UNet2DConditionModel:
    """Stable Diffusion 2.1-base's UNet configuration, random weights."""
    return UNet2DConditionModel(
        sample_size=sample_size,
        block_out_channels=(320, 640, 1280, 1280),
        layers_per_block=2,
        down_block_types=("CrossAttnDownBlock2D",) * 3 + ("DownBlock2D",),
        up_block_types=("UpBlock2D",) + ("CrossAttnUpBlock2D",) * 3,
        attention_head_dim=(5, 10, 20, 20),
        cross_attention_dim=1024,
        use_linear_projection=True,
    )


def _scheduler() -> DDIMScheduler:
    return DDIMScheduler(
        beta_schedule="scaled_linear", clip_sample=False, set_alpha_to_one=False, steps_offset=1
    )


def build(name: str, seed: int = 0) -> Any:
    """One of ``PIPELINES``, float32 on the CPU, with the same weights for the same ``seed``.

    Typed ``Any``: diffusers' lazily imported pipeline classes look untyped to mypy.
    """
    if name == "tiny":
        return sd_pipeline("sd2", seed=seed)
    if name == "tiny8":
        rig: Any = sd_pipeline("sd2", seed=seed)
        torch.manual_seed(seed)
        unet = UNet2DConditionModel.from_config(rig.unet.config, sample_size=64)
        return StableDiffusionPipeline(**{**rig.components, "unet": unet, "vae": vae_by_8()})
    if name == "sd21":
        torch.manual_seed(seed)
        tok = tokenizer()
        text = CLIPTextConfig(
            vocab_size=len(tok),
            hidden_size=1024,
            intermediate_size=2048,
            num_hidden_layers=2,
            num_attention_heads=4,
            max_position_embeddings=77,
            projection_dim=1024,
            bos_token_id=len(tok) - 2,
            eos_token_id=len(tok) - 1,
            pad_token_id=len(tok) - 1,
        )
        return StableDiffusionPipeline(
            vae=vae_by_8(),
            text_encoder=CLIPTextModel(text),
            tokenizer=tok,
            unet=sd21_unet(),
            scheduler=_scheduler(),
            safety_checker=None,
            feature_extractor=None,
            requires_safety_checker=False,
        )
    raise ValueError(f"unknown pipeline {name!r}; pipelines are: {', '.join(PIPELINES)}")
