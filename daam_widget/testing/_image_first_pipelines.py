"""Tiny random-init diffusers pipelines of the families whose transformer puts the image tokens before the
text: NucleusMoE-Image (image queries over ``[image, text]`` keys) and ERNIE-Image (one ``[image, text]``
sequence), built from configs in code, with offline tokenizers.

Each is the real pipeline class with the real transformer, VAE and text-encoder classes at tiny sizes
(transformers of 2 heads of 16, 2 blocks) and a tokenizer built as in ``_llm_tokenizers``, so that each
word of ``WORDS`` is one token, and so is each word of NucleusMoE-Image's system prompt. Both VAEs scale
by 2 and the latents are patched 2 x 2, so heights and widths are multiples of 4 (a 32 x 48 image is 8 x 12
= 96 image tokens). A 2-step call at 32 x 48 pixels takes well under a second on one CPU core.
"""

from __future__ import annotations

import re

import torch
from tokenizers import normalizers
from transformers import (
    Mistral3Model,
    Qwen2Tokenizer,
    Qwen3VLForConditionalGeneration,
)

from .._dependencies import quiet_pipeline_imports
from ..toy._tokenizer import byte_alphabet
from ._llm_pipelines import (
    _HIDDEN,
    _flux2_vae,
    _mistral3_config,
    _qwen3_vl_config,
    _qwen_image_vae,
    _token_ids,
)
from ._llm_tokenizers import _QWEN_SPLIT, QWEN3_CHAT_TEMPLATE, _byte_level_bpe, mistral_small_3_tokenizer
from ._pipelines import _in_eval_mode

with quiet_pipeline_imports():
    from diffusers import (
        ErnieImagePipeline,
        FlowMatchEulerDiscreteScheduler,
        NucleusMoEImagePipeline,
    )

    # From their modules: mypy reads diffusers' top-level names as dummy classes, without their attributes.
    from diffusers.models.transformers.transformer_ernie_image import ErnieImageTransformer2DModel
    from diffusers.models.transformers.transformer_nucleusmoe_image import (
        NucleusMoEImageTransformer2DModel,
        SwiGLUExperts,
    )
    from diffusers.pipelines.nucleusmoe_image.pipeline_nucleusmoe_image import DEFAULT_SYSTEM_PROMPT

NUCLEUSMOE_WORDS = tuple(dict.fromkeys(re.findall(r"(?<!')\b[A-Za-z]+", DEFAULT_SYSTEM_PROMPT)))
"""The words of NucleusMoE-Image's default system prompt (its "'s" is a token of its own, as in Qwen's
vocabulary)."""

NUCLEUSMOE_TEXT_LAYERS = 9
"""The depth of NucleusMoE-Image's tiny Qwen3-VL encoder. The pipeline reads hidden state -8 (the real
encoder's layer 28 of 36) and, when ``return_index`` is passed, requires ``abs(return_index)`` below the
layer count: 9 layers are the fewest that take an explicit ``return_index=-8`` too, and hidden state -8
is then the output of layer 2, not the embeddings."""


def qwen3_vl_tokenizer() -> Qwen2Tokenizer:
    """Qwen3-VL's tokenizer, text only (NucleusMoE-Image's processor): ``qwen3_tokenizer``'s specials
    (``<|endoftext|>`` pads, ``<|im_end|>`` ends; no BOS; right padding) and chat template, which renders a
    system and a user message and the generation prompt as Qwen3-VL's does (no default system message),
    with each of ``NUCLEUSMOE_WORDS`` whole too, with or without a space before it, and "'s" one token.

    NucleusMoE-Image declares a ``Qwen3VLProcessor`` but only calls ``apply_chat_template(messages,
    tokenize=False, add_generation_prompt=True)`` and ``processor(text=..., padding="longest",
    pad_to_multiple_of=8, ...)``, which this tokenizer answers the same way for text."""
    alphabet = byte_alphabet()
    space = alphabet[ord(" ")]
    tokenizer = _byte_level_bpe(
        _QWEN_SPLIT,
        ("<|endoftext|>", "<|im_start|>", "<|im_end|>"),
        extra_pieces=(alphabet[10] * 2, "'s", *(p + w for w in NUCLEUSMOE_WORDS for p in (space, ""))),
    )
    tokenizer.normalizer = normalizers.NFC()
    return Qwen2Tokenizer(
        tokenizer_object=tokenizer,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        chat_template=QWEN3_CHAT_TEMPLATE,
    )


def nucleusmoe_pipeline(seed: int = 0) -> NucleusMoEImagePipeline:
    """NucleusMoE-Image: a Qwen3-VL encoder (``NUCLEUSMOE_TEXT_LAYERS`` layers, 32 features, M-RoPE
    sections (2, 3, 3), a 1-block vision tower it never uses) on the chat-templated prompt behind the
    default system prompt, padded on the right to a multiple of 8 tokens; every position of its hidden
    state -8, template included, reaches the transformer with the padding mask. A DiT of 2 blocks (the
    first dense, the second a mixture of 4 experts with expert-choice routing) whose image queries attend
    to ``[image, text]`` keys, with grouped-query attention (2 query heads, 1 key-value head) and 3-axis
    RoPE; Qwen-Image's causal 3-D VAE (4 latent channels, one frame, scaling by 2). The experts' weights,
    which the transformer leaves uninitialised (``torch.empty``), are drawn with a standard deviation of
    one over the square root of their fan-in.

    Sizes: multiples of 4 pixels (others warn and are floored). Guidance (``guidance_scale > 1``, the
    default 4) runs the transformer twice per step, prompt first, then the negative prompt (default "")."""
    torch.manual_seed(seed)
    tok = qwen3_vl_tokenizer()
    text_encoder = Qwen3VLForConditionalGeneration(_qwen3_vl_config(tok, NUCLEUSMOE_TEXT_LAYERS))
    vae = _qwen_image_vae()
    transformer = NucleusMoEImageTransformer2DModel(
        patch_size=2,
        in_channels=16,
        out_channels=4,
        num_layers=2,
        attention_head_dim=16,
        num_attention_heads=2,
        num_key_value_heads=1,
        joint_attention_dim=_HIDDEN,
        axes_dims_rope=(4, 6, 6),
        mlp_ratio=6.0,
        dense_moe_strategy="leave_first_block_dense",
        num_experts=4,
        moe_intermediate_dim=16,
        capacity_factors=2.0,
    )
    for experts in (module for module in transformer.modules() if isinstance(module, SwiGLUExperts)):
        for weight in (experts.gate_up_proj, experts.down_proj):
            torch.nn.init.normal_(weight, std=weight.shape[1] ** -0.5)
    return NucleusMoEImagePipeline(
        **_in_eval_mode(
            transformer=transformer,
            scheduler=FlowMatchEulerDiscreteScheduler(use_dynamic_shifting=True),
            vae=vae,
            text_encoder=text_encoder,
            processor=tok,
        )
    )


def ernie_image_pipeline(seed: int = 0) -> ErnieImagePipeline:
    """ERNIE-Image without its prompt enhancer (``pe=None``, so ``use_pe`` changes nothing): a Mistral 3
    encoder (Ministral 3 text layers, 16 features; a 1-layer Pixtral vision tower it never uses) on the raw
    prompt, one prompt at a time, no template, no BOS, no padding (an empty prompt becomes ``<s>``); its
    second-to-last hidden states, every token, which with 2 layers (the fewest for which that is a layer's
    output, not the embeddings) are those of layer 1. A single-stream DiT of 2 layers over
    ``[image, text]``, which projects the text from 16 to 32 features, with 3-axis RoPE and a key mask for
    the text padding of a batch; Flux.2's VAE, whose latents the pipeline patches 2 x 2.

    Sizes: multiples of 4 pixels (others raise). Guidance (``guidance_scale > 1``, the default 4) batches
    the negative prompt (default "") before the prompt into one transformer call per step. The
    transformer's modulation and output layers, which its own initialisation zeroes (no step would then
    change the attention, nor a layer its input), get PyTorch's default initialisation."""
    torch.manual_seed(seed)
    tok = mistral_small_3_tokenizer()
    text_encoder = Mistral3Model(
        _mistral3_config(
            tok,
            {
                "model_type": "ministral3",
                "vocab_size": len(tok),
                "hidden_size": 16,
                "intermediate_size": 32,
                "num_hidden_layers": 2,
                "num_attention_heads": 2,
                "num_key_value_heads": 1,
                "head_dim": 8,
                **_token_ids(tok),
            },
        )
    )
    transformer = ErnieImageTransformer2DModel(
        hidden_size=_HIDDEN,
        num_attention_heads=2,
        num_layers=2,
        ffn_hidden_size=2 * _HIDDEN,
        in_channels=16,
        out_channels=16,
        text_in_dim=16,
        rope_axes_dim=(4, 6, 6),
    )
    for zeroed in (transformer.adaLN_modulation[-1], transformer.final_linear):
        zeroed.reset_parameters()
    return ErnieImagePipeline(
        **_in_eval_mode(
            transformer=transformer,
            vae=_flux2_vae(),
            text_encoder=text_encoder,
            tokenizer=tok,
            scheduler=FlowMatchEulerDiscreteScheduler(),
            pe=None,
            pe_tokenizer=None,
        )
    )
