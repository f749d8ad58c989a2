"""A tiny random-init LTX-2 text-to-video (and audio) pipeline, built from configs in code.

The real ``LTX2Pipeline`` with its real parts at tiny sizes: a Gemma-3 encoder
(``Gemma3ForConditionalGeneration``, 2 layers of 32 features, and a vision tower of one layer that
text-to-video never runs) with ``gemma_tokenizer``; the text connectors (one block per stream, 8 learned
registers); the audio-video transformer (2 blocks, video 2 heads of 8, audio 2 heads of 4) with the
perturbed-attention processors that spatio-temporal guidance skips self-attention with; the causal video
VAE, 4x in time and in space, so that ``num_frames = (latent_frames - 1) * 4 + 1`` (LTX-2's own is 8x in
time, 32x in space); and the audio VAE and vocoder the pipeline always decodes the audio with.
"""

from __future__ import annotations

from typing import Any

import torch
from transformers import Gemma3Config, Gemma3ForConditionalGeneration

from .._dependencies import quiet_pipeline_imports
from ._tokenizers import gemma_tokenizer

with quiet_pipeline_imports():
    from diffusers import (
        AutoencoderKLLTX2Audio,
        AutoencoderKLLTX2Video,
        FlowMatchEulerDiscreteScheduler,
        LTX2Pipeline,
        LTX2VideoTransformer3DModel,
    )
    from diffusers.pipelines.ltx2 import LTX2TextConnectors
    from diffusers.pipelines.ltx2.vocoder import LTX2Vocoder

_TEXT = 32
"""Gemma's hidden size: the connectors' width (2 heads of 16) and the transformer's caption channels."""
_LAYERS = 2
"""Gemma's layers: the pipeline stacks their ``_LAYERS + 1`` hidden states per token."""
REGISTERS = 8
"""The connectors' learned registers: the text window must be a multiple of it."""


def _gemma3(vocab_size: int) -> Gemma3ForConditionalGeneration:
    text = {
        "vocab_size": vocab_size,
        "hidden_size": _TEXT,
        "intermediate_size": 2 * _TEXT,
        "num_hidden_layers": _LAYERS,
        "num_attention_heads": 2,
        "num_key_value_heads": 1,
        "head_dim": 16,
        "query_pre_attn_scalar": 16,
        "sliding_window": 8,
    }
    vision = {
        "hidden_size": 8,
        "intermediate_size": 16,
        "num_hidden_layers": 1,
        "num_attention_heads": 1,
        "image_size": 16,
        "patch_size": 8,
    }
    config = Gemma3Config(text_config=text, vision_config=vision, mm_tokens_per_image=1)
    return Gemma3ForConditionalGeneration(config).eval()


def _connectors() -> LTX2TextConnectors:
    stream = {"num_attention_heads": 2, "attention_head_dim": _TEXT // 2, "num_layers": 1}
    options: dict[str, Any] = {
        f"{modality}_connector_{key}": value
        for modality in ("video", "audio")
        for key, value in stream.items()
    }
    options |= {f"{m}_connector_num_learnable_registers": REGISTERS for m in ("video", "audio")}
    connectors: Any = LTX2TextConnectors(
        caption_channels=_TEXT, text_proj_in_factor=_LAYERS + 1, connector_rope_base_seq_len=32, **options
    )
    return connectors.eval()


def _transformer() -> LTX2VideoTransformer3DModel:
    transformer: Any = LTX2VideoTransformer3DModel(
        in_channels=4,
        out_channels=4,
        num_attention_heads=2,
        attention_head_dim=8,
        cross_attention_dim=16,
        vae_scale_factors=(4, 4, 4),
        audio_in_channels=4,  # 2 latent channels x 2 latent mel bins
        audio_out_channels=4,
        audio_num_attention_heads=2,
        audio_attention_head_dim=4,
        audio_cross_attention_dim=8,
        num_layers=2,
        caption_channels=_TEXT,
        perturbed_attn=True,
    )
    return transformer.eval()


def _video_vae() -> AutoencoderKLLTX2Video:
    vae: Any = AutoencoderKLLTX2Video(
        latent_channels=4,
        block_out_channels=(8, 8),
        down_block_types=("LTX2VideoDownBlock3D",) * 2,
        decoder_block_out_channels=(8, 8),
        layers_per_block=(1, 1, 1),
        decoder_layers_per_block=(1, 1, 1),
        spatio_temporal_scaling=(True, True),
        decoder_spatio_temporal_scaling=(True, True),
        decoder_inject_noise=(False, False, False),
        downsample_type=("spatiotemporal", "spatiotemporal"),
        upsample_type=("spatiotemporal", "spatiotemporal"),
        upsample_residual=(False, False),
        upsample_factor=(1, 1),
        patch_size=1,
    )
    return vae.eval()


def _audio() -> tuple[AutoencoderKLLTX2Audio, LTX2Vocoder]:
    """The audio VAE (8 mel bins, 2 latent channels, 4x in time and in mel bins) and a vocoder of two
    upsampling stages."""
    audio_vae: Any = AutoencoderKLLTX2Audio(
        base_channels=4,
        output_channels=2,
        ch_mult=(1,),
        num_res_blocks=1,
        attn_resolutions=None,
        in_channels=2,
        latent_channels=2,
        norm_type="pixel",
        mid_block_add_attention=False,
        mel_bins=8,
    )
    vocoder: Any = LTX2Vocoder(
        in_channels=2 * 8,
        hidden_channels=8,
        out_channels=2,
        upsample_kernel_sizes=[4, 4],
        upsample_factors=[2, 2],
        resnet_kernel_sizes=[3],
        resnet_dilations=[[1, 3, 5]],
        output_sampling_rate=16000,
    )
    return audio_vae.eval(), vocoder.eval()


def ltx2_pipeline(seed: int = 0) -> LTX2Pipeline:
    """LTX-2: Gemma-3's stacked hidden states through the connectors, whose video stream is the key of
    every block's ``attn2``; the prompt's valid tokens first, then learned registers. Heights and widths
    are multiples of 32 (the pipeline refuses others); ``max_sequence_length`` a multiple of 8."""
    torch.manual_seed(seed)
    tok = gemma_tokenizer(model_max_length=64)
    audio_vae, vocoder = _audio()
    return LTX2Pipeline(
        scheduler=FlowMatchEulerDiscreteScheduler(),
        vae=_video_vae(),
        audio_vae=audio_vae,
        text_encoder=_gemma3(len(tok)),
        tokenizer=tok,
        connectors=_connectors(),
        transformer=_transformer(),
        vocoder=vocoder,
    )
