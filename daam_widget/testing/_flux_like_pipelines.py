"""Tiny random-init diffusers pipelines of two Flux-like families (double- then single-stream blocks over
``[text, image]``) with an LLM text encoder: LongCat-Image (Qwen2.5-VL) and Bria FIBO (SmolLM3), built from
configs in code, with offline tokenizers.

Each is the real pipeline class with the real transformer, VAE and text-encoder classes at tiny sizes
(hidden sizes 32, transformers of 2 heads of 16, 2 double- and 2 single-stream blocks) and a byte-level BPE
tokenizer built as in ``_llm_tokenizers``, in which each word of ``WORDS`` is one token. A 2-step call at
32 x 48 pixels takes well under a second on one CPU core.
"""

from __future__ import annotations

import json

import torch
from tokenizers import AddedToken, Tokenizer, normalizers
from transformers import PreTrainedTokenizerFast, Qwen2Tokenizer, SmolLM3Config, SmolLM3ForCausalLM

from .._dependencies import quiet_pipeline_imports
from ..toy._tokenizer import byte_alphabet
from ._llm_pipelines import _HIDDEN, _qwen2_5_vl
from ._llm_tokenizers import _QWEN_SPLIT, QWEN2_5_VL_CHAT_TEMPLATE, _byte_level_bpe
from ._multi_encoder_pipelines import _LLAMA3_SPLIT
from ._pipelines import _in_eval_mode, _vae

with quiet_pipeline_imports():
    from diffusers import (
        AutoencoderKLWan,
        BriaFiboPipeline,
        BriaFiboTransformer2DModel,
        FlowMatchEulerDiscreteScheduler,
        LongCatImagePipeline,
        LongCatImageTransformer2DModel,
    )

LONGCAT_TEMPLATE_WORDS = (
    "As captioning expert generate descriptive prompt based content suitable for input model".split()
)
"""The words of LongCat-Image's system message that ``qwen2_5_vl_tokenizer`` would split."""

SMOLLM3_SPECIAL_IDS = {
    "<|begin_of_text|>": 128000,
    "<|end_of_text|>": 128001,
    "<|im_start|>": 128011,
    "<|im_end|>": 128012,
}
"""SmolLM3's special tokens at their ids in its vocabulary (Llama 3's, with ``<|im_start|>`` and
``<|im_end|>`` in two reserved slots): Bria FIBO feeds 128000 in place of an empty prompt."""

_SMOLLM3_VOCAB_SIZE = 128256
"""SmolLM3's embedding rows: the tiny encoder keeps them all so that the special ids above are valid."""


def longcat_tokenizer() -> Qwen2Tokenizer:
    """Qwen2.5-VL's tokenizer (LongCat-Image's), as ``qwen2_5_vl_tokenizer`` with each of
    ``LONGCAT_TEMPLATE_WORDS`` whole too, with or without a space before it.

    LongCat-Image declares a ``Qwen2VLProcessor`` (whose video processor needs torchvision) but only calls
    it to rewrite prompts, as ``apply_chat_template``, ``processor(text=..., padding=True)`` and
    ``batch_decode``, which this tokenizer answers the same way for text."""
    alphabet = byte_alphabet()
    space = alphabet[ord(" ")]
    tokenizer = _byte_level_bpe(
        _QWEN_SPLIT,
        ("<|endoftext|>", "<|im_start|>", "<|im_end|>"),
        extra_pieces=(alphabet[10] * 2, *(p + w for w in LONGCAT_TEMPLATE_WORDS for p in (space, ""))),
    )
    tokenizer.normalizer = normalizers.NFC()
    return Qwen2Tokenizer(
        tokenizer_object=tokenizer,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        chat_template=QWEN2_5_VL_CHAT_TEMPLATE,
    )


def smollm3_tokenizer() -> PreTrainedTokenizerFast:
    """SmolLM3's byte-level BPE (Bria FIBO's): Llama 3's split pattern, each word of ``WORDS`` one token, no
    BOS added (FIBO puts ``<|begin_of_text|>`` itself in place of an empty prompt), ``<|im_end|>`` the EOS
    and padding token, right padding. The special tokens keep their real ids (``SMOLLM3_SPECIAL_IDS``), far
    past the other tokens, so that the text encoder reads FIBO's hard-coded id as its BOS."""
    state = json.loads(_byte_level_bpe(_LLAMA3_SPLIT, ()).to_str())
    state["model"]["vocab"].update(SMOLLM3_SPECIAL_IDS)
    tokenizer = Tokenizer.from_str(json.dumps(state))
    tokenizer.add_special_tokens(
        [AddedToken(token, special=True, normalized=False) for token in SMOLLM3_SPECIAL_IDS]
    )
    return PreTrainedTokenizerFast(tokenizer_object=tokenizer, eos_token="<|im_end|>", pad_token="<|im_end|>")


def longcat_image_pipeline(seed: int = 0) -> LongCatImagePipeline:
    """LongCat-Image: a Qwen2.5-VL encoder (2 layers, 32 features, M-RoPE sections (2, 3, 3), a 1-block
    vision tower it never uses) that reads ``[system message | prompt padded to 512 tokens | generation
    prompt]`` (37 | 512 | 5 tokens, each word of the system message one token); the transformer gets the
    last hidden states of the 512 middle positions, padding included, and no text mask. Quoted spans of
    the prompt are tokenized one character at a time. A Flux-like MMDiT of 2 double- and 2 single-stream
    blocks with 3-axis RoPE, whose image ids start at (512, 512); an AutoencoderKL of 16 latent channels
    scaling by 2, its latents packed 2 x 2.

    Sizes: multiples of 4 pixels (others are floored to one, with a warning). By default the pipeline
    first rewrites the prompt with its text encoder (``enable_prompt_rewrite``, 512 new tokens, random text
    here): callers pass ``enable_prompt_rewrite=False``. Guidance (``guidance_scale > 1``, the default
    4.5) runs the transformer a second time per step, after the prompt, on the negative prompt (default
    ""), and rescales the guided prediction to the norm of the prompt's (``enable_cfg_renorm``)."""
    torch.manual_seed(seed)
    tok = longcat_tokenizer()
    vae = _vae(latent_channels=16, shift_factor=0.1159, scaling_factor=0.3611)
    transformer = LongCatImageTransformer2DModel(
        in_channels=64,
        num_layers=2,
        num_single_layers=2,
        attention_head_dim=16,
        num_attention_heads=2,
        joint_attention_dim=_HIDDEN,
        axes_dims_rope=(4, 6, 6),
    )
    return LongCatImagePipeline(
        **_in_eval_mode(
            scheduler=FlowMatchEulerDiscreteScheduler(use_dynamic_shifting=True),
            vae=vae,
            text_encoder=_qwen2_5_vl(tok, 2),
            tokenizer=tok,
            text_processor=tok,
            transformer=transformer,
        )
    )


def bria_fibo_pipeline(seed: int = 0) -> BriaFiboPipeline:
    """Bria FIBO: a SmolLM3 causal LM (2 layers, 32 features, 128256 token ids); the prompt is encoded as
    given (the real model is trained on JSON captions that a separate model writes), the empty prompt as
    ``<|begin_of_text|>`` alone. The transformer's text features are the last two hidden states side by
    side (64 features), and before each of its 2 double- and 2 single-stream blocks half of the running
    text stream is replaced by a projection of one encoder hidden state (embeddings, layer 1, layer 2,
    layer 2). Wan 2.2's VAE design (residual blocks, 2 x 2 pixel patches, 16 latent channels) scaling by 16,
    as the pipeline assumes; the transformer takes latent pixels unpatched.

    Sizes: multiples of 16 pixels (others raise); a 32 x 48 image is 2 x 3 = 6 image tokens. Guidance
    (``guidance_scale > 1``, the default 5) batches the negative prompt (default "") and the prompt into
    one transformer call, both zero-padded to the longer, with a key mask over ``[text, image]`` whenever
    some text is padding."""
    torch.manual_seed(seed)
    tok = smollm3_tokenizer()
    text_encoder = SmolLM3ForCausalLM(
        SmolLM3Config(
            vocab_size=_SMOLLM3_VOCAB_SIZE,
            hidden_size=_HIDDEN,
            intermediate_size=2 * _HIDDEN,
            num_hidden_layers=2,
            num_attention_heads=2,
            num_key_value_heads=2,
            bos_token_id=SMOLLM3_SPECIAL_IDS["<|begin_of_text|>"],
            eos_token_id=tok.eos_token_id,
            pad_token_id=tok.pad_token_id,
        )
    )
    vae = AutoencoderKLWan(
        base_dim=8,
        z_dim=16,
        dim_mult=[1, 2, 2, 2],
        num_res_blocks=1,
        temperal_downsample=[False, False, False],
        latents_mean=[0.0] * 16,
        latents_std=[1.0] * 16,
        is_residual=True,
        in_channels=12,
        out_channels=12,
        patch_size=2,
        scale_factor_spatial=16,
    )
    transformer = BriaFiboTransformer2DModel(
        in_channels=16,
        num_layers=2,
        num_single_layers=2,
        attention_head_dim=16,
        num_attention_heads=2,
        joint_attention_dim=2 * _HIDDEN,
        axes_dims_rope=(4, 6, 6),
        text_encoder_dim=_HIDDEN,
    )
    return BriaFiboPipeline(
        **_in_eval_mode(
            scheduler=FlowMatchEulerDiscreteScheduler(use_dynamic_shifting=True),
            vae=vae,
            text_encoder=text_encoder,
            tokenizer=tok,
            transformer=transformer,
        )
    )
