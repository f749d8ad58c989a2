"""Tiny random-init diffusers pipelines of the families whose prompt reaches the transformer through a T5
(CogView3-Plus, AuraFlow's UMT5, HunyuanDiT's mT5 next to a BERT), built from configs in code.

Each is the real pipeline class with the real transformer, VAE and text-encoder classes at tiny sizes
(hidden sizes 32, 2 heads of 16, 2 encoder layers), ``t5_tokenizer`` for every T5 and a WordPiece BERT
tokenizer built here. CogView3-Plus and AuraFlow use the AutoencoderKL of ``_pipelines`` (scaling by 2)
and patch latents 2 x 2; HunyuanDiT computes its rotary grid as if the VAE scaled by 8, so it gets
``vae_by_8``. 2 steps at 32 x 48 pixels (HunyuanDiT: 64 x 96) take well under a second on one CPU core.
"""

from __future__ import annotations

import string

import torch
from transformers import BertConfig, BertModel, BertTokenizer, UMT5Config, UMT5EncoderModel

from .._dependencies import quiet_pipeline_imports
from ._pipelines import _in_eval_mode, _t5, _vae, vae_by_8
from ._tokenizers import WORDS, t5_tokenizer

with quiet_pipeline_imports():
    from diffusers import (
        AuraFlowPipeline,
        AuraFlowTransformer2DModel,
        CogVideoXDDIMScheduler,
        CogView3PlusPipeline,
        CogView3PlusTransformer2DModel,
        DDPMScheduler,
        FlowMatchEulerDiscreteScheduler,
        HunyuanDiT2DModel,
        HunyuanDiTPipeline,
    )

_HIDDEN = 32
"""Every text encoder's hidden size, and the transformers' inner size (2 heads of 16)."""


def _bert_tokenizer() -> BertTokenizer:
    """BERT's WordPiece tokenizer, lower-casing, "[CLS] ... [SEP]" around the text: each word of ``WORDS`` is
    one token, any other word splits into a letter (or digit) and "##" letter pieces, each punctuation mark
    is a token; other characters are "[UNK]"."""
    pieces = string.ascii_lowercase + string.digits
    tokens = [
        "[PAD]",
        "[UNK]",
        "[CLS]",
        "[SEP]",
        "[MASK]",
        *WORDS,
        *pieces,
        *string.punctuation,
        *("##" + c for c in pieces),
    ]
    vocab = {token: i for i, token in enumerate(dict.fromkeys(tokens))}
    return BertTokenizer(vocab=vocab, model_max_length=77)


def cogview3plus_pipeline(seed: int = 0) -> CogView3PlusPipeline:
    """CogView3-Plus: T5 (the ``_pipelines`` one, 32 features, no mask: every padding token reaches the
    transformer); 2 blocks of joint attention over ``[text, image]``; CogVideoX's DDIM scheduler.

    Sizes: multiples of 8 pixels (others raise), at most 128 (the sin-cos table is 32 x 32 patches).
    Guidance (``guidance_scale > 1``, the default 5) batches ``[uncond, cond]`` into one transformer call;
    without a ``negative_prompt`` the unconditional text features are zeros, not an encoded ""."""
    torch.manual_seed(seed)
    t5_tok = t5_tokenizer()
    transformer = CogView3PlusTransformer2DModel(
        patch_size=2,
        in_channels=4,
        out_channels=4,
        num_layers=2,
        attention_head_dim=16,
        num_attention_heads=2,
        text_embed_dim=_HIDDEN,
        time_embed_dim=16,
        condition_dim=8,
        pos_embed_max_size=32,
        sample_size=16,
    )
    return CogView3PlusPipeline(
        **_in_eval_mode(
            tokenizer=t5_tok,
            text_encoder=_t5(len(t5_tok), _HIDDEN),
            vae=_vae(),
            transformer=transformer,
            scheduler=CogVideoXDDIMScheduler(
                timestep_spacing="trailing", prediction_type="v_prediction", rescale_betas_zero_snr=True
            ),
        )
    )


def auraflow_pipeline(seed: int = 0) -> AuraFlowPipeline:
    """AuraFlow: a UMT5 encoder (2 layers, 32 features) whose padding features are zeroed, no mask after
    that; 2 joint and 2 single-stream blocks, whose text is 8 learned register tokens followed by the
    prompt's tokens (``[registers, text, image]``); learned positions.

    Sizes: multiples of 4 pixels (others raise), at most 128 (the position table is 32 x 32 patches).
    Guidance (``guidance_scale > 1``, the default 3.5) batches ``[uncond, cond]`` into one transformer call,
    the negative prompt (default "") padded to the prompt's length."""
    torch.manual_seed(seed)
    t5_tok = t5_tokenizer()
    text_encoder = UMT5EncoderModel(
        UMT5Config(
            vocab_size=len(t5_tok), d_model=_HIDDEN, d_ff=2 * _HIDDEN, d_kv=8, num_layers=2, num_heads=4
        )
    )
    transformer = AuraFlowTransformer2DModel(
        sample_size=16,
        patch_size=2,
        in_channels=4,
        num_mmdit_layers=2,
        num_single_dit_layers=2,
        attention_head_dim=16,
        num_attention_heads=2,
        joint_attention_dim=_HIDDEN,
        caption_projection_dim=_HIDDEN,
        out_channels=4,
        pos_embed_max_size=32 * 32,
    )
    return AuraFlowPipeline(
        **_in_eval_mode(
            tokenizer=t5_tok,
            text_encoder=text_encoder,
            vae=_vae(),
            transformer=transformer,
            scheduler=FlowMatchEulerDiscreteScheduler(),
        )
    )


def hunyuandit_pipeline(seed: int = 0) -> HunyuanDiTPipeline:
    """HunyuanDiT: a BERT (2 layers, 32 features, 77 tokens) and a T5 standing for its mT5 (the
    ``_pipelines`` one, 256 tokens; both lengths are fixed by the pipeline); 2 DiT blocks whose
    cross-attention keys are ``[77 BERT, 256 projected T5]`` tokens, padding replaced by learned features
    (no attention mask); a VAE scaling by 8; no safety checker.

    Sizes: multiples of 16 pixels (others are rounded down), with ``use_resolution_binning=False`` (by
    default the size snaps to HunyuanDiT's ~1024-pixel shapes); 64 x 96 is a 4 x 6 patch grid. Guidance
    (``guidance_scale > 1``, the default 5) batches ``[uncond, cond]`` into one transformer call, the
    negative prompt (default "") encoded by both encoders."""
    torch.manual_seed(seed)
    bert_tok = _bert_tokenizer()
    t5_tok = t5_tokenizer()
    text_encoder = BertModel(
        BertConfig(
            vocab_size=len(bert_tok),
            hidden_size=_HIDDEN,
            num_hidden_layers=2,
            num_attention_heads=2,
            intermediate_size=2 * _HIDDEN,
            max_position_embeddings=77,
            pad_token_id=bert_tok.pad_token_id,
        )
    )
    transformer = HunyuanDiT2DModel(
        num_attention_heads=2,
        attention_head_dim=16,
        in_channels=4,
        patch_size=2,
        sample_size=8,
        hidden_size=_HIDDEN,
        num_layers=2,
        mlp_ratio=2.0,
        cross_attention_dim=_HIDDEN,
        cross_attention_dim_t5=_HIDDEN,
        pooled_projection_dim=16,
    )
    return HunyuanDiTPipeline(
        **_in_eval_mode(
            vae=vae_by_8(scaling_factor=0.13025),
            text_encoder=text_encoder,
            tokenizer=bert_tok,
            transformer=transformer,
            scheduler=DDPMScheduler(
                beta_schedule="scaled_linear",
                beta_start=0.00085,
                beta_end=0.03,
                prediction_type="v_prediction",
                clip_sample=False,
                steps_offset=1,
            ),
            safety_checker=None,
            feature_extractor=None,
            requires_safety_checker=False,
            text_encoder_2=_t5(len(t5_tok), _HIDDEN),
            tokenizer_2=t5_tok,
        )
    )
