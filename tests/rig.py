"""Tiny random-init diffusers pipelines built from configs in code: the offline test rig.

Every pipeline here runs in well under a second on one CPU core and needs no file and no network. The
shapes are chosen so that cross-attention runs at several resolutions, the mid block included, and so
that the VAE scales latents by 2 (image = 2 x latent).
"""

from __future__ import annotations

import torch
from diffusers import (
    AutoencoderKL,
    DDIMScheduler,
    EulerDiscreteScheduler,
    StableDiffusionPipeline,
    StableDiffusionXLPipeline,
    UNet2DConditionModel,
)
from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

from daam_widget.toy._tokenizer import make_clip_tokenizer

WORDS = (
    "a an the of on in and with to left right above below photo picture small big "
    "dog cat hat circle square triangle star red green blue yellow purple orange"
).split()


def tokenizer(model_max_length: int = 77):
    return make_clip_tokenizer(WORDS, model_max_length=model_max_length)


def _text_config(vocab_size: int, hidden: int, projection_dim: int | None = None) -> CLIPTextConfig:
    return CLIPTextConfig(
        vocab_size=vocab_size,
        hidden_size=hidden,
        intermediate_size=2 * hidden,
        num_hidden_layers=2,
        num_attention_heads=4,
        max_position_embeddings=77,
        projection_dim=projection_dim or hidden,
        bos_token_id=vocab_size - 2,
        eos_token_id=vocab_size - 1,
        pad_token_id=vocab_size - 1,
    )


def _vae() -> AutoencoderKL:
    return AutoencoderKL(
        block_out_channels=(8, 16),
        down_block_types=("DownEncoderBlock2D", "DownEncoderBlock2D"),
        up_block_types=("UpDecoderBlock2D", "UpDecoderBlock2D"),
        latent_channels=4,
        norm_num_groups=4,
        layers_per_block=1,
    )


def sd_pipeline(style: str = "sd1", seed: int = 0) -> StableDiffusionPipeline:
    """SD-1-style (conv projections, one head count) or SD-2-style (linear projections, per-block heads)."""
    if style not in ("sd1", "sd2"):
        raise ValueError(f"style must be 'sd1' or 'sd2', not {style!r}")
    torch.manual_seed(seed)
    tok = tokenizer()
    unet = UNet2DConditionModel(
        sample_size=16,
        block_out_channels=(16, 32, 32),
        layers_per_block=1,
        down_block_types=("CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"),
        cross_attention_dim=32,
        attention_head_dim=2 if style == "sd1" else (2, 4, 4),
        use_linear_projection=style == "sd2",
        norm_num_groups=4,
    )
    return StableDiffusionPipeline(
        vae=_vae(),
        text_encoder=CLIPTextModel(_text_config(len(tok), 32)),
        tokenizer=tok,
        unet=unet,
        scheduler=DDIMScheduler(
            beta_schedule="scaled_linear", clip_sample=False, set_alpha_to_one=False, steps_offset=1
        ),
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )


def sdxl_pipeline(seed: int = 0) -> StableDiffusionXLPipeline:
    """Two text encoders (32 + 32 features), text-time conditioning, 1 and 2 transformer layers per block."""
    torch.manual_seed(seed)
    tok = tokenizer()
    unet = UNet2DConditionModel(
        sample_size=16,
        block_out_channels=(16, 32),
        layers_per_block=1,
        down_block_types=("CrossAttnDownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "CrossAttnUpBlock2D"),
        attention_head_dim=(2, 4),
        use_linear_projection=True,
        addition_embed_type="text_time",
        addition_time_embed_dim=8,
        transformer_layers_per_block=(1, 2),
        projection_class_embeddings_input_dim=6 * 8 + 32,
        cross_attention_dim=64,
        norm_num_groups=4,
    )
    return StableDiffusionXLPipeline(
        vae=_vae(),
        text_encoder=CLIPTextModel(_text_config(len(tok), 32)),
        text_encoder_2=CLIPTextModelWithProjection(_text_config(len(tok), 32, projection_dim=32)),
        tokenizer=tok,
        tokenizer_2=tokenizer(),
        unet=unet,
        scheduler=EulerDiscreteScheduler(beta_schedule="scaled_linear"),
    )
