"""Qwen-Image: a double-stream MMDiT whose every block runs joint attention over [text, image].

The prompt goes into a Qwen2.5-VL chat template (a system message, then the prompt as the user's turn);
the pipeline drops the template's first 34 positions, keeps each prompt's valid tokens and pads them with
zeros to the longest prompt, so a key holds the prompt's tokens and the template's closing tokens, then
nothing (masked out by a bool key mask, ``None`` when no prompt is padded). The negative prompt of true
CFG is a second transformer call after the positive one in each step. Latents are packed 2x2; the VAE is
a video VAE that decodes ``(batch, 3, 1, H, W)``.
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch

from .._text_streams import Template, TextStream, valid_from
from ._base import Backbone, DenoiserCall, Layout


class QwenImageBackbone(Backbone):
    name = "Qwen-Image"
    pipelines: ClassVar[tuple[str, ...]] = ("QwenImagePipeline",)
    joint = True
    negative_in_separate_call = True
    processors: ClassVar[tuple[str, ...]] = ("QwenDoubleStreamAttnProcessor2_0",)

    def attention_layers(self) -> dict[str, Any]:
        layers = {
            name: module
            for name, module in self.denoiser.named_modules()
            if name.endswith(".attn") and hasattr(module, "processor")
        }
        self.check_processors(layers, self.processors)
        return layers

    def read_call(self, args: tuple, kwargs: dict[str, Any]) -> DenoiserCall:
        latents = kwargs["hidden_states"]
        shapes = kwargs.get("img_shapes")
        if not shapes:
            raise ValueError("the Qwen-Image transformer was called without img_shapes; the grid is unknown")
        first = (
            shapes[0][0] if isinstance(shapes[0][0], (tuple, list)) else shapes[0]
        )  # per image, or per sample
        _, h, w = first
        scale = 2 * int(self.pipe.vae_scale_factor)  # 2x2 packing
        return DenoiserCall(
            batch=int(latents.shape[0]),
            timestep=kwargs.get("timestep"),
            embeddings=kwargs["encoder_hidden_states"],
            grid=(int(h), int(w)),
            image_size=(int(h) * scale, int(w) * scale),
        )

    def has_text(self, arguments: dict[str, Any]) -> bool:
        return True

    def positions(self, arguments: dict[str, Any], call: DenoiserCall) -> Layout:
        text = int(arguments["encoder_hidden_states"].shape[1])
        return slice(text, text + call.grid[0] * call.grid[1]), slice(0, text)

    def guided(self) -> bool | None:
        return False

    def streams(self) -> list[TextStream]:
        prefix, _, suffix = self.pipe.prompt_template_encode.partition("{}")
        keys = valid_from(int(self.pipe.prompt_template_encode_start_idx))
        return [TextStream("qwen", template=Template(prefix, suffix), keys=keys)]

    def decoded_images(self, decoded: torch.Tensor) -> torch.Tensor:
        return decoded[:, :, 0] if decoded.ndim == 5 else decoded
