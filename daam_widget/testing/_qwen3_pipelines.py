"""Tiny random-init diffusers pipelines of two families with a Qwen3 text encoder: Ovis-Image (Qwen3) and
Krea-2 (Qwen3-VL), built from configs in code.

Each is the real pipeline class with the real transformer, VAE and text-encoder classes at tiny sizes
(hidden sizes 32, 2 heads of 16) and Qwen3's tokenizer from ``_llm_tokenizers``, in which every word of
``WORDS`` and of both system prompts is one token, as in the real vocabulary. Both VAEs scale by 2 and both
transformers take 2 x 2 latent patches, so heights and widths are multiples of 4 (a 32 x 48 image is
8 x 12 = 96 image tokens).
"""

from __future__ import annotations

import torch
from transformers import Qwen3Model, Qwen3VLModel

from .._dependencies import quiet_pipeline_imports
from ._llm_pipelines import _HIDDEN, _qwen3_config, _qwen3_vl_config, _qwen_image_vae
from ._llm_tokenizers import qwen3_tokenizer
from ._pipelines import _in_eval_mode, _vae

with quiet_pipeline_imports():
    from diffusers import (
        FlowMatchEulerDiscreteScheduler,
        Krea2Pipeline,
        Krea2Transformer2DModel,
        OvisImagePipeline,
        OvisImageTransformer2DModel,
    )

KREA2_TEXT_LAYERS = (1, 2, 3)
"""The hidden states (0 is the embedding output) of the 3-layer Qwen3-VL that Krea-2 stacks per token."""


def ovis_image_pipeline(seed: int = 0) -> OvisImagePipeline:
    """Ovis-Image: a Qwen3 encoder (2 layers, 32 features) on Qwen3's chat template with thinking off, the
    system prompt glued in front of the prompt in the user turn; its last hidden states, padding zeroed, lose
    their first 28 tokens. As with the real vocabulary, ``<|im_start|>user\\n`` and the system prompt are 29
    tokens, so the transformer's text starts with the system prompt's closing ":", then the prompt, the 9
    tokens of ``<|im_end|>\\n<|im_start|>assistant\\n<think>\\n\\n</think>\\n\\n`` and zeroed padding, up
    to ``max_sequence_length`` tokens (at most 256); no text mask reaches it. A Flux-like MMDiT of 2 double-
    and 2 single-stream blocks with 3-axis RoPE, and the AutoencoderKL of ``_pipelines``.

    Sizes: multiples of 4 pixels (others are floored to one, with a warning). Guidance
    (``guidance_scale > 1``, the default 5) runs the transformer a second time per step, after the prompt,
    on the negative prompt (default "")."""
    torch.manual_seed(seed)
    tok = qwen3_tokenizer()
    transformer = OvisImageTransformer2DModel(
        in_channels=16,
        out_channels=16,
        num_layers=2,
        num_single_layers=2,
        attention_head_dim=16,
        num_attention_heads=2,
        joint_attention_dim=_HIDDEN,
        axes_dims_rope=(4, 6, 6),
    )
    return OvisImagePipeline(
        **_in_eval_mode(
            scheduler=FlowMatchEulerDiscreteScheduler(use_dynamic_shifting=True),
            vae=_vae(shift_factor=0.1159, scaling_factor=0.3611),
            text_encoder=Qwen3Model(_qwen3_config(tok, num_layers=2)),
            tokenizer=tok,
            transformer=transformer,
        )
    )


def krea2_pipeline(seed: int = 0) -> Krea2Pipeline:
    """Krea-2: a text-only Qwen3-VL (3 layers, 32 features, M-RoPE sections (2, 3, 3), a 1-block vision
    tower it never uses) behind Qwen-Image's system prompt. The prompt is padded to its window before the 5
    tokens of ``<|im_end|>\\n<|im_start|>assistant\\n`` are appended, then the 34 prefix tokens are dropped:
    the transformer gets ``max_sequence_length`` text tokens (prompt, padding, suffix) with a mask that
    excludes the padding.

    Krea-2 stacks the hidden states of 12 encoder layers per token (its default taps need 36 layers); the
    pipeline takes the taps as a constructor argument, the cheapest way round, so this one stacks
    ``KREA2_TEXT_LAYERS``, the outputs of all 3 layers, and its transformer fuses 3 layers (1 layer-wise and
    1 refiner text block). A single-stream DiT of 2 blocks over [text, image], 2 query heads sharing 1
    key-value head; Qwen-Image's causal 3-D VAE (4 latent channels, one frame, scaling by 2).

    Sizes: multiples of 4 pixels (others are rounded up, with a warning). Guidance is on for any
    ``guidance_scale > 0`` (default 4.5; the prediction is ``cond + scale * (cond - uncond)``) and runs the
    transformer a second time per step, after the prompt, on the negative prompt (default "")."""
    torch.manual_seed(seed)
    tok = qwen3_tokenizer()
    text_encoder = Qwen3VLModel(_qwen3_vl_config(tok, len(KREA2_TEXT_LAYERS)))
    vae = _qwen_image_vae()
    transformer = Krea2Transformer2DModel(
        in_channels=16,
        num_layers=2,
        attention_head_dim=16,
        num_attention_heads=2,
        num_key_value_heads=1,
        intermediate_size=2 * _HIDDEN,
        timestep_embed_dim=_HIDDEN,
        text_hidden_dim=_HIDDEN,
        num_text_layers=len(KREA2_TEXT_LAYERS),
        text_num_attention_heads=2,
        text_num_key_value_heads=2,
        text_intermediate_size=2 * _HIDDEN,
        num_layerwise_text_blocks=1,
        num_refiner_text_blocks=1,
        axes_dims_rope=(4, 6, 6),
    )
    scheduler = FlowMatchEulerDiscreteScheduler(
        use_dynamic_shifting=True,
        base_shift=0.5,
        max_shift=1.15,
        base_image_seq_len=256,
        max_image_seq_len=6400,
    )
    return Krea2Pipeline(
        **_in_eval_mode(
            scheduler=scheduler,
            vae=vae,
            text_encoder=text_encoder,
            tokenizer=tok,
            transformer=transformer,
        ),
        text_encoder_select_layers=KREA2_TEXT_LAYERS,
    )
