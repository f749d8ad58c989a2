"""Tiny random-init text-to-video pipelines of the video siblings of image families: Kandinsky 5 T2V
(Kandinsky 5's encoders and DiT, HunyuanVideo's VAE) and SanaVideo (Sana's Gemma 2 encoder, Wan 2.1's VAE),
built from configs in code with the image families' offline tokenizers.

Their VAEs scale by 2 in space, as in ``_video_pipelines``. In time, HunyuanVideo's VAE compresses by 4
or 8 only: the Kandinsky 5 pipeline takes ``num_frames = (latent_frames - 1) * 4 + 1`` (9 frames: 3 latent
frames); SanaVideo's Wan VAE compresses by 2 (5 frames: 3 latent frames).
"""

from __future__ import annotations

from typing import Any

import torch
from transformers import CLIPTextModel

from .._dependencies import quiet_pipeline_imports
from ._chat_pipelines import kandinsky5_tokenizer, kandinsky5_transformer
from ._llm_pipelines import _HIDDEN, _qwen2_5_vl
from ._pipelines import _in_eval_mode, _text_config, sana_text_encoder
from ._tokenizers import clip_tokenizer, gemma_tokenizer
from ._video_pipelines import wan_vae

with quiet_pipeline_imports():
    from diffusers import (
        AutoencoderKLHunyuanVideo,
        FlowMatchEulerDiscreteScheduler,
        Kandinsky5T2VPipeline,
        SanaVideoPipeline,
        SanaVideoTransformer3DModel,
    )


def hunyuan_video_vae() -> AutoencoderKLHunyuanVideo:
    """HunyuanVideo's causal VAE (Kandinsky 5 T2V's), tiny: 3 blocks of 8 channels, 4 latent channels, 2x in
    space and 4x in time. The first frame is decoded from latent frame 0 alone, each later latent frame
    gives 4 frames. It decodes more than 4 latent frames in overlapping parts of 5 (its
    ``use_framewise_decoding``), blended outside the decoder."""
    vae: Any = AutoencoderKLHunyuanVideo(
        latent_channels=4,
        down_block_types=("HunyuanVideoDownBlock3D",) * 3,
        up_block_types=("HunyuanVideoUpBlock3D",) * 3,
        block_out_channels=(8, 8, 8),
        layers_per_block=1,
        norm_num_groups=4,
        spatial_compression_ratio=2,
        temporal_compression_ratio=4,
    )
    return vae.eval()


def kandinsky5_t2v_pipeline(seed: int = 0) -> Kandinsky5T2VPipeline:
    """Kandinsky 5 text-to-video: ``kandinsky5_pipeline``'s Qwen2.5-VL and CLIP encoders and DiT (with the
    video models' image-condition channels, zeros in text-to-video), and HunyuanVideo's VAE.

    The pipeline drops the template's system turn by count (``prompt_template_encode_start_idx``, 128 for
    the real tokenizer); the tiny tokenizer spells most of its words in pieces, so the count is set to its
    own. Sides are multiples of 16 pixels; 32 x 48 pixels is an 8 x 12 grid. Guidance runs the transformer
    twice per step, prompt first, then the negative prompt."""
    torch.manual_seed(seed)
    tok = kandinsky5_tokenizer()
    clip_tok = clip_tokenizer()
    pipe: Any = Kandinsky5T2VPipeline(
        **_in_eval_mode(
            transformer=kandinsky5_transformer(visual_cond=True),
            vae=hunyuan_video_vae(),
            text_encoder=_qwen2_5_vl(tok, 2),
            tokenizer=tok,
            text_encoder_2=CLIPTextModel(_text_config(len(clip_tok), _HIDDEN)),
            tokenizer_2=clip_tok,
            scheduler=FlowMatchEulerDiscreteScheduler(),
        )
    )
    system_turn = pipe.prompt_template.partition("{}")[0]
    pipe.prompt_template_encode_start_idx = len(tok(system_turn)["input_ids"])
    return pipe


def sana_video_pipeline(seed: int = 0) -> SanaVideoPipeline:
    """SanaVideo: ``sana_pipeline``'s Gemma 2 encoder, a transformer of 2 blocks (linear self-attention with
    3-axis rotary positions, cross-attention of 2 heads of 16 with q/k norms across heads, 1 x 2 x 2
    patches), Wan 2.1's VAE.

    Sides are multiples of 32 pixels; 32 x 64 pixels is an 8 x 16 grid. The resolution binning of the real
    models (``sample_size`` 30: 480p; 22: 720p) is the 480p table's; at these sizes, pass
    ``use_resolution_binning=False``. Guidance is one ``[negative, positive]`` batch."""
    torch.manual_seed(seed)
    tok = gemma_tokenizer()
    transformer = SanaVideoTransformer3DModel(
        in_channels=4,
        out_channels=4,
        num_attention_heads=2,
        attention_head_dim=16,
        num_layers=2,
        num_cross_attention_heads=2,
        cross_attention_head_dim=16,
        cross_attention_dim=32,
        caption_channels=32,
        sample_size=30,
        rope_max_seq_len=32,
    )
    return SanaVideoPipeline(
        **_in_eval_mode(
            tokenizer=tok,
            text_encoder=sana_text_encoder(tok),
            vae=wan_vae(),
            transformer=transformer,
            scheduler=FlowMatchEulerDiscreteScheduler(shift=3.0),
        )
    )
