"""Tiny random-init diffusers pipelines of every supported family, built from configs in code.

Every pipeline here runs in well under a second on one CPU core and needs no file and no network. The
UNet shapes are chosen so that cross-attention runs at several resolutions, the mid block included. The
VAE scales latents by 2 (image = 2 x latent), except for PixArt and Sana (8), whose resolution binning
picks sizes of hundreds of pixels.
"""

from __future__ import annotations

from typing import Any

import torch
from transformers import (
    CLIPTextConfig,
    CLIPTextModel,
    CLIPTextModelWithProjection,
    Gemma2Config,
    Gemma2Model,
    GemmaTokenizer,
    T5Config,
    T5EncoderModel,
)

from .._dependencies import quiet_pipeline_imports
from ._tokenizers import clip_tokenizer, gemma_tokenizer, t5_tokenizer

with quiet_pipeline_imports():
    from diffusers import (
        AutoencoderDC,
        AutoencoderKL,
        DDIMScheduler,
        DPMSolverMultistepScheduler,
        EulerDiscreteScheduler,
        FlowMatchEulerDiscreteScheduler,
        FluxPipeline,
        FluxTransformer2DModel,
        PixArtAlphaPipeline,
        PixArtSigmaPipeline,
        PixArtTransformer2DModel,
        SanaPipeline,
        SanaTransformer2DModel,
        SD3Transformer2DModel,
        StableDiffusion3Pipeline,
        StableDiffusionPipeline,
        StableDiffusionXLPipeline,
        UNet2DConditionModel,
    )


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


def _t5(vocab_size: int, d_model: int) -> T5EncoderModel:
    return T5EncoderModel(
        T5Config(vocab_size=vocab_size, d_model=d_model, d_ff=2 * d_model, d_kv=8, num_layers=2, num_heads=4)
    )


def _vae(
    block_out_channels: tuple[int, ...] = (8, 16), latent_channels: int = 4, **config: Any
) -> AutoencoderKL:
    """Scales the image by 2 per block after the first."""
    return AutoencoderKL(
        block_out_channels=block_out_channels,
        down_block_types=("DownEncoderBlock2D",) * len(block_out_channels),
        up_block_types=("UpDecoderBlock2D",) * len(block_out_channels),
        latent_channels=latent_channels,
        norm_num_groups=4,
        layers_per_block=1,
        **config,
    )


def vae_by_8(latent_channels: int = 4, **config: Any) -> AutoencoderKL:
    """A tiny VAE with four blocks: latents are 1/8 of the image, as in Stable Diffusion (the pipelines
    above use two blocks, 1/2, to stay small at small image sizes)."""
    return AutoencoderKL(
        block_out_channels=(8, 8, 16, 16),
        down_block_types=("DownEncoderBlock2D",) * 4,
        up_block_types=("UpDecoderBlock2D",) * 4,
        latent_channels=latent_channels,
        norm_num_groups=4,
        layers_per_block=1,
        **config,
    )


def _in_eval_mode(**components: Any) -> dict[str, Any]:
    """Config-built models start in train mode, where T5's dropout would make two calls differ."""
    for component in components.values():
        if isinstance(component, torch.nn.Module):
            component.eval()
    return components


def sd_pipeline(style: str = "sd1", seed: int = 0) -> StableDiffusionPipeline:
    """SD-1-style (conv projections, one head count) or SD-2-style (linear projections, per-block heads)."""
    if style not in ("sd1", "sd2"):
        raise ValueError(f"style must be 'sd1' or 'sd2', not {style!r}")
    torch.manual_seed(seed)
    tok = clip_tokenizer()
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
    tok = clip_tokenizer()
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
        tokenizer_2=clip_tokenizer(),
        unet=unet,
        scheduler=EulerDiscreteScheduler(beta_schedule="scaled_linear"),
    )


def sd3_pipeline(seed: int = 0, dual_attention: bool = False) -> StableDiffusion3Pipeline:
    """SD3: two CLIPs with projections and a T5, joint attention; ``dual_attention``: see sd35_pipeline."""
    torch.manual_seed(seed)
    tok = clip_tokenizer()
    t5_tok = t5_tokenizer()
    transformer = SD3Transformer2DModel(
        sample_size=16,
        patch_size=2,
        in_channels=4,
        out_channels=4,
        num_layers=2,
        attention_head_dim=8,
        num_attention_heads=4,
        caption_projection_dim=32,
        joint_attention_dim=64,
        pooled_projection_dim=64,
        pos_embed_max_size=32,
        **({"dual_attention_layers": (0,), "qk_norm": "rms_norm"} if dual_attention else {}),
    )
    return StableDiffusion3Pipeline(
        **_in_eval_mode(
            transformer=transformer,
            scheduler=FlowMatchEulerDiscreteScheduler(),
            vae=_vae(shift_factor=0.0609, scaling_factor=1.5305),
            text_encoder=CLIPTextModelWithProjection(_text_config(len(tok), 32, projection_dim=32)),
            tokenizer=tok,
            text_encoder_2=CLIPTextModelWithProjection(_text_config(len(tok), 32, projection_dim=32)),
            tokenizer_2=clip_tokenizer(),
            text_encoder_3=_t5(len(t5_tok), 64),
            tokenizer_3=t5_tok,
        )
    )


def sd35_pipeline(seed: int = 0) -> StableDiffusion3Pipeline:
    """SD3.5: RMS-normed q/k, and the first block also has an image-only self-attention ``attn2``."""
    return sd3_pipeline(seed, dual_attention=True)


def flux_pipeline(seed: int = 0, guidance_embeds: bool = False) -> FluxPipeline:
    """Flux: 2 double- and 2 single-stream blocks, RoPE, 2x2-packed latents; ``guidance_embeds``: as dev."""
    torch.manual_seed(seed)
    tok = clip_tokenizer()
    t5_tok = t5_tokenizer()
    transformer = FluxTransformer2DModel(
        patch_size=1,
        in_channels=16,
        num_layers=2,
        num_single_layers=2,
        attention_head_dim=16,
        num_attention_heads=2,
        joint_attention_dim=32,
        pooled_projection_dim=32,
        guidance_embeds=guidance_embeds,
        axes_dims_rope=(4, 4, 8),
    )
    return FluxPipeline(
        **_in_eval_mode(
            scheduler=FlowMatchEulerDiscreteScheduler(),
            vae=_vae(shift_factor=0.1159, scaling_factor=0.3611),
            text_encoder=CLIPTextModel(_text_config(len(tok), 32)),
            tokenizer=tok,
            text_encoder_2=_t5(len(t5_tok), 32),
            tokenizer_2=t5_tok,
            transformer=transformer,
        )
    )


def pixart_pipeline(seed: int = 0, sigma: bool = False) -> PixArtAlphaPipeline | PixArtSigmaPipeline:
    """PixArt-alpha or -sigma: T5, cross-attention, a VAE scaling by 8 (as the real one) and sample size 32,
    so that resolution binning (the default) works, with PixArt's 256-pixel bins."""
    torch.manual_seed(seed)
    t5_tok = t5_tokenizer()
    transformer = PixArtTransformer2DModel(
        sample_size=32,
        patch_size=2,
        in_channels=4,
        out_channels=8,
        num_layers=2,
        attention_head_dim=8,
        num_attention_heads=4,
        cross_attention_dim=32,
        caption_channels=32,
    )
    pipeline = PixArtSigmaPipeline if sigma else PixArtAlphaPipeline
    return pipeline(
        **_in_eval_mode(
            tokenizer=t5_tok,
            text_encoder=_t5(len(t5_tok), 32),
            vae=_vae((4, 4, 4, 4)),
            transformer=transformer,
            scheduler=DPMSolverMultistepScheduler(),
        )
    )


def sana_text_encoder(tok: GemmaTokenizer) -> Gemma2Model:
    """Sana's Gemma 2 encoder, tiny: 2 layers of 32 features, 2 heads of 16."""
    return Gemma2Model(
        Gemma2Config(
            vocab_size=len(tok),
            hidden_size=32,
            intermediate_size=64,
            num_hidden_layers=2,
            num_attention_heads=2,
            num_key_value_heads=2,
            head_dim=16,
            pad_token_id=tok.pad_token_id,
        )
    )


def sana_pipeline(seed: int = 0) -> SanaPipeline:
    """Sana: a Gemma-2 text encoder, linear self-attention and cross-attention, a deep-compression VAE."""
    torch.manual_seed(seed)
    tok = gemma_tokenizer()
    text_encoder = sana_text_encoder(tok)
    transformer = SanaTransformer2DModel(
        in_channels=4,
        out_channels=4,
        num_layers=2,
        num_attention_heads=2,
        attention_head_dim=16,
        num_cross_attention_heads=2,
        cross_attention_head_dim=16,
        cross_attention_dim=32,
        caption_channels=32,
        sample_size=16,
    )
    vae = AutoencoderDC(
        latent_channels=4,
        attention_head_dim=2,
        encoder_block_types=("ResBlock", "ResBlock", "ResBlock", "EfficientViTBlock"),
        decoder_block_types=("ResBlock", "ResBlock", "ResBlock", "EfficientViTBlock"),
        encoder_block_out_channels=(4, 8, 8, 8),
        decoder_block_out_channels=(4, 8, 8, 8),
        encoder_layers_per_block=(1, 1, 1, 1),
        decoder_layers_per_block=(1, 1, 1, 1),
        encoder_qkv_multiscales=((), (), (), (5,)),
        decoder_qkv_multiscales=((), (), (), (5,)),
        scaling_factor=0.41407,
    )
    return SanaPipeline(
        **_in_eval_mode(
            tokenizer=tok,
            text_encoder=text_encoder,
            vae=vae,
            transformer=transformer,
            scheduler=FlowMatchEulerDiscreteScheduler(shift=3.0),
        )
    )
