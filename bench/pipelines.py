"""The pipelines the benchmark runs, random-init from configs in code (no files, no network).

- ``tiny``: the SD-2-style pipeline of ``daam_widget.testing``, its VAE scaling latents by 2.
- ``tiny8``: the same UNet and text encoder with a VAE that scales by 8 and ``sample_size`` 64, so that the
  reference (which reads its latent size off ``unet.config.sample_size * vae_scale_factor`` and accepts
  only 512, 768 or 1024 px) runs at 512 px on 64x64 latents.
- ``sd21``: a UNet shaped like Stable Diffusion 2.1-base (320/640/1280/1280 channels, 5/10/20/20 heads,
  1024-dim cross-attention, linear projections, 865 M parameters), a 1024-wide two-layer CLIP text encoder
  and the tiny VAE that scales by 8.
- ``sdxl``: a UNet shaped like SDXL-base (320/640/1280 channels, 1/2/10 transformer layers, 2048-dim
  cross-attention, text-time conditioning; 2.6 B parameters) with one-layer CLIP-L and CLIP-G encoders.
- ``flux``: a transformer shaped like Flux.1-dev (19 double- and 38 single-stream blocks of 24 heads of
  128, 4096-dim T5 features, guidance embedding; 11.9 B parameters); ``flux-3``: its first double-stream
  block and two single-stream blocks (0.6 B), the same per-layer work at a size a CPU runs.
- ``wan``: a transformer shaped like Wan2.1-T2V-1.3B (30 blocks of 12 heads of 128, 1x2x2 patches, cross
  attention to umT5's 4096 features; 1.4 B parameters) with a one-layer umT5 encoder of that width and the
  tiny test VAE (2x in space and time, 16 latent channels): it makes videos.
- ``sd35m``: a transformer shaped like SD3.5-Medium (24 blocks of 24 heads of 64, image-only second
  attention in blocks 0-12, RMS q/k norms; 2.2 B parameters); ``sd35m-4``: its first 4 blocks (0.4 B).

The transformers' text encoders are one-layer random models of the real widths (CLIP-L 768, CLIP-G 1280,
T5 4096), and their VAE is the tiny one scaling by 8 with 16 latent channels: the benchmark measures the
denoiser, where the tracer works.

``build(name, narrow=n)`` divides every width (channels, head size, text features) by ``n`` and keeps
everything else: the layers, heads, resolutions and so every operation a step dispatches, at a size the
default test suite runs (``tests/test_step_share.py``).
"""

from __future__ import annotations

from typing import Any

import torch
from diffusers import (
    DDIMScheduler,
    EulerDiscreteScheduler,
    FlowMatchEulerDiscreteScheduler,
    FluxPipeline,
    FluxTransformer2DModel,
    SD3Transformer2DModel,
    StableDiffusion3Pipeline,
    StableDiffusionPipeline,
    StableDiffusionXLPipeline,
    UNet2DConditionModel,
    WanPipeline,
    WanTransformer3DModel,
)
from transformers import (
    CLIPTextConfig,
    CLIPTextModel,
    CLIPTextModelWithProjection,
    T5Config,
    T5EncoderModel,
    UMT5Config,
    UMT5EncoderModel,
)

from daam_widget.testing import clip_tokenizer, sd_pipeline, t5_tokenizer, vae_by_8
from daam_widget.testing._video_pipelines import wan_vae

PIPELINES = ("tiny", "tiny8", "sd21", "sdxl", "flux", "flux-3", "sd35m", "sd35m-4", "wan")


def _clip(hidden: int, projection: bool = False) -> CLIPTextModel:
    """A one-layer CLIP text encoder of the given width (for ``daam_widget.testing.clip_tokenizer``)."""
    tok = clip_tokenizer()
    config = CLIPTextConfig(
        vocab_size=len(tok),
        hidden_size=hidden,
        intermediate_size=hidden,
        num_hidden_layers=1,
        num_attention_heads=8,
        max_position_embeddings=77,
        projection_dim=hidden,
        bos_token_id=len(tok) - 2,
        eos_token_id=len(tok) - 1,
        pad_token_id=len(tok) - 1,
    )
    return CLIPTextModelWithProjection(config) if projection else CLIPTextModel(config)


def _t5(narrow: int = 1) -> T5EncoderModel:
    """A one-layer T5 encoder with T5-XXL's 4096 features."""
    config = T5Config(
        vocab_size=len(t5_tokenizer()),
        d_model=4096 // narrow,
        d_kv=64 // narrow,
        d_ff=1024 // narrow,
        num_layers=1,
        num_heads=8,
    )
    return T5EncoderModel(config)


def sdxl(narrow: int = 1) -> Any:
    """SDXL-base's UNet configuration, random weights, with one-layer text encoders of its widths."""
    unet = UNet2DConditionModel(
        sample_size=128,
        block_out_channels=(320 // narrow, 640 // narrow, 1280 // narrow),
        norm_num_groups=32 // narrow,
        layers_per_block=2,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"),
        transformer_layers_per_block=(1, 2, 10),
        attention_head_dim=(5, 10, 20),
        cross_attention_dim=2048 // narrow,
        use_linear_projection=True,
        addition_embed_type="text_time",
        addition_time_embed_dim=256 // narrow,
        projection_class_embeddings_input_dim=2816 // narrow,
    )
    return StableDiffusionXLPipeline(
        vae=vae_by_8(),
        text_encoder=_clip(768 // narrow),
        text_encoder_2=_clip(1280 // narrow, projection=True),
        tokenizer=clip_tokenizer(),
        tokenizer_2=clip_tokenizer(),
        unet=unet,
        scheduler=EulerDiscreteScheduler(beta_schedule="scaled_linear"),
    )


def flux(double: int = 19, single: int = 38, narrow: int = 1) -> Any:
    """Flux.1-dev's transformer configuration with ``double`` and ``single`` blocks, random weights."""
    transformer = FluxTransformer2DModel(
        patch_size=1,
        in_channels=64,
        num_layers=double,
        num_single_layers=single,
        attention_head_dim=128 // narrow,
        num_attention_heads=24,
        joint_attention_dim=4096 // narrow,
        pooled_projection_dim=768 // narrow,
        guidance_embeds=True,
        axes_dims_rope=(16, 56, 56) if narrow == 1 else (128 // narrow - 8, 4, 4),
    )
    return FluxPipeline(
        scheduler=FlowMatchEulerDiscreteScheduler(),
        vae=vae_by_8(16, shift_factor=0.1159, scaling_factor=0.3611),
        text_encoder=_clip(768 // narrow),
        tokenizer=clip_tokenizer(),
        text_encoder_2=_t5(narrow),
        tokenizer_2=t5_tokenizer(),
        transformer=transformer,
    )


def sd35_medium(layers: int = 24) -> Any:
    """SD3.5-Medium's transformer configuration with its first ``layers`` blocks, random weights."""
    transformer = SD3Transformer2DModel(
        sample_size=128,
        patch_size=2,
        in_channels=16,
        out_channels=16,
        num_layers=layers,
        attention_head_dim=64,
        num_attention_heads=24,
        joint_attention_dim=4096,
        caption_projection_dim=1536,
        pooled_projection_dim=2048,
        pos_embed_max_size=384,
        dual_attention_layers=tuple(range(min(13, layers))),
        qk_norm="rms_norm",
    )
    return StableDiffusion3Pipeline(
        transformer=transformer,
        scheduler=FlowMatchEulerDiscreteScheduler(shift=3.0),
        vae=vae_by_8(16, shift_factor=0.0609, scaling_factor=1.5305),
        text_encoder=_clip(768, projection=True),
        tokenizer=clip_tokenizer(),
        text_encoder_2=_clip(1280, projection=True),
        tokenizer_2=clip_tokenizer(),
        text_encoder_3=_t5(),
        tokenizer_3=t5_tokenizer(),
    )


def sd21_unet(sample_size: int = 64, narrow: int = 1) -> UNet2DConditionModel:
    """Stable Diffusion 2.1-base's UNet configuration, random weights."""
    return UNet2DConditionModel(
        sample_size=sample_size,
        block_out_channels=tuple(c // narrow for c in (320, 640, 1280, 1280)),
        norm_num_groups=32 // narrow,
        layers_per_block=2,
        down_block_types=("CrossAttnDownBlock2D",) * 3 + ("DownBlock2D",),
        up_block_types=("UpBlock2D",) + ("CrossAttnUpBlock2D",) * 3,
        attention_head_dim=(5, 10, 20, 20),
        cross_attention_dim=1024 // narrow,
        use_linear_projection=True,
    )


def wan(narrow: int = 1) -> Any:
    """Wan2.1-T2V-1.3B's transformer configuration, random weights, a one-layer umT5 of its text width."""
    tok = t5_tokenizer()
    width = 4096 // narrow
    encoder = UMT5EncoderModel(
        UMT5Config(
            vocab_size=len(tok), d_model=width, d_ff=width, d_kv=64 // narrow, num_layers=1, num_heads=4
        )
    )
    transformer = WanTransformer3DModel(
        patch_size=(1, 2, 2),
        num_attention_heads=12,
        attention_head_dim=128 // narrow,
        in_channels=16,
        out_channels=16,
        text_dim=width,
        freq_dim=256,
        ffn_dim=8960 // narrow,
        num_layers=30,
        cross_attn_norm=True,
        qk_norm="rms_norm_across_heads",
        eps=1e-6,
    )
    scheduler = FlowMatchEulerDiscreteScheduler(shift=3.0)
    return WanPipeline(
        tokenizer=tok, text_encoder=encoder, vae=wan_vae(16), scheduler=scheduler, transformer=transformer
    )


def _scheduler() -> DDIMScheduler:
    return DDIMScheduler(
        beta_schedule="scaled_linear", clip_sample=False, set_alpha_to_one=False, steps_offset=1
    )


def build(name: str, seed: int = 0, device: str = "cpu", narrow: int = 1) -> Any:
    """One of ``PIPELINES``, float32, with the same weights for the same ``seed``, built on ``device``
    directly (a multi-billion-parameter model initialises slowly on a CPU), every width divided by
    ``narrow`` (sd21, sdxl, flux, flux-3 and wan). The scheduler is rebuilt outside the device block: its
    tables must stay on the CPU.

    Typed ``Any``: diffusers' lazily imported pipeline classes look untyped to mypy.
    """
    torch.manual_seed(seed)
    with torch.device(device):
        pipe = _build(name, seed, narrow)
    pipe.scheduler = type(pipe.scheduler).from_config(pipe.scheduler.config)
    for component in pipe.components.values():
        if isinstance(component, torch.nn.Module):
            component.eval()
    return pipe


def _build(name: str, seed: int, narrow: int) -> Any:
    if name == "sdxl":
        return sdxl(narrow)
    if name == "flux":
        return flux(narrow=narrow)
    if name == "flux-3":
        return flux(double=1, single=2, narrow=narrow)
    if name == "wan":
        return wan(narrow)
    if name == "sd35m":
        return sd35_medium()
    if name == "sd35m-4":
        return sd35_medium(layers=4)
    if name == "tiny":
        return sd_pipeline("sd2", seed=seed)
    if name == "tiny8":
        tiny: Any = sd_pipeline("sd2", seed=seed)
        torch.manual_seed(seed)
        unet = UNet2DConditionModel.from_config(tiny.unet.config, sample_size=64)
        return StableDiffusionPipeline(**{**tiny.components, "unet": unet, "vae": vae_by_8()})
    if name == "sd21":
        torch.manual_seed(seed)
        tok = clip_tokenizer()
        text = CLIPTextConfig(
            vocab_size=len(tok),
            hidden_size=1024 // narrow,
            intermediate_size=2048 // narrow,
            num_hidden_layers=2,
            num_attention_heads=4,
            max_position_embeddings=77,
            projection_dim=1024 // narrow,
            bos_token_id=len(tok) - 2,
            eos_token_id=len(tok) - 1,
            pad_token_id=len(tok) - 1,
        )
        return StableDiffusionPipeline(
            vae=vae_by_8(),
            text_encoder=CLIPTextModel(text),
            tokenizer=tok,
            unet=sd21_unet(narrow=narrow),
            scheduler=_scheduler(),
            safety_checker=None,
            feature_extractor=None,
            requires_safety_checker=False,
        )
    raise ValueError(f"unknown pipeline {name!r}; pipelines are: {', '.join(PIPELINES)}")
