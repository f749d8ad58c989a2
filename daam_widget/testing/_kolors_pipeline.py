"""A tiny random-init Kolors pipeline, and the ChatGLM tokenizer it reads prompts with, built in code.

The real classes at tiny sizes: ``KolorsPipeline``, an SDXL-like ``UNet2DConditionModel`` whose text
features pass through ``encoder_hid_proj`` (``text_proj``), the ``AutoencoderKL`` of ``_pipelines``
(scaling by 2), diffusers' ``ChatGLMModel`` and ``ChatGLMTokenizer``, and an Euler scheduler with Kolors'
noise schedule (1100 training steps, betas up to 0.014). The tokenizer needs a SentencePiece
model file, trained here from the words of ``WORDS`` (so it needs the ``sentencepiece`` package).
"""

from __future__ import annotations

import functools
import io
import string
import tempfile
from pathlib import Path

import torch

from .._dependencies import quiet_pipeline_imports
from ._pipelines import _in_eval_mode, _vae
from ._tokenizers import WORDS

with quiet_pipeline_imports():
    from diffusers import EulerDiscreteScheduler, KolorsPipeline, UNet2DConditionModel
    from diffusers.pipelines.kolors.text_encoder import ChatGLMConfig, ChatGLMModel, RMSNorm
    from diffusers.pipelines.kolors.tokenizer import ChatGLMTokenizer

_HIDDEN = 32
"""The text encoder's hidden size (2 heads of 16), hence the features of every text token and of the
pooled text embedding that reach the UNet."""

_CORPUS = (" ".join(WORDS),) * 8 + (" ".join(string.ascii_letters + string.digits + string.punctuation),)
"""The words, often enough to be merged whole before any piece of another word, and every printable
ASCII character as a word of its own, so that each has a piece with and without the space marker."""


@functools.cache
def _sentencepiece_model_dir() -> tempfile.TemporaryDirectory[str]:
    """A directory holding ``tokenizer.model``, trained once per process and removed at its exit."""
    try:
        import sentencepiece
    except ImportError:
        raise ImportError(
            "the tiny Kolors pipeline's ChatGLM tokenizer needs the sentencepiece package: "
            "pip install sentencepiece"
        ) from None
    model = io.BytesIO()
    sentencepiece.SentencePieceTrainer.train(
        sentence_iterator=iter(_CORPUS),
        model_writer=model,
        model_type="bpe",
        vocab_size=1000,
        hard_vocab_limit=False,
        character_coverage=1.0,
        byte_fallback=True,
        normalization_rule_name="identity",
        num_threads=1,
        minloglevel=2,
    )
    directory = tempfile.TemporaryDirectory(prefix="daam-widget-chatglm-")
    (Path(directory.name) / "tokenizer.model").write_bytes(model.getvalue())
    return directory


def chatglm_tokenizer() -> ChatGLMTokenizer:
    """ChatGLM's SentencePiece BPE tokenizer (needs ``sentencepiece``): each word of ``WORDS`` is one "▁word"
    piece; any other word splits into pieces of those words and single characters (either case kept, every
    printable ASCII character has a piece), other characters fall back to byte pieces. Padding goes on the
    left (id 0, shown as "" by ``convert_ids_to_tokens``), then come "[gMASK]" and "sop", then the prompt.
    A slow tokenizer: no offsets (``return_offsets_mapping`` is ignored)."""
    vocab_file = Path(_sentencepiece_model_dir().name) / "tokenizer.model"
    return ChatGLMTokenizer(vocab_file=str(vocab_file))


def kolors_pipeline(seed: int = 0) -> KolorsPipeline:
    """Kolors: a ChatGLM encoder (2 layers, 32 features, multi-query attention, original RoPE, sequence
    first) whose second-to-last hidden states reach the UNet as (batch, 256, 32): all 256 tokens, pads
    included, with no mask (``max_sequence_length`` is checked, at most 256, but not used: the pipeline
    always pads to 256). The last token of its last hidden states is the pooled embedding. An SDXL-like
    UNet (channels 8, 16, 16; text-time conditioning) with cross-attention at 1/2 and 1/4 of the latent size
    and in the mid block (1, 1 and 2 transformer layers), after ``encoder_hid_proj`` maps the 32 text
    features to 16.

    Sizes: multiples of 8 pixels (others raise); 32 x 48 pixels are 16 x 24 latents. Guidance
    (``guidance_scale > 1``, the default 5) batches the negative prompt (default "", encoded the same way)
    before the prompt into one UNet call per step."""
    torch.manual_seed(seed)
    tok = chatglm_tokenizer()
    # ChatGLM's default skips weight initialisation, and its RMSNorm weights start as torch.empty.
    text_encoder = ChatGLMModel(
        ChatGLMConfig(
            num_layers=2,
            padded_vocab_size=tok.vocab_size,
            hidden_size=_HIDDEN,
            ffn_hidden_size=2 * _HIDDEN,
            kv_channels=16,
            num_attention_heads=2,
            seq_length=256,
            add_qkv_bias=True,
            multi_query_attention=True,
            multi_query_group_num=1,
            original_rope=True,
        ),
        empty_init=False,
    )
    for module in text_encoder.modules():
        if isinstance(module, RMSNorm):
            torch.nn.init.ones_(module.weight)
    unet = UNet2DConditionModel(
        sample_size=16,
        block_out_channels=(8, 16, 16),
        layers_per_block=1,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"),
        attention_head_dim=(2, 4, 4),
        transformer_layers_per_block=(1, 1, 2),
        use_linear_projection=True,
        cross_attention_dim=16,
        encoder_hid_dim=_HIDDEN,
        encoder_hid_dim_type="text_proj",
        addition_embed_type="text_time",
        addition_time_embed_dim=8,
        projection_class_embeddings_input_dim=_HIDDEN + 6 * 8,
        norm_num_groups=4,
    )
    return KolorsPipeline(
        **_in_eval_mode(
            vae=_vae(),
            text_encoder=text_encoder,
            tokenizer=tok,
            unet=unet,
            scheduler=EulerDiscreteScheduler(
                num_train_timesteps=1100, beta_schedule="scaled_linear", beta_end=0.014
            ),
        )
    )
