"""The toy model's architecture (configs in code) and the loader of its shipped weights.

A standard ``StableDiffusionPipeline``: 64x64 images, a 3-block convolutional AutoencoderKL to 16x16x4
latents, a UNet2DConditionModel with one-head cross-attention at 16x16 and 8x8 (none at 4x4 or in the mid
block), a 2-layer CLIPTextModel (causal, as in Stable Diffusion) and a CLIP BPE tokenizer over the world's
words.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal, overload

import torch
from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

from .._dependencies import quiet_pipeline_imports
from ._flux_model import WEIGHTS as FLUX_WEIGHTS
from ._flux_model import ToyFluxPipeline
from ._tokenizer import make_clip_tokenizer
from ._world import WORDS, warn_of_unknown_words

with quiet_pipeline_imports():
    from diffusers import (
        AutoencoderKL,
        DDIMScheduler,
        DDPMScheduler,
        StableDiffusionPipeline,
        UNet2DConditionModel,
    )

WEIGHTS = Path(__file__).parent / "weights"
MAX_TOKENS = 32
SCHEDULE = {"beta_start": 0.00085, "beta_end": 0.012, "beta_schedule": "scaled_linear"}


def tokenizer() -> CLIPTokenizer:
    return make_clip_tokenizer(WORDS, model_max_length=MAX_TOKENS)


def text_encoder(vocab_size: int) -> CLIPTextModel:
    return CLIPTextModel(
        CLIPTextConfig(
            vocab_size=vocab_size,
            hidden_size=64,
            intermediate_size=128,
            num_hidden_layers=2,
            num_attention_heads=2,
            max_position_embeddings=MAX_TOKENS,
            projection_dim=64,
            bos_token_id=vocab_size - 2,
            eos_token_id=vocab_size - 1,
            pad_token_id=vocab_size - 1,
        )
    )


def vae() -> AutoencoderKL:
    return AutoencoderKL(
        block_out_channels=(32, 64, 64),
        down_block_types=("DownEncoderBlock2D",) * 3,
        up_block_types=("UpDecoderBlock2D",) * 3,
        latent_channels=4,
        layers_per_block=1,
        norm_num_groups=8,
        sample_size=64,
        mid_block_add_attention=False,
    )


def unet() -> UNet2DConditionModel:
    return UNet2DConditionModel(
        sample_size=16,
        block_out_channels=(32, 64, 64),
        layers_per_block=1,
        # Cross-attention at 16x16 and 8x8 only: 4x4 maps would blur every word's DAAM map to a blob, and
        # convolutions at 4x4 already see the whole latent.
        down_block_types=("CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"),
        mid_block_type="UNetMidBlock2D",
        up_block_types=("UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"),
        cross_attention_dim=64,
        attention_head_dim=1,  # diffusers reads this as the number of heads: one head per layer
        norm_num_groups=16,
    )


def training_scheduler() -> DDPMScheduler:
    return DDPMScheduler(num_train_timesteps=1000, **SCHEDULE)


def sampling_scheduler() -> DDIMScheduler:
    return DDIMScheduler(
        num_train_timesteps=1000, clip_sample=False, set_alpha_to_one=False, steps_offset=1, **SCHEDULE
    )


def assemble(
    vae_model: AutoencoderKL, unet_model: UNet2DConditionModel, encoder: CLIPTextModel
) -> StableDiffusionPipeline:
    return StableDiffusionPipeline(
        vae=vae_model,
        text_encoder=encoder,
        tokenizer=tokenizer(),
        unet=unet_model,
        scheduler=sampling_scheduler(),
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )


class ToyPipeline(StableDiffusionPipeline):
    """The toy's ``StableDiffusionPipeline``, which says which words of a prompt it does not know.

    Its tokenizer holds only the world's words (``WORDS``): any other word is split into letters, which
    the model never saw in training, and DAAM would then map letters.
    """

    default_steps, default_guidance, guidance_keyword = 50, 7.5, "guidance_scale"

    def encode_prompt(self, prompt: Any, *args: Any, **kwargs: Any) -> Any:
        negative = kwargs.get("negative_prompt", args[3] if len(args) > 3 else None)
        warn_of_unknown_words([prompt, negative], stacklevel=4)  # the pipeline call, under no_grad
        return super().encode_prompt(prompt, *args, **kwargs)  # type: ignore[misc]  # diffusers is lazy


MODELS = ("sd", "flux")
"""The toy models by the pipeline family they are: the UNet (``ToyPipeline``, a ``StableDiffusionPipeline``)
and the transformer (``ToyFluxPipeline``, a ``FluxPipeline``)."""


@overload
def load_pipeline(
    model: Literal["sd"] = "sd",
    device: str | torch.device | None = None,
    dtype: torch.dtype | None = None,
    path: str | Path | None = None,
) -> ToyPipeline: ...


@overload
def load_pipeline(
    model: Literal["flux"],
    device: str | torch.device | None = None,
    dtype: torch.dtype | None = None,
    path: str | Path | None = None,
) -> ToyFluxPipeline: ...


@overload
def load_pipeline(
    model: str,
    device: str | torch.device | None = None,
    dtype: torch.dtype | None = None,
    path: str | Path | None = None,
) -> ToyPipeline | ToyFluxPipeline: ...


def load_pipeline(
    model: str = "sd",
    device: str | torch.device | None = None,
    dtype: torch.dtype | None = None,
    path: str | Path | None = None,
) -> ToyPipeline | ToyFluxPipeline:
    """A toy pipeline with the weights shipped in the package; no network.

    ``model="sd"`` (default): the toy UNet, a ``StableDiffusionPipeline``; ``pipe(prompt)`` makes a 64x64
    image in 50 DDIM steps with guidance 7.5, as any SD pipeline does. ``model="flux"``: the toy
    transformer, a ``FluxPipeline``; ``pipe(prompt)`` makes a 64x64 image in 28 Euler steps with true
    classifier-free guidance 4 (``_flux_model.DEFAULT_CALL``). ``path`` loads another saved pipeline folder
    of that model (a training checkpoint) instead of the shipped weights.
    """
    if model not in MODELS:
        raise ValueError(f"model must be one of {', '.join(map(repr, MODELS))}, not {model!r}")
    pipe_class: Any = ToyPipeline if model == "sd" else ToyFluxPipeline
    weights = WEIGHTS if model == "sd" else FLUX_WEIGHTS
    folder = Path(path) if path is not None else weights
    if not (folder / "model_index.json").exists():
        trainer = "train" if model == "sd" else "train_transformer"
        raise FileNotFoundError(
            f"no saved toy pipeline at {folder}: path= must be a folder holding model_index.json, "
            f"as `python -m daam_widget.toy.{trainer} --out FOLDER` writes in FOLDER/final"
        )
    kwargs: dict[str, Any] = {"local_files_only": True}
    if dtype is not None:
        kwargs["torch_dtype"] = dtype
    pipe = pipe_class.from_pretrained(str(folder), **kwargs)
    if device is not None:
        pipe = pipe.to(device)
    return pipe
