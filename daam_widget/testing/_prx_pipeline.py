"""A tiny random-init PRX pipeline, built from configs in code.

The real ``PRXPipeline`` with the real ``PRXTransformer2DModel``, an ``AutoencoderKL`` and a
``T5GemmaEncoder`` at tiny sizes (32 features, 2 heads of 16, 2 layers), and ``gemma_tokenizer``. The
pipeline cleans every prompt with ``ftfy`` (a test dependency) before tokenizing it.
"""

from __future__ import annotations

import torch
from transformers import T5GemmaConfig
from transformers.models.t5gemma.modeling_t5gemma import T5GemmaEncoder

from .._dependencies import quiet_pipeline_imports
from ._pipelines import _in_eval_mode, _vae
from ._tokenizers import gemma_tokenizer

with quiet_pipeline_imports():
    from diffusers import FlowMatchEulerDiscreteScheduler, PRXPipeline
    from diffusers.models.transformers.transformer_prx import PRXTransformer2DModel

_HIDDEN = 32
"""The text encoder's hidden size and the transformer's (2 heads of 16)."""


def _t5gemma_encoder(vocab_size: int) -> T5GemmaEncoder:
    """T5Gemma's encoder: 2 layers (one sliding-window, one full), 2 heads of 16 (1 key-value head).

    Built from the encoder-decoder config's ``encoder`` part, which that config completes (dropout rates):
    the encoder does not take the whole config."""
    config = T5GemmaConfig(
        encoder={
            "vocab_size": vocab_size,
            "hidden_size": _HIDDEN,
            "intermediate_size": 2 * _HIDDEN,
            "num_hidden_layers": 2,
            "num_attention_heads": 2,
            "num_key_value_heads": 1,
            "head_dim": 16,
        },
        vocab_size=vocab_size,
    )
    return T5GemmaEncoder(config.encoder)  # type: ignore[arg-type]  # annotated as the whole config


def prx_pipeline(seed: int = 0) -> PRXPipeline:
    """PRX: a T5Gemma encoder (2 layers, 32 features) on the cleaned prompt (lower-cased, URLs and stray
    punctuation dropped), whose last hidden states and padding mask reach the transformer; a DiT of 2 blocks
    whose image queries attend to ``[text, image]`` keys, the text keys the same in every block; the
    ``AutoencoderKL`` of ``_pipelines`` (scaling by 2), with a ``shift_factor``: the pipeline adds it
    unconditionally, and ``None`` would raise.

    Sizes: multiples of 4 pixels (others raise), with ``use_resolution_binning=False``; binning (the
    default) maps any size to a 512-pixel-scale bucket and resizes the image back. The tokenizer pads every
    prompt to ``tokenizer_max_length`` (default its ``model_max_length``, 256). Guidance
    (``guidance_scale > 1``, the default 4) batches the negative prompt (default "") before the prompt into
    one transformer call per step. Each block's modulation, which its own initialisation zeroes (the blocks
    would then be the identity and the prompt would not change the image), gets PyTorch's default one."""
    torch.manual_seed(seed)
    tok = gemma_tokenizer(model_max_length=256)
    transformer = PRXTransformer2DModel(
        in_channels=4,
        patch_size=2,
        context_in_dim=_HIDDEN,
        hidden_size=_HIDDEN,
        mlp_ratio=2.0,
        num_heads=2,
        depth=2,
        axes_dim=[8, 8],
    )
    for block in transformer.blocks:
        block.modulation.lin.reset_parameters()
    return PRXPipeline(
        **_in_eval_mode(
            transformer=transformer,
            scheduler=FlowMatchEulerDiscreteScheduler(),
            text_encoder=_t5gemma_encoder(len(tok)),
            tokenizer=tok,
            vae=_vae(shift_factor=0.1159, scaling_factor=0.3611),
        )
    )
