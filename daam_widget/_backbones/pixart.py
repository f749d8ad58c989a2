"""PixArt-α / PixArt-Σ and Sana: transformers with real cross-attention (``attn2``) to a text encoder.

Keys are text tokens only, so ``softmax_over="text"`` and ``"all"`` are the same. The pipelines lower-case
and strip captions before tokenizing (cleaning them further only with ``clean_caption=True`` and the
optional bs4 and ftfy installed), and by default generate at the nearest size of a fixed set of aspect
ratios and resize and crop the image back to the size asked for: maps get the same resize and crop.
"""

from __future__ import annotations

import inspect
from typing import Any, ClassVar

import torch

from .._text_streams import Template, TextStream, first_and_last
from ._base import (
    CrossAttentionBackbone,
    DenoiserCall,
    argument,
    pipeline_call_locals,
    resized_back,
    size_before_binning,
)


class PixArtBackbone(CrossAttentionBackbone):
    name = "PixArt"
    pipelines: ClassVar[tuple[str, ...]] = ("PixArtAlphaPipeline", "PixArtSigmaPipeline")
    processors: ClassVar[tuple[str, ...]] = ("AttnProcessor2_0",)

    def attention_layers(self) -> dict[str, Any]:
        layers = super().attention_layers()
        self.check_processors(layers, self.processors)
        return layers

    def read_call(self, args: tuple, kwargs: dict[str, Any]) -> DenoiserCall:
        return self.latent_call(
            argument(args, kwargs, 0, "hidden_states"),
            kwargs.get("timestep"),
            argument(args, kwargs, 1, "encoder_hidden_states"),
            patch=int(self.denoiser.config.patch_size),
            output_size=size_before_binning(self.pipe),
        )

    def streams(self) -> list[TextStream]:
        return [TextStream("t5", template=Template(lowercase=True))]

    def finish(self, images: torch.Tensor, call: DenoiserCall) -> torch.Tensor:
        return resized_back(self.pipe, images, call)

    def encode_text(self, prompt: str) -> dict[str, Any]:
        embeddings, mask, _, _ = self.pipe.encode_prompt(
            prompt, do_classifier_free_guidance=False, device=self.denoiser.device, clean_caption=False
        )
        return {"encoder_hidden_states": embeddings, "encoder_attention_mask": mask}

    def denoise(self, latents: torch.Tensor, timestep: int, text: dict[str, Any]) -> None:
        t = torch.tensor([timestep], device=latents.device)
        conditions: dict[str, torch.Tensor | None] = {"resolution": None, "aspect_ratio": None}
        if self.denoiser.config.sample_size == 128:  # PixArt's 1024-pixel models take the size too
            height, width = (side * int(self.pipe.vae_scale_factor) for side in latents.shape[-2:])
            conditions = {
                "resolution": torch.tensor([[height, width]], device=latents.device, dtype=latents.dtype),
                "aspect_ratio": torch.tensor([[height / width]], device=latents.device, dtype=latents.dtype),
            }
        self.denoiser(latents, timestep=t, added_cond_kwargs=conditions, **text)


class SanaBackbone(PixArtBackbone):
    """Keys are ``<bos>`` and the last ``max_sequence_length - 1`` Gemma positions of the instruction
    (``complex_human_instruction``, on by default) followed by the prompt; q/k norms act before the
    head split."""

    name = "Sana"
    pipelines = ("SanaPipeline",)
    processors = ("SanaAttnProcessor2_0",)
    norm_before_heads = True

    def streams(self) -> list[TextStream]:
        """The instruction of the running call (the default outside one) before the lower-cased prompt."""
        call_locals = pipeline_call_locals(self.pipe)
        instruction = call_locals.get("complex_human_instruction", self._instruction())
        template = Template("\n".join(instruction or []), lowercase=True)
        bare = Template(lowercase=True)  # the negative prompt is encoded without the instruction
        return [TextStream("gemma", template=template, keys=first_and_last, negative_template=bare)]

    def _instruction(self) -> list[str]:
        """The pipeline's default ``complex_human_instruction``."""
        parameter = inspect.signature(type(self.pipe).__call__).parameters.get("complex_human_instruction")
        return list(parameter.default or []) if parameter is not None else []

    def pixel_multiple(self) -> tuple[int, str]:
        return 32, "32 (Sana's size rule)"

    def encode_image(self, pixels: torch.Tensor) -> torch.Tensor:
        return self.pipe.vae.encode(pixels).latent * self.pipe.vae.config.scaling_factor

    def encode_text(self, prompt: str) -> dict[str, Any]:
        embeddings, mask, _, _ = self.pipe.encode_prompt(
            prompt,
            do_classifier_free_guidance=False,
            device=self.denoiser.device,
            complex_human_instruction=self._instruction(),
        )
        return {"encoder_hidden_states": embeddings, "encoder_attention_mask": mask}

    def denoise(self, latents: torch.Tensor, timestep: int, text: dict[str, Any]) -> None:
        self.denoiser(latents, timestep=torch.tensor([timestep], device=latents.device), **text)
