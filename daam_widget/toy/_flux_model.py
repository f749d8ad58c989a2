"""The toy transformer: a standard ``FluxPipeline`` on the toy world, configs in code.

The same 64x64 images and the same convolutional AutoencoderKL as the toy UNet (16x16x4 latents, which
Flux packs 2x2 into an 8x8 grid of 16-channel tokens), a ``FluxTransformer2DModel`` with 4 double-stream
and 2 single-stream blocks (4 heads of 32), a 2-layer CLIPTextModel for the pooled vector, a 2-layer
T5EncoderModel for the token states, and the world's words as single tokens in both tokenizers.
"""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any

from transformers import CLIPTextModel, T5Config, T5EncoderModel, T5Tokenizer

from .._dependencies import quiet_pipeline_imports
from ._tokenizer import make_t5_tokenizer
from ._world import SIZE, WORDS, warn_of_unknown_words

with quiet_pipeline_imports():
    from diffusers import AutoencoderKL, FlowMatchEulerDiscreteScheduler, FluxPipeline, FluxTransformer2DModel

WEIGHTS = Path(__file__).parent / "weights_flux"
MAX_TOKENS = 32
TEXT_WIDTH = 64
DEFAULT_CALL: dict[str, Any] = {
    "height": SIZE,
    "width": SIZE,
    "num_inference_steps": 28,
    "negative_prompt": "",
    "true_cfg_scale": 4.0,
    "max_sequence_length": MAX_TOKENS,
}
"""What ``pipe(prompt)`` does unless told otherwise: the toy's size, its 32-token window, and true
classifier-free guidance against the empty prompt (the model was trained with 10% empty captions and has
no distilled guidance embedding)."""


def t5_tokenizer() -> T5Tokenizer:
    return make_t5_tokenizer(WORDS, model_max_length=MAX_TOKENS)


def t5_encoder(vocab_size: int) -> T5EncoderModel:
    return T5EncoderModel(
        T5Config(
            vocab_size=vocab_size,
            d_model=TEXT_WIDTH,
            d_ff=2 * TEXT_WIDTH,
            d_kv=16,
            num_layers=2,
            num_heads=4,
            dropout_rate=0.0,
        )
    )


def transformer() -> FluxTransformer2DModel:
    return FluxTransformer2DModel(
        patch_size=1,
        in_channels=16,  # 4 latent channels, packed 2x2
        num_layers=4,
        num_single_layers=2,
        attention_head_dim=32,
        num_attention_heads=4,
        joint_attention_dim=TEXT_WIDTH,
        pooled_projection_dim=TEXT_WIDTH,
        guidance_embeds=False,
        axes_dims_rope=(8, 12, 12),
    )


def scheduler() -> FlowMatchEulerDiscreteScheduler:
    return FlowMatchEulerDiscreteScheduler(num_train_timesteps=1000, shift=1.0)


def assemble(
    vae: AutoencoderKL,
    model: FluxTransformer2DModel,
    clip: CLIPTextModel,
    t5: T5EncoderModel,
    clip_tokenizer: Any,
) -> FluxPipeline:
    return FluxPipeline(
        scheduler=scheduler(),
        vae=vae,
        text_encoder=clip,
        tokenizer=clip_tokenizer,
        text_encoder_2=t5,
        tokenizer_2=t5_tokenizer(),
        transformer=model,
    )


class ToyFluxPipeline(FluxPipeline):
    """The toy transformer's ``FluxPipeline``: ``pipe(prompt)`` uses ``DEFAULT_CALL`` where not told
    otherwise, and it says which words of a prompt it does not know (as ``ToyPipeline`` does)."""

    default_steps = DEFAULT_CALL["num_inference_steps"]
    default_guidance = DEFAULT_CALL["true_cfg_scale"]
    guidance_keyword = "true_cfg_scale"

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        given = {*list(_FLUX_CALL.parameters)[1 : 1 + len(args)], *kwargs}
        if "negative_prompt_embeds" in given:
            given.add("negative_prompt")
        call = {k: v for k, v in DEFAULT_CALL.items() if k not in given}
        return super().__call__(*args, **call, **kwargs)  # type: ignore[misc]  # diffusers is lazy

    def encode_prompt(self, prompt: Any, *args: Any, **kwargs: Any) -> Any:
        warn_of_unknown_words([prompt], stacklevel=4)
        return super().encode_prompt(prompt, *args, **kwargs)  # type: ignore[misc]  # diffusers is lazy


_FLUX_CALL = inspect.signature(FluxPipeline.__call__)
# What inspects the call (help(), the widget's argument check) sees FluxPipeline's parameters, with the
# toy's defaults.
ToyFluxPipeline.__call__.__signature__ = _FLUX_CALL.replace(  # type: ignore[attr-defined]
    parameters=[p.replace(default=DEFAULT_CALL.get(n, p.default)) for n, p in _FLUX_CALL.parameters.items()]
)
