"""Tiny random-init text-to-video pipelines: a few frames at 16 to 64 px, built from configs in code.

As in ``_pipelines``, the VAEs scale by 2 in space (image = 2 x latent), and by 2 in time: a causal video
VAE encodes the first frame alone, so ``num_frames = (latent_frames - 1) * 2 + 1``.
"""

from __future__ import annotations

from typing import Any

import torch
from transformers import UMT5Config, UMT5EncoderModel

from .._dependencies import quiet_pipeline_imports
from ._pipelines import _t5
from ._tokenizers import t5_tokenizer

with quiet_pipeline_imports():
    from diffusers import (
        AutoencoderKLCogVideoX,
        AutoencoderKLWan,
        CogVideoXDDIMScheduler,
        CogVideoXPipeline,
        CogVideoXTransformer3DModel,
        FlowMatchEulerDiscreteScheduler,
        WanPipeline,
        WanTransformer3DModel,
    )


def _wan_transformer() -> WanTransformer3DModel:
    model: Any = WanTransformer3DModel(
        patch_size=(1, 2, 2),
        num_attention_heads=2,
        attention_head_dim=16,
        in_channels=4,
        out_channels=4,
        text_dim=32,
        freq_dim=16,
        ffn_dim=32,
        num_layers=2,
        cross_attn_norm=True,
        qk_norm="rms_norm_across_heads",
        rope_max_seq_len=32,
    )
    return model.eval()


def wan_vae(latent_channels: int = 4) -> AutoencoderKLWan:
    """Wan's causal video VAE, tiny: 2x in space and in time (the first frame alone), unit latent scale."""
    vae: Any = AutoencoderKLWan(
        base_dim=8,
        z_dim=latent_channels,
        dim_mult=[1, 1],
        num_res_blocks=1,
        temperal_downsample=[True],
        latents_mean=[0.0] * latent_channels,
        latents_std=[1.0] * latent_channels,
        scale_factor_temporal=2,
        scale_factor_spatial=2,
    )
    return vae.eval()


def wan_pipeline(seed: int = 0, two_stage: bool = False) -> WanPipeline:
    """Wan 2.1 (one transformer), or with ``two_stage`` Wan 2.2 A14B's layout: a high-noise ``transformer``
    for the steps with ``t >= 500`` and a low-noise ``transformer_2`` after (``boundary_ratio=0.5``)."""
    torch.manual_seed(seed)
    tok = t5_tokenizer()
    encoder = UMT5EncoderModel(
        UMT5Config(vocab_size=len(tok), d_model=32, d_ff=64, d_kv=8, num_layers=2, num_heads=4)
    ).eval()
    stages = {"transformer_2": _wan_transformer(), "boundary_ratio": 0.5} if two_stage else {}
    return WanPipeline(
        tokenizer=tok,
        text_encoder=encoder,
        vae=wan_vae(),
        scheduler=FlowMatchEulerDiscreteScheduler(shift=3.0),
        transformer=_wan_transformer(),
        **stages,
    )


def cogvideox_pipeline(seed: int = 0) -> CogVideoXPipeline:
    """CogVideoX 1.0 (5B's layout: rotary positions on the video tokens): joint attention over [text,
    video], 2x2 patches, a guidance batch."""
    torch.manual_seed(seed)
    tok = t5_tokenizer()
    vae: Any = AutoencoderKLCogVideoX(
        block_out_channels=(8, 8),
        latent_channels=4,
        layers_per_block=1,
        norm_num_groups=2,
        down_block_types=("CogVideoXDownBlock3D",) * 2,
        up_block_types=("CogVideoXUpBlock3D",) * 2,
        temporal_compression_ratio=2,
    )
    transformer: Any = CogVideoXTransformer3DModel(
        num_attention_heads=2,
        attention_head_dim=16,
        in_channels=4,
        out_channels=4,
        time_embed_dim=8,
        text_embed_dim=32,
        num_layers=2,
        sample_width=8,
        sample_height=8,
        sample_frames=5,
        patch_size=2,
        temporal_compression_ratio=2,
        max_text_seq_length=16,
        use_rotary_positional_embeddings=True,
    )
    scheduler = CogVideoXDDIMScheduler(
        timestep_spacing="trailing", prediction_type="v_prediction", rescale_betas_zero_snr=True
    )
    return CogVideoXPipeline(
        tokenizer=tok,
        text_encoder=_t5(len(tok), 32).eval(),
        vae=vae.eval(),
        transformer=transformer.eval(),
        scheduler=scheduler,
    )
