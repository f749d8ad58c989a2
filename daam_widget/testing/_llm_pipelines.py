"""Tiny random-init diffusers pipelines of the families whose text encoder is an LLM (or, for Chroma, a T5
with a padding mask), built from configs in code.

Each is the real pipeline class with the real transformer, VAE and text-encoder classes at tiny sizes
(hidden sizes 32, 2 heads of 16, 2 to 4 encoder layers) and a tokenizer from ``_llm_tokenizers`` (or
``t5_tokenizer``). As in ``_pipelines``, every VAE scales by 2 (image = 2 x latent) and the transformers
patch latents 2 x 2, so heights and widths are multiples of 4 (a 32 x 48 image is 8 x 12 = 96 image
tokens). Called with ``CALLS[name]`` (``_catalog``), 2 steps at 32 x 48 pixels take well under a second
on one CPU core.
"""

from __future__ import annotations

from typing import Any

import torch
from transformers import (
    Mistral3Config,
    Mistral3ForConditionalGeneration,
    PreTrainedTokenizerBase,
    Qwen2_5_VLConfig,
    Qwen2_5_VLForConditionalGeneration,
    Qwen3Config,
    Qwen3ForCausalLM,
    Qwen3Model,
    Qwen3VLConfig,
)

from .._dependencies import quiet_pipeline_imports
from ._llm_tokenizers import mistral_small_3_tokenizer, qwen2_5_vl_tokenizer, qwen3_tokenizer
from ._pipelines import _in_eval_mode, _t5, _vae
from ._tokenizers import t5_tokenizer

with quiet_pipeline_imports():
    from diffusers import (
        AutoencoderKLFlux2,
        AutoencoderKLQwenImage,
        ChromaPipeline,
        ChromaTransformer2DModel,
        FlowMatchEulerDiscreteScheduler,
        Flux2KleinPipeline,
        Flux2Pipeline,
        Flux2Transformer2DModel,
        QwenImagePipeline,
        QwenImageTransformer2DModel,
        ZImagePipeline,
        ZImageTransformer2DModel,
    )

_HIDDEN = 32
"""Every text encoder's hidden size, and the transformers' inner size (2 heads of 16)."""


def _token_ids(tok: PreTrainedTokenizerBase) -> dict[str, Any]:
    """A text-encoder config's special-token ids: the tokenizer's (the real configs' are out of range)."""
    return {name: getattr(tok, name) for name in ("bos_token_id", "eos_token_id", "pad_token_id")}


def _qwen3_config(tok: PreTrainedTokenizerBase, num_layers: int) -> Qwen3Config:
    return Qwen3Config(
        vocab_size=len(tok),
        hidden_size=_HIDDEN,
        intermediate_size=2 * _HIDDEN,
        num_hidden_layers=num_layers,
        num_attention_heads=2,
        num_key_value_heads=2,
        head_dim=16,
        **_token_ids(tok),
    )


def _mistral3_config(tok: PreTrainedTokenizerBase, text_config: dict[str, Any]) -> Mistral3Config:
    """A Mistral 3 config of ``text_config`` and a 1-layer Pixtral vision tower the pipelines never use."""
    return Mistral3Config(
        text_config=text_config,
        vision_config={
            "model_type": "pixtral",
            "hidden_size": 16,
            "intermediate_size": 32,
            "num_hidden_layers": 1,
            "num_attention_heads": 2,
            "image_size": 28,
            "patch_size": 14,
        },
        image_token_index=tok.get_vocab()["[IMG]"],
    )


def _qwen_vl_parts(tok: PreTrainedTokenizerBase, num_layers: int, rope_theta: float) -> tuple[dict, dict]:
    """The text and vision configs both Qwen VL generations take: ``num_layers`` text layers with M-RoPE
    sections (2, 3, 3), and a 1-block vision tower the text-to-image pipelines never use."""
    text = {
        "vocab_size": len(tok),
        "hidden_size": _HIDDEN,
        "intermediate_size": 2 * _HIDDEN,
        "num_hidden_layers": num_layers,
        "num_attention_heads": 2,
        "num_key_value_heads": 2,
        "rope_parameters": {"rope_type": "default", "rope_theta": rope_theta, "mrope_section": [2, 3, 3]},
        **_token_ids(tok),
    }
    vision = {
        "depth": 1,
        "hidden_size": 16,
        "intermediate_size": 32,
        "num_heads": 2,
        "out_hidden_size": _HIDDEN,
    }
    return text, vision


def _qwen2_5_vl(tok: PreTrainedTokenizerBase, num_layers: int) -> Qwen2_5_VLForConditionalGeneration:
    """A Qwen2.5-VL (``_qwen_vl_parts``)."""
    text, vision = _qwen_vl_parts(tok, num_layers, 1e6)
    return Qwen2_5_VLForConditionalGeneration(
        Qwen2_5_VLConfig(text_config=text, vision_config={**vision, "fullatt_block_indexes": [0]})
    )


def _qwen3_vl_config(tok: PreTrainedTokenizerBase, num_layers: int) -> Qwen3VLConfig:
    """A Qwen3-VL config (``_qwen_vl_parts``), its text heads 16 wide."""
    text, vision = _qwen_vl_parts(tok, num_layers, 5e6)
    return Qwen3VLConfig(
        text_config={**text, "head_dim": 16}, vision_config={**vision, "deepstack_visual_indexes": []}
    )


def _qwen_image_vae() -> AutoencoderKLQwenImage:
    """Qwen-Image's causal 3-D VAE: 4 latent channels, one frame, scaling by 2 (Krea-2 and NucleusMoE use
    it too)."""
    return AutoencoderKLQwenImage(
        base_dim=8,
        z_dim=4,
        dim_mult=[1, 2],
        num_res_blocks=1,
        temperal_downsample=[False],
        latents_mean=[0.0] * 4,
        latents_std=[1.0] * 4,
    )


def _flux2_vae() -> AutoencoderKLFlux2:
    """Flux.2's VAE: 4 latent channels (16 after its 2 x 2 patching, batch-normed), scaling by 2."""
    return AutoencoderKLFlux2(
        block_out_channels=(8, 16),
        down_block_types=("DownEncoderBlock2D",) * 2,
        up_block_types=("UpDecoderBlock2D",) * 2,
        latent_channels=4,
        norm_num_groups=4,
        layers_per_block=1,
    )


def _flux2_transformer(guidance_embeds: bool) -> Flux2Transformer2DModel:
    """2 double- and 2 single-stream blocks, 4-axis RoPE (time, height, width, token), text features of
    three stacked encoder layers."""
    return Flux2Transformer2DModel(
        in_channels=16,
        num_layers=2,
        num_single_layers=2,
        attention_head_dim=16,
        num_attention_heads=2,
        joint_attention_dim=3 * _HIDDEN,
        timestep_guidance_channels=32,
        axes_dims_rope=(4, 4, 4, 4),
        guidance_embeds=guidance_embeds,
    )


def qwen_image_pipeline(seed: int = 0) -> QwenImagePipeline:
    """Qwen-Image: a Qwen2.5-VL encoder (2 layers, 32 features, M-RoPE sections (2, 3, 3), a 1-block vision
    tower it never uses), whose last hidden states lose the 34 system-prompt tokens; an MMDiT of 2 blocks
    with 3-axis RoPE; Qwen-Image's causal 3-D VAE (4 latent channels, one frame, scaling by 2).

    Sizes: multiples of 4 pixels. Classifier-free guidance (``true_cfg_scale > 1`` with a
    ``negative_prompt``) runs the transformer twice per step. The text mask reaches the transformer only
    when it has a zero (prompts of a batch of different lengths)."""
    torch.manual_seed(seed)
    tok = qwen2_5_vl_tokenizer()
    text_encoder = _qwen2_5_vl(tok, 2)
    vae = _qwen_image_vae()
    transformer = QwenImageTransformer2DModel(
        patch_size=2,
        in_channels=16,
        out_channels=4,
        num_layers=2,
        attention_head_dim=16,
        num_attention_heads=2,
        joint_attention_dim=_HIDDEN,
        axes_dims_rope=(4, 6, 6),
    )
    return QwenImagePipeline(
        **_in_eval_mode(
            scheduler=FlowMatchEulerDiscreteScheduler(use_dynamic_shifting=True),
            vae=vae,
            text_encoder=text_encoder,
            tokenizer=tok,
            transformer=transformer,
        )
    )


def z_image_pipeline(seed: int = 0) -> ZImagePipeline:
    """Z-Image: a Qwen3 encoder (2 layers, 32 features; its second-to-last hidden states, padding dropped);
    a single-stream DiT of 2 layers after 1 noise- and 1 caption-refiner layer, 3-axis RoPE, text and image
    tokens each padded to a multiple of 32 inside the transformer; the AutoencoderKL of ``_pipelines``.

    Sizes: multiples of 4 pixels (others raise). Guidance is on for any ``guidance_scale > 0`` (default 5,
    and 1 too: the prediction is ``pos + scale * (pos - neg)``) and batches the prompt and the negative
    prompt (default "") into one transformer call; ``guidance_scale=0`` turns it off. A list prompt is
    overwritten in place by its chat-templated text (the pipeline's doing)."""
    torch.manual_seed(seed)
    tok = qwen3_tokenizer()
    transformer = ZImageTransformer2DModel(
        in_channels=4,
        dim=_HIDDEN,
        n_layers=2,
        n_refiner_layers=1,
        n_heads=2,
        n_kv_heads=2,
        cap_feat_dim=_HIDDEN,
        axes_dims=[4, 6, 6],
    )
    return ZImagePipeline(
        **_in_eval_mode(
            scheduler=FlowMatchEulerDiscreteScheduler(shift=3.0),
            vae=_vae(shift_factor=0.1159, scaling_factor=0.3611),
            text_encoder=Qwen3Model(_qwen3_config(tok, num_layers=2)),
            tokenizer=tok,
            transformer=transformer,
        )
    )


def flux2_pipeline(seed: int = 0) -> Flux2Pipeline:
    """Flux.2 [dev]: a Mistral Small 3 encoder (4 layers, 32 features, a 1-layer Pixtral vision tower it
    never uses) behind Flux.2's system message; the hidden states of its layers 1, 2 and 3 are stacked
    into 96 features per token, so callers pass ``text_encoder_out_layers=(1, 2, 3)`` (the pipeline's
    default, (10, 20, 30), needs 30 layers). A guidance-distilled transformer (guidance is an embedding,
    one transformer call per step) and Flux.2's VAE.

    Sizes: multiples of 4 pixels. Every padding token reaches the transformer (no text mask)."""
    torch.manual_seed(seed)
    tok = mistral_small_3_tokenizer()
    text_encoder = Mistral3ForConditionalGeneration(
        _mistral3_config(
            tok,
            {
                "model_type": "mistral",
                "vocab_size": len(tok),
                "hidden_size": _HIDDEN,
                "intermediate_size": 2 * _HIDDEN,
                "num_hidden_layers": 4,
                "num_attention_heads": 2,
                "num_key_value_heads": 2,
                "head_dim": 16,
                **_token_ids(tok),
            },
        )
    )
    return Flux2Pipeline(
        **_in_eval_mode(
            scheduler=FlowMatchEulerDiscreteScheduler(use_dynamic_shifting=True),
            vae=_flux2_vae(),
            text_encoder=text_encoder,
            tokenizer=tok,
            transformer=_flux2_transformer(guidance_embeds=True),
        )
    )


def flux2_klein_pipeline(seed: int = 0) -> Flux2KleinPipeline:
    """Flux.2 [klein] base: a Qwen3 causal LM (4 layers, 32 features) on Qwen3's chat template with
    thinking off; its layers 1, 2 and 3 are stacked into 96 features, so callers pass
    ``text_encoder_out_layers=(1, 2, 3)`` (the default, (9, 18, 27), needs 27 layers). Flux.2's
    transformer without a guidance embedding, and Flux.2's VAE.

    Sizes: multiples of 4 pixels. Not distilled: ``guidance_scale > 1`` (the default 4) runs the
    transformer a second time per step on the empty prompt; ``guidance_scale=1`` runs it once. Every
    padding token reaches the transformer (no text mask)."""
    torch.manual_seed(seed)
    tok = qwen3_tokenizer()
    return Flux2KleinPipeline(
        **_in_eval_mode(
            scheduler=FlowMatchEulerDiscreteScheduler(use_dynamic_shifting=True),
            vae=_flux2_vae(),
            text_encoder=Qwen3ForCausalLM(_qwen3_config(tok, num_layers=4)),
            tokenizer=tok,
            transformer=_flux2_transformer(guidance_embeds=False),
        )
    )


def chroma_pipeline(seed: int = 0) -> ChromaPipeline:
    """Chroma: T5 (the ``_pipelines`` one, 32 features) with its padding mask; Flux's 2 double- and 2
    single-stream blocks modulated by a small approximator instead of pooled text; the AutoencoderKL of
    ``_pipelines``. The text mask keeps the tokens up to and including the first padding token, but the
    transformer hands it to attention as a float 0/1 (tokens x tokens) mask, which is added to the scores:
    later padding is down-weighted, not excluded.

    Sizes: multiples of 4 pixels. Guidance (``guidance_scale > 1``, the default 5) runs the transformer a
    second time per step on the negative prompt (default "")."""
    torch.manual_seed(seed)
    t5_tok = t5_tokenizer()
    transformer = ChromaTransformer2DModel(
        in_channels=16,
        num_layers=2,
        num_single_layers=2,
        attention_head_dim=16,
        num_attention_heads=2,
        joint_attention_dim=_HIDDEN,
        axes_dims_rope=(4, 4, 8),
        approximator_num_channels=16,
        approximator_hidden_dim=_HIDDEN,
        approximator_layers=1,
    )
    return ChromaPipeline(
        **_in_eval_mode(
            scheduler=FlowMatchEulerDiscreteScheduler(use_dynamic_shifting=True),
            vae=_vae(shift_factor=0.1159, scaling_factor=0.3611),
            text_encoder=_t5(len(t5_tok), _HIDDEN),
            tokenizer=t5_tok,
            transformer=transformer,
        )
    )
