"""Krea-2: an MMDiT whose blocks attend over [text, image] under a key mask.

The prompt follows Qwen-Image's system template; the pipeline pads ``prefix + prompt`` and appends the
assistant suffix after the padding, drops the prefix's 34 positions, and stacks twelve hidden layers of
Qwen3-VL per token, ``(batch, 512, 12, features)``: the keys are the prompt, padding (masked) and the
suffix. The text-fusion blocks attend within the text and are not traced. Latents are packed 2x2, the
grid read from the image rows of the rotary position ids; the VAE decodes one video frame; the negative
prompt is a second call after the positive one.
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch

from .._text_streams import Template, TextStream, from_position
from ._base import DenoiserCall, JointBackbone


class Krea2Backbone(JointBackbone):
    name = "Krea-2"
    pipelines = ("Krea2Pipeline",)
    layer_pattern = r"transformer_blocks\.\d+\.attn"
    negative_in_separate_call = True
    processors: ClassVar[tuple[str, ...]] = ("Krea2AttnProcessor",)

    def read_call(self, args: tuple, kwargs: dict[str, Any]) -> DenoiserCall:
        latents, text, positions = (
            kwargs["hidden_states"],
            kwargs["encoder_hidden_states"],
            kwargs["position_ids"],
        )
        grid = self.once_per("grid", (positions,), lambda parts: _grid(parts[0][text.shape[1] :]))
        scale = int(self.pipe.vae_scale_factor) * int(self.pipe.patch_size)
        return DenoiserCall(
            batch=int(latents.shape[0]),
            timestep=kwargs["timestep"],
            embeddings=self.once_per("text", (text,), lambda parts: parts[0].flatten(2)),
            grid=grid,
            image_size=(grid[0] * scale, grid[1] * scale),
        )

    def streams(self) -> list[TextStream]:
        pipe = self.pipe
        template = Template(
            pipe.prompt_template_encode_prefix, pipe.prompt_template_encode_suffix, padded_suffix=True
        )
        keys = from_position(int(pipe.prompt_template_encode_start_idx))
        return [TextStream("qwen", template=template, keys=keys)]


def _grid(image_rows: torch.Tensor) -> tuple[int, int]:
    """(rows, columns) of the image tokens from their rotary positions ``(tokens, (0, row, column))``."""
    return int(image_rows[:, 1].max()) + 1, int(image_rows[:, 2].max()) + 1
