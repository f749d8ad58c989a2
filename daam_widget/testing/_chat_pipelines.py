"""Tiny random-init diffusers pipelines of the families that prompt an LLM encoder with a system text:
Lumina-Image 2.0 (Gemma 2), CogView4 (GLM-4) and Kandinsky 5 (Qwen2.5-VL, and CLIP for a pooled vector),
built from configs in code, with offline tokenizers.

Each is the real pipeline class with the real transformer, VAE and text-encoder classes at tiny sizes
(hidden sizes 32, 2 heads of 16, 2 encoder layers). The tokenizers follow ``_llm_tokenizers``: each word
of ``WORDS`` is one token, and so is each word of the text a pipeline puts around the prompt (Lumina 2's
system prompt, Kandinsky 5's template), so that token windows stay short and the template prefix that
Kandinsky 5 drops has exactly the length it assumes. Lumina 2 and Kandinsky 5 hard-code a VAE scale of 8
and get the 8x VAE of ``_pipelines``; CogView4 reads its scale from the VAE and gets the 2x one. A 2-step
call at 32 x 48 pixels takes well under a second on one CPU core.
"""

from __future__ import annotations

import string

import torch
from tokenizers import normalizers, processors
from transformers import (
    CLIPTextModel,
    Gemma2Config,
    Gemma2Model,
    GemmaTokenizer,
    GlmConfig,
    GlmModel,
    PreTrainedTokenizerFast,
    Qwen2Tokenizer,
)

from .._dependencies import quiet_pipeline_imports
from ..toy._tokenizer import byte_alphabet
from ._llm_pipelines import _HIDDEN, _qwen2_5_vl, _token_ids
from ._llm_tokenizers import _QWEN_SPLIT, QWEN2_5_VL_CHAT_TEMPLATE, _byte_level_bpe
from ._pipelines import _in_eval_mode, _text_config, _vae, vae_by_8
from ._tokenizers import WORDS, clip_tokenizer

with quiet_pipeline_imports():
    from diffusers import (
        CogView4Pipeline,
        CogView4Transformer2DModel,
        FlowMatchEulerDiscreteScheduler,
        Kandinsky5T2IPipeline,
        Kandinsky5Transformer3DModel,
        Lumina2Pipeline,
        Lumina2Transformer2DModel,
    )

LUMINA2_WORDS = tuple(
    dict.fromkeys(
        "You are an assistant designed to generate superior images with the superior degree of image text "
        "alignment based on textual prompts or user Prompt Start".split()
    )
)
"""The words of Lumina 2's default system prompt and of its separator ``<Prompt Start>``."""

GLM4_SPLIT = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}"
    r"| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
)
"""GLM-4's pre-tokenizer pattern (Qwen's, with digits in groups of up to 3)."""

KANDINSKY5_RESOLUTIONS = ((32, 32), (48, 32), (32, 48), (64, 32), (32, 64), (64, 64), (96, 64), (64, 96))
"""The (width, height) pairs of the tiny Kandinsky 5 (``pipe.resolutions``, in place of 1024 x 1024 and so
on): these are kept, any other size snaps to the first pair of the nearest aspect ratio, one of the first
five (32 to 64 pixels a side)."""


def lumina2_tokenizer() -> GemmaTokenizer:
    """Gemma's BPE tokenizer as ``gemma_tokenizer`` builds it ("<bos>" first, a space becomes "▁" and sticks
    to the next word, byte fallback), with ASCII letters and punctuation marks as tokens ("▁" + letter too)
    and each word of ``WORDS`` whole, with or without "▁", and each of ``LUMINA2_WORDS`` after a space (and
    where the system prompt has it without one: "You", "-text", "<Prompt"). Without a pre-tokenizer, merges
    apply across the whole text, so their order keeps chains whole: "▁" chains first (no merge inside a
    word starts with "▁"), then the chains of ``WORDS``, then the others, longest words first."""
    letters = string.ascii_letters
    tokens = ["<pad>", "<eos>", "<bos>", "<unk>", "<mask>", *(f"<0x{b:02X}>" for b in range(256))]
    tokens += ["▁", *letters, *string.punctuation, *("▁" + c for c in letters)]
    merges = dict.fromkeys(("▁", c) for c in letters)
    groups = (["▁" + w for w in (*WORDS, *LUMINA2_WORDS)], WORDS, LUMINA2_WORDS)
    for word in (w for group in groups for w in sorted(group, key=lambda w: (-len(w), w))):
        left = word[0]
        for right in word[1:]:
            merges.setdefault((left, right))
            left += right
            tokens.append(left)
    vocab = {token: i for i, token in enumerate(dict.fromkeys(tokens))}
    return GemmaTokenizer(
        vocab=vocab,
        merges=list(merges),  # type: ignore[arg-type]  # (left, right) pairs, as in CLIP's tokenizer
        add_bos_token=True,
        padding_side="right",
    )


def glm4_tokenizer() -> PreTrainedTokenizerFast:
    """GLM-4's byte-level BPE tokenizer (CogView4's), as transformers converts it: GLM-4's split pattern and
    special tokens, ``[gMASK]<sop>`` put before every text by the post-processor, ``<|endoftext|>`` as EOS and
    pad token, left padding; each word of ``WORDS`` and ``TEMPLATE_WORDS`` is one token."""
    specials = (
        "<|endoftext|> [MASK] [gMASK] [sMASK] <sop> <eop> <|system|> <|user|> <|assistant|> <|observation|>"
    ).split()
    tokenizer = _byte_level_bpe(GLM4_SPLIT, specials)
    prefix = [(token, tokenizer.token_to_id(token)) for token in ("[gMASK]", "<sop>")]
    tokenizer.post_processor = processors.Sequence(
        [
            processors.ByteLevel(trim_offsets=False),
            processors.TemplateProcessing(
                single="[gMASK] <sop> $A", pair="[gMASK] <sop> $A $B", special_tokens=prefix
            ),
        ]
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        eos_token="<|endoftext|>",
        pad_token="<|endoftext|>",
        padding_side="left",
    )


def kandinsky5_tokenizer() -> Qwen2Tokenizer:
    """``qwen2_5_vl_tokenizer`` with "prompt" and "engineer" whole too, so that each word of Kandinsky 5's
    template is one token and its prefix is the 40 tokens the pipeline drops, as with the real tokenizer.

    Kandinsky 5 declares a ``Qwen2VLProcessor`` (whose video processor needs torchvision) but only calls it
    as ``tokenizer(text=..., images=None, videos=None, ...)`` and ``decode``, which this tokenizer answers
    the same way."""
    alphabet = byte_alphabet()
    space = alphabet[ord(" ")]
    tokenizer = _byte_level_bpe(
        _QWEN_SPLIT,
        ("<|endoftext|>", "<|im_start|>", "<|im_end|>"),
        extra_pieces=(alphabet[10] * 2, space + "prompt", space + "engineer"),
    )
    tokenizer.normalizer = normalizers.NFC()
    return Qwen2Tokenizer(
        tokenizer_object=tokenizer,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        chat_template=QWEN2_5_VL_CHAT_TEMPLATE,
    )


def lumina2_pipeline(seed: int = 0) -> Lumina2Pipeline:
    """Lumina-Image 2.0: a Gemma 2 encoder (2 layers, 32 features; its second-to-last hidden states) on
    ``system prompt + " <Prompt Start> " + prompt`` (the negative prompt, default "", has no system prompt),
    padded on the right to ``max_sequence_length``; a single-stream DiT of 2 layers after 1 caption- and 1
    noise-refiner layer, with grouped-query attention (2 query heads, 1 key-value head) and 3-axis RoPE,
    which keeps only the unmasked caption tokens (its joint layers get a mask only when a batch's prompts
    differ in length); an AutoencoderKL scaling by 8.

    Sizes: multiples of 16 pixels (others raise); patches are 2 x 2 latent pixels, so 32 x 48 pixels is a
    2 x 3 grid. Guidance (``guidance_scale > 1``, the default 4) runs the transformer twice per step,
    prompt first, then the negative prompt."""
    torch.manual_seed(seed)
    tok = lumina2_tokenizer()
    text_encoder = Gemma2Model(
        Gemma2Config(
            vocab_size=len(tok),
            hidden_size=_HIDDEN,
            intermediate_size=2 * _HIDDEN,
            num_hidden_layers=2,
            num_attention_heads=2,
            num_key_value_heads=2,
            head_dim=16,
            **_token_ids(tok),
        )
    )
    transformer = Lumina2Transformer2DModel(
        sample_size=4,
        patch_size=2,
        in_channels=4,
        hidden_size=_HIDDEN,
        num_layers=2,
        num_refiner_layers=1,
        num_attention_heads=2,
        num_kv_heads=1,
        multiple_of=16,
        axes_dim_rope=(4, 6, 6),
        cap_feat_dim=_HIDDEN,
    )
    return Lumina2Pipeline(
        **_in_eval_mode(
            transformer=transformer,
            scheduler=FlowMatchEulerDiscreteScheduler(shift=6.0),
            vae=vae_by_8(shift_factor=0.1159, scaling_factor=0.3611),
            text_encoder=text_encoder,
            tokenizer=tok,
        )
    )


def cogview4_pipeline(seed: int = 0) -> CogView4Pipeline:
    """CogView4: a GLM-4 encoder (2 layers, 32 features, 1 key-value head; its second-to-last hidden states,
    no attention mask) on the raw prompt after ``[gMASK]<sop>``, padded on the left to a multiple of 16
    tokens (pads included in what the transformer sees); an MMDiT of 2 blocks with 2-axis RoPE over
    ``[text, image]``; the AutoencoderKL of ``_pipelines``.

    Sizes: multiples of 16 pixels (others raise); a 32 x 48 image is an 8 x 12 grid. Guidance
    (``guidance_scale > 1``, the default 5) runs the transformer twice per step, prompt first, then the
    negative prompt (default ""), each with its own text length."""
    torch.manual_seed(seed)
    tok = glm4_tokenizer()
    text_encoder = GlmModel(
        GlmConfig(
            vocab_size=len(tok),
            hidden_size=_HIDDEN,
            intermediate_size=2 * _HIDDEN,
            num_hidden_layers=2,
            num_attention_heads=2,
            num_key_value_heads=1,
            head_dim=16,
            **_token_ids(tok),
        )
    )
    transformer = CogView4Transformer2DModel(
        patch_size=2,
        in_channels=4,
        out_channels=4,
        num_layers=2,
        attention_head_dim=16,
        num_attention_heads=2,
        text_embed_dim=_HIDDEN,
        time_embed_dim=_HIDDEN,
        condition_dim=16,
        sample_size=16,
        rope_axes_dim=(32, 32),
    )
    scheduler = FlowMatchEulerDiscreteScheduler(
        use_dynamic_shifting=True, base_shift=0.25, max_shift=0.75, time_shift_type="linear"
    )
    return CogView4Pipeline(
        **_in_eval_mode(
            tokenizer=tok, text_encoder=text_encoder, vae=_vae(), transformer=transformer, scheduler=scheduler
        )
    )


def kandinsky5_transformer(visual_cond: bool = False) -> Kandinsky5Transformer3DModel:
    """Kandinsky 5's DiT, tiny: 1 text block and 2 visual blocks of 2 heads of 16 (rotary axes 4, 6, 6),
    1 x 2 x 2 patches of 4 latent channels; ``visual_cond``: its input has the image-condition channels too
    (zeros and a mask in text-to-video), as the video models'."""
    return Kandinsky5Transformer3DModel(
        in_visual_dim=4,
        in_text_dim=_HIDDEN,
        in_text_dim2=_HIDDEN,
        time_dim=_HIDDEN,
        out_visual_dim=4,
        patch_size=(1, 2, 2),
        model_dim=_HIDDEN,
        ff_dim=2 * _HIDDEN,
        num_text_blocks=1,
        num_visual_blocks=2,
        axes_dims=(4, 6, 6),
        visual_cond=visual_cond,
    )


def kandinsky5_pipeline(seed: int = 0) -> Kandinsky5T2IPipeline:
    """Kandinsky 5 (text to image): a Qwen2.5-VL encoder (2 layers, 32 features, M-RoPE sections (2, 3, 3),
    a 1-block vision tower it never uses) on the prompt in Kandinsky 5's template, called without an
    attention mask; its last hidden states lose the 40 template-prefix tokens, and the rest (the prompt and
    ``<|im_end|>``, padding too in a batch of different lengths) reach the transformer. A CLIP encoder's
    pooled output conditions the time embedding. A DiT of 1 text block and 2 visual blocks, whose image
    tokens cross-attend to the text; an AutoencoderKL scaling by 8.

    Sizes: those of ``KANDINSKY5_RESOLUTIONS`` (any other snaps to one of them, with a warning); patches are
    2 x 2 latent pixels, so 32 x 48 pixels is a 2 x 3 grid. Guidance (``guidance_scale > 1``, the default
    3.5) runs the transformer twice per step, prompt first, then the negative prompt (default ""). Prompts
    are cleaned first (HTML entities, runs of white space, and ftfy's fixes where ftfy is installed). The
    output's field is ``image``, not ``images``."""
    torch.manual_seed(seed)
    tok = kandinsky5_tokenizer()
    clip_tok = clip_tokenizer()
    text_encoder = _qwen2_5_vl(tok, 2)
    transformer = kandinsky5_transformer()
    pipe = Kandinsky5T2IPipeline(
        **_in_eval_mode(
            transformer=transformer,
            vae=vae_by_8(shift_factor=0.1159, scaling_factor=0.3611),
            text_encoder=text_encoder,
            tokenizer=tok,
            text_encoder_2=CLIPTextModel(_text_config(len(clip_tok), _HIDDEN)),
            tokenizer_2=clip_tok,
            scheduler=FlowMatchEulerDiscreteScheduler(),
        )
    )
    # mypy sees diffusers' top-level name as its dummy class, which lacks the attribute.
    pipe.resolutions = list(KANDINSKY5_RESOLUTIONS)  # type: ignore[attr-defined]
    return pipe
