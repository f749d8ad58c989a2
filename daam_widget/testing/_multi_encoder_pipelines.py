"""Tiny random-init diffusers pipelines of the families with text encoders of several kinds: HiDream-I1
(two CLIPs, T5 and Llama 3.1) and HunyuanImage-2.1 (Qwen2.5-VL and ByT5), built from configs in code.

Each is the real pipeline class with the real transformer, VAE and text-encoder classes at tiny sizes
(hidden sizes 32, transformers of 2 heads of 16) and offline tokenizers: ``_tokenizers``' CLIP and T5,
``_llm_tokenizers``' Qwen2.5-VL, transformers' ByT5 (which needs no file) and Llama 3.1's, made here as
``_llm_tokenizers`` makes the others. Both pipelines set sizes meant for their real checkpoints in
``__init__`` (HiDream's image area; HunyuanImage's default size and token windows): the builders set those
attributes of the pipeline object to tiny values.
"""

from __future__ import annotations

from typing import TypeVar

import torch
from tokenizers import processors
from transformers import (
    ByT5Tokenizer,
    CLIPTextModelWithProjection,
    LlamaConfig,
    LlamaForCausalLM,
    PreTrainedTokenizerFast,
)

from .._dependencies import quiet_pipeline_imports
from ._llm_pipelines import _qwen2_5_vl
from ._llm_tokenizers import _byte_level_bpe, qwen2_5_vl_tokenizer
from ._pipelines import _in_eval_mode, _t5, _text_config, _vae
from ._tokenizers import clip_tokenizer, t5_tokenizer

with quiet_pipeline_imports():
    from diffusers import (
        AdaptiveProjectedMixGuidance,
        AutoencoderKLHunyuanImage,
        FlowMatchEulerDiscreteScheduler,
        HiDreamImagePipeline,
        HiDreamImageTransformer2DModel,
        HunyuanImagePipeline,
        HunyuanImageTransformer2DModel,
    )

_Pipeline = TypeVar("_Pipeline")

_HIDDEN = 32
"""Every text encoder's hidden size, and the transformers' inner size (2 heads of 16)."""

_LLAMA3_SPLIT = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}"
    r"| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
)

_HIDREAM_SAMPLE_SIZE = 16
"""HiDream's ``default_sample_size``, in latents: the pipeline rescales every image to the area of a square
of 16 x 2 = 32 pixels (real: 128 x 8 = 1024), and the transformer pads the image tokens of non-square ones
to (16 / 2)^2 = 64 (its ``max_resolution``)."""

_HUNYUAN_QWEN_WINDOW = 32
"""HunyuanImage's ``tokenizer_max_length``: Qwen2.5-VL tokens per prompt after the 34 of the system prompt
(real: 1000)."""

_HUNYUAN_BYT5_WINDOW = 32
"""HunyuanImage's ``tokenizer_2_max_length``: ByT5 tokens (bytes) of the quoted text (real: 128), each
costly in the transformer's ByT5 projection, whose 2048 hidden features are fixed."""


def _with_sizes(pipeline: _Pipeline, **sizes: int) -> _Pipeline:
    """Sets size attributes that the pipeline's ``__init__`` fixes for the real checkpoints; each must exist,
    lest a renamed attribute leave the real size in place."""
    for name, size in sizes.items():
        if not hasattr(pipeline, name):
            raise AttributeError(f"{type(pipeline).__name__} has no {name!r} to set; diffusers renamed it")
        setattr(pipeline, name, size)
    return pipeline


def llama3_tokenizer() -> PreTrainedTokenizerFast:
    """Llama 3.1 Instruct's byte-level BPE (HiDream's), built as ``_llm_tokenizers``' ones (each word of
    ``WORDS`` one token): Llama 3's split pattern, specials ``<|begin_of_text|>`` (the BOS, put before every
    text), ``<|end_of_text|>`` and ``<|eot_id|>`` (the EOS), right padding and no pad token (HiDream's
    pipeline makes it the EOS)."""
    tokenizer = _byte_level_bpe(_LLAMA3_SPLIT, ("<|begin_of_text|>", "<|end_of_text|>", "<|eot_id|>"))
    bos = "<|begin_of_text|>"
    tokenizer.post_processor = processors.Sequence(
        [
            processors.ByteLevel(trim_offsets=False),
            processors.TemplateProcessing(
                single=f"{bos} $A",
                pair=f"{bos} $A {bos} $B",
                special_tokens=[(bos, tokenizer.token_to_id(bos))],
            ),
        ]
    )
    return PreTrainedTokenizerFast(tokenizer_object=tokenizer, bos_token=bos, eos_token="<|eot_id|>")


def _long_clip(vocab_size: int) -> CLIPTextModelWithProjection:
    """A CLIP with projection and 218 positions: HiDream pads CLIP's tokens to ``max_sequence_length``
    (default 128), up to 218."""
    config = _text_config(vocab_size, _HIDDEN, projection_dim=_HIDDEN)
    config.max_position_embeddings = 218
    return CLIPTextModelWithProjection(config)


def hidream_pipeline(seed: int = 0) -> HiDreamImagePipeline:
    """HiDream-I1: two CLIPs whose pooled projections (32 + 32) modulate the blocks, T5 (32 features) and a
    Llama 3.1 causal LM (4 layers, 32 features) whose hidden states are stacked per layer; a transformer of
    2 double- and 2 single-stream blocks with mixture-of-experts feed-forwards, each block fed its own Llama
    layer (``llama_layers`` 0 to 3); the AutoencoderKL of ``_pipelines`` (scaling by 2).

    Sizes: the pipeline rescales any height x width to the area of 32 x 32 pixels, keeping its aspect,
    down to multiples of 4 (64 x 64 and 32 x 32 give 32 x 32, 32 x 48 gives 24 x 36). Non-square
    latents are padded to 64 image tokens inside the transformer. Guidance (``guidance_scale > 1``, the
    default 5) batches the negative prompt (default "") and the prompt into one transformer call."""
    torch.manual_seed(seed)
    clip_tok = clip_tokenizer()
    t5_tok = t5_tokenizer()
    llama_tok = llama3_tokenizer()
    llama = LlamaForCausalLM(
        LlamaConfig(
            vocab_size=len(llama_tok),
            hidden_size=_HIDDEN,
            intermediate_size=2 * _HIDDEN,
            num_hidden_layers=4,
            num_attention_heads=2,
            num_key_value_heads=2,
            head_dim=16,
            bos_token_id=llama_tok.bos_token_id,
            eos_token_id=llama_tok.eos_token_id,
            pad_token_id=llama_tok.eos_token_id,
        )
    )
    # the pipeline asks Llama for its attention weights, which SDPA cannot give (transformers warns)
    llama.set_attn_implementation("eager")
    transformer = HiDreamImageTransformer2DModel(
        patch_size=2,
        in_channels=4,
        num_layers=2,
        num_single_layers=2,
        attention_head_dim=16,
        num_attention_heads=2,
        caption_channels=[_HIDDEN, _HIDDEN],
        text_emb_dim=2 * _HIDDEN,
        axes_dims_rope=(8, 4, 4),
        max_resolution=(_HIDREAM_SAMPLE_SIZE, _HIDREAM_SAMPLE_SIZE),
        llama_layers=[0, 1, 2, 3],
    )
    return _with_sizes(
        HiDreamImagePipeline(
            **_in_eval_mode(
                scheduler=FlowMatchEulerDiscreteScheduler(shift=3.0),
                vae=_vae(shift_factor=0.1159, scaling_factor=0.3611),
                text_encoder=_long_clip(len(clip_tok)),
                tokenizer=clip_tok,
                text_encoder_2=_long_clip(len(clip_tok)),
                tokenizer_2=clip_tokenizer(),
                text_encoder_3=_t5(len(t5_tok), _HIDDEN),
                tokenizer_3=t5_tok,
                text_encoder_4=llama,
                tokenizer_4=llama_tok,
                transformer=transformer,
            )
        ),
        default_sample_size=_HIDREAM_SAMPLE_SIZE,
    )


def hunyuanimage_pipeline(seed: int = 0) -> HunyuanImagePipeline:
    """HunyuanImage-2.1: a Qwen2.5-VL encoder (3 layers, 32 features; its third-to-last hidden states, those
    of layer 1, lose the 34 system-prompt tokens; 32 tokens remain) and ByT5 (a T5 encoder of 32 features on
    32 bytes, only for quoted text in the prompt, zeros and an empty mask without); a transformer of 2
    double- and 2 single-stream blocks after a 1-layer token refiner; HunyuanImage's VAE (4 latent channels,
    32 x compression as in the real one).

    Sizes: multiples of 32 pixels (a 64 x 96 image is 2 x 3 image tokens; the pipeline warns unless they are
    multiples of 64); 64 x 64 when not given. Guidance is on (adaptive projected mix guidance, scale 3.5):
    the transformer runs twice per step, on the prompt, then on the negative prompt (default ""). Both text
    masks reach the transformer, which puts the valid tokens of both encoders before all padding."""
    torch.manual_seed(seed)
    tok = qwen2_5_vl_tokenizer()
    byt5_tok = ByT5Tokenizer()
    text_encoder = _qwen2_5_vl(tok, 3)
    vae = AutoencoderKLHunyuanImage(
        in_channels=3,
        out_channels=3,
        latent_channels=4,
        block_out_channels=(32,) * 6,
        layers_per_block=1,
        spatial_compression_ratio=32,
        sample_size=64,
        scaling_factor=1.0,
    )
    transformer = HunyuanImageTransformer2DModel(
        in_channels=4,
        out_channels=4,
        num_attention_heads=2,
        attention_head_dim=16,
        num_layers=2,
        num_single_layers=2,
        num_refiner_layers=1,
        mlp_ratio=2.0,
        text_embed_dim=_HIDDEN,
        text_embed_2_dim=_HIDDEN,
        rope_axes_dim=(8, 8),
    )
    return _with_sizes(
        HunyuanImagePipeline(
            **_in_eval_mode(
                scheduler=FlowMatchEulerDiscreteScheduler(shift=5.0),
                vae=vae,
                text_encoder=text_encoder,
                tokenizer=tok,
                text_encoder_2=_t5(len(byt5_tok), _HIDDEN),
                tokenizer_2=byt5_tok,
                transformer=transformer,
                guider=AdaptiveProjectedMixGuidance(),
            )
        ),
        default_sample_size=2,
        tokenizer_max_length=_HUNYUAN_QWEN_WINDOW,
        tokenizer_2_max_length=_HUNYUAN_BYT5_WINDOW,
    )
