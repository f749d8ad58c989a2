"""Tiny random-init video pipelines (text-to-video, and Wan's image-to-video): a few frames at 16 to 64 px,
built from configs in code.

As in ``_pipelines``, the VAEs scale by 2 in space (image = 2 x latent), and by 2 in time: a causal video
VAE encodes the first frame alone, so ``num_frames = (latent_frames - 1) * 2 + 1``.
"""

from __future__ import annotations

from typing import Any

import torch
from PIL import Image, ImageDraw
from transformers import (
    ByT5Tokenizer,
    CLIPImageProcessorPil,
    CLIPVisionConfig,
    CLIPVisionModel,
    PreTrainedTokenizerBase,
    Qwen2_5_VLTextConfig,
    Qwen2_5_VLTextModel,
    UMT5Config,
    UMT5EncoderModel,
)

from .._dependencies import quiet_pipeline_imports
from ._llm_pipelines import _HIDDEN, _qwen_vl_parts
from ._llm_tokenizers import qwen2_5_vl_tokenizer
from ._multi_encoder_pipelines import _with_sizes
from ._pipelines import _in_eval_mode, _t5
from ._tokenizers import t5_tokenizer

with quiet_pipeline_imports():
    from diffusers import (
        AutoencoderKLCogVideoX,
        AutoencoderKLHunyuanVideo15,
        AutoencoderKLWan,
        ClassifierFreeGuidance,
        CogVideoXDDIMScheduler,
        CogVideoXPipeline,
        CogVideoXTransformer3DModel,
        FlowMatchEulerDiscreteScheduler,
        HunyuanVideo15Pipeline,
        HunyuanVideo15Transformer3DModel,
        WanImageToVideoPipeline,
        WanPipeline,
        WanTransformer3DModel,
    )

_HUNYUAN_VIDEO_QWEN_WINDOW = 32
"""HunyuanVideo-1.5's ``tokenizer_max_length``: Qwen2.5-VL positions per prompt after the system turn (real:
1000)."""

_HUNYUAN_VIDEO_BYT5_WINDOW = 32
"""HunyuanVideo-1.5's ``tokenizer_2_max_length``: ByT5 tokens (bytes) of the quoted text (real: 256)."""

_HUNYUAN_VIDEO_IMAGE_TOKENS = 8
"""HunyuanVideo-1.5's ``vision_num_semantic_tokens``: image-condition tokens, zeros and masked in
text-to-video (real: 729 of SigLIP)."""


_WAN_LATENT = 4
"""The tiny Wan VAE's latent channels."""

_WAN_WIDTH = 32
"""The tiny Wan transformer's width: 2 heads of 16."""

_WAN_I2V_CHANNELS = _WAN_LATENT + 2 + _WAN_LATENT
"""What an image-to-video transformer takes: the latents, the frame mask (a channel per frame of a latent
frame, the VAE's temporal factor: 2) and the image's latents, side by side."""

_CLIP_SIDE, _CLIP_PATCH, _CLIP_WIDTH = 16, 8, 16
"""The tiny CLIP vision model of Wan 2.1 I2V: 16 px images in 8 px patches (4 patches and the class
token: 5 image tokens; real: 257), 16 features."""


def _wan_transformer(in_channels: int = _WAN_LATENT, image_dim: int | None = None) -> WanTransformer3DModel:
    """Wan's transformer, tiny. ``in_channels`` beyond the latents' carry an image-to-video condition;
    ``image_dim``: the width of the image embeddings that each ``attn2`` attends to in a second attention
    call, projected to the transformer's width first (Wan 2.1 I2V's ``added_kv_proj_dim``)."""
    model: Any = WanTransformer3DModel(
        patch_size=(1, 2, 2),
        num_attention_heads=2,
        attention_head_dim=_WAN_WIDTH // 2,
        in_channels=in_channels,
        out_channels=_WAN_LATENT,
        text_dim=32,
        freq_dim=16,
        ffn_dim=32,
        num_layers=2,
        cross_attn_norm=True,
        qk_norm="rms_norm_across_heads",
        rope_max_seq_len=32,
        image_dim=image_dim,
        added_kv_proj_dim=None if image_dim is None else _WAN_WIDTH,
    )
    return model.eval()


def wan_vae(latent_channels: int = _WAN_LATENT) -> AutoencoderKLWan:
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


def _wan_parts(
    two_stage: bool, in_channels: int = _WAN_LATENT, image_dim: int | None = None
) -> dict[str, Any]:
    """What Wan's pipelines share: umT5, the VAE, the scheduler and the transformer; with ``two_stage``
    Wan 2.2 A14B's two, a high-noise ``transformer`` for the steps with ``t >= 500`` and a low-noise
    ``transformer_2`` after (``boundary_ratio=0.5``)."""
    tok = t5_tokenizer()
    encoder = UMT5EncoderModel(
        UMT5Config(vocab_size=len(tok), d_model=32, d_ff=64, d_kv=8, num_layers=2, num_heads=4)
    ).eval()
    second = _wan_transformer(in_channels, image_dim) if two_stage else None
    stages = {"transformer_2": second, "boundary_ratio": 0.5} if two_stage else {}
    return {
        "tokenizer": tok,
        "text_encoder": encoder,
        "vae": wan_vae(),
        "scheduler": FlowMatchEulerDiscreteScheduler(shift=3.0),
        "transformer": _wan_transformer(in_channels, image_dim),
        **stages,
    }


def wan_pipeline(seed: int = 0, two_stage: bool = False) -> WanPipeline:
    """Wan 2.1 (one transformer), or with ``two_stage`` Wan 2.2 A14B's two."""
    torch.manual_seed(seed)
    return WanPipeline(**_wan_parts(two_stage))


def wan_i2v_pipeline(seed: int = 0, two_stage: bool = False) -> WanImageToVideoPipeline:
    """Wan 2.1 I2V: the transformer also takes the first frame's CLIP features (a 2-layer CLIP vision model's
    second-to-last hidden states), put before the text, which each ``attn2`` attends to in a second
    attention call. With ``two_stage``, Wan 2.2 I2V A14B's layout: two transformers and no image encoder,
    the image in the latents' condition alone.

    ``WanAttnProcessor`` takes the last 512 positions of ``attn2``'s keys as the text, so a call keeps the
    pipeline's ``max_sequence_length`` of 512."""
    torch.manual_seed(seed)
    if two_stage:
        return WanImageToVideoPipeline(**_wan_parts(True, _WAN_I2V_CHANNELS))
    vision = CLIPVisionConfig(
        hidden_size=_CLIP_WIDTH,
        intermediate_size=2 * _CLIP_WIDTH,
        num_hidden_layers=2,
        num_attention_heads=2,
        image_size=_CLIP_SIDE,
        patch_size=_CLIP_PATCH,
    )
    crop = {"height": _CLIP_SIDE, "width": _CLIP_SIDE}
    return WanImageToVideoPipeline(
        **_wan_parts(False, _WAN_I2V_CHANNELS, image_dim=_CLIP_WIDTH),
        image_encoder=CLIPVisionModel(vision).eval(),
        image_processor=CLIPImageProcessorPil(size={"shortest_edge": _CLIP_SIDE}, crop_size=crop),
    )


def first_frame(width: int = 48, height: int = 32) -> Image.Image:
    """The image an image-to-video call starts from: a red square on a blue ground."""
    image = Image.new("RGB", (width, height), (40, 60, 200))
    square = (width // 4, height // 4, width // 2, 3 * height // 4)
    ImageDraw.Draw(image).rectangle(square, fill=(220, 30, 30))
    return image


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


def _system_turn_length(tokenizer: PreTrainedTokenizerBase, system_message: str) -> int:
    """The tokens before the prompt in HunyuanVideo-1.5's chat template (the system turn and the user turn's
    opening), which the pipeline crops (``prompt_template_encode_start_idx``, 108 for the real tokenizer;
    more with ``qwen2_5_vl_tokenizer``, which spells most of the system message's words in pieces)."""
    marker = "\x00"
    messages = [{"role": "system", "content": system_message}, {"role": "user", "content": marker}]
    text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    return len(tokenizer(str(text).partition(marker)[0])["input_ids"])


def hunyuanvideo15_pipeline(seed: int = 0) -> HunyuanVideo15Pipeline:
    """HunyuanVideo-1.5 text-to-video: a Qwen2.5-VL text model (3 layers, 32 features; its third-to-last
    hidden states, those of layer 1, lose the system turn; 32 positions remain), ByT5 (a T5 encoder of 32
    features on 32 bytes, only for quoted text in the prompt, zeros and an empty mask without), a
    transformer of 2 double-stream blocks (2 heads of 16, 2 x 2 patches) after a 1-layer token refiner,
    8 image-condition tokens (masked in text-to-video), and HunyuanVideo-1.5's causal VAE at 2x in space and
    time (4 latent channels).

    Guidance is on (the ``ClassifierFreeGuidance`` guider, scale 3): the transformer runs on the prompt,
    then on the negative prompt. The VAE's mid-block attention fails on more than one video at a time
    (its causal mask broadcasts the batch as heads), as in diffusers 0.42.1 at any size: decode one video
    per call, or ask a batch for ``output_type="latent"``."""
    torch.manual_seed(seed)
    tok = qwen2_5_vl_tokenizer()
    byt5_tok = ByT5Tokenizer()
    text, _ = _qwen_vl_parts(tok, 3, 1e6)
    vae = AutoencoderKLHunyuanVideo15(
        latent_channels=4,
        block_out_channels=(8, 8),
        layers_per_block=1,
        spatial_compression_ratio=2,
        temporal_compression_ratio=2,
        scaling_factor=1.0,
    )
    transformer = HunyuanVideo15Transformer3DModel(
        in_channels=2 * 4 + 1,  # the latents, the condition latents (zeros) and their mask
        out_channels=4,
        num_attention_heads=2,
        attention_head_dim=16,
        num_layers=2,
        num_refiner_layers=1,
        mlp_ratio=2.0,
        patch_size=2,
        text_embed_dim=_HIDDEN,
        text_embed_2_dim=_HIDDEN,
        image_embed_dim=16,
        rope_axes_dim=(4, 6, 6),
        task_type="t2v",
    )
    pipe: Any = HunyuanVideo15Pipeline(
        **_in_eval_mode(
            text_encoder=Qwen2_5_VLTextModel(Qwen2_5_VLTextConfig(**text)),
            tokenizer=tok,
            transformer=transformer,
            vae=vae,
            scheduler=FlowMatchEulerDiscreteScheduler(shift=5.0),
            text_encoder_2=_t5(len(byt5_tok), _HIDDEN),
            tokenizer_2=byt5_tok,
            guider=ClassifierFreeGuidance(guidance_scale=3.0),
        )
    )
    return _with_sizes(
        pipe,
        prompt_template_encode_start_idx=_system_turn_length(tok, pipe.system_message),
        tokenizer_max_length=_HUNYUAN_VIDEO_QWEN_WINDOW,
        tokenizer_2_max_length=_HUNYUAN_VIDEO_BYT5_WINDOW,
        vision_num_semantic_tokens=_HUNYUAN_VIDEO_IMAGE_TOKENS,
    )
