"""Flux.2 [dev] and [klein]: double-stream blocks (joint attention over [text, image]) and single-stream
blocks that get the sequence already concatenated, with fused q/k/v(/MLP) projections.

Both read the prompt through a chat template and stack three hidden layers of the text encoder side by
side in the features; every position of the padded window is a key (no key mask reaches the
transformer). [dev]: Mistral Small 3.1 with a system message, guidance-distilled (one call per step).
[klein]: Qwen3's template; with guidance the negative prompt ("") is a second transformer call after the
positive one in each step. Latents are patchified 2x2; the token grid comes from the image ids
``(t, h, w, l)`` of the generated image's tokens (reference images' tokens follow them).
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch

from .._text_streams import Template, TextStream
from ._base import DenoiserCall, JointBackbone


class Flux2Backbone(JointBackbone):
    name = "Flux.2"
    pipelines: ClassVar[tuple[str, ...]] = ("Flux2Pipeline",)
    layer_pattern = r".*\.attn"
    processors = ("Flux2AttnProcessor", "Flux2ParallelSelfAttnProcessor")
    concept_blocks_pattern = r"transformer_blocks\.\d+"

    def __init__(self, pipe: Any) -> None:
        super().__init__(pipe)
        self._grid_of: tuple[Any, tuple[int, int]] | None = None

    def read_call(self, args: tuple, kwargs: dict[str, Any]) -> DenoiserCall:
        latents = kwargs["hidden_states"]
        grid = self._grid(kwargs.get("img_ids"))
        scale = 2 * int(self.pipe.vae_scale_factor)  # 2x2 patches
        return DenoiserCall(
            batch=int(latents.shape[0]),
            timestep=kwargs.get("timestep"),
            embeddings=kwargs["encoder_hidden_states"],
            grid=grid,
            image_size=(grid[0] * scale, grid[1] * scale),
        )

    def _grid(self, image_ids: torch.Tensor | None) -> tuple[int, int]:
        """(rows, columns) of the generated image's tokens, those of the first time coordinate. Read once
        per ids tensor: it costs a device sync."""
        if image_ids is None:
            raise ValueError("the Flux.2 transformer was called without img_ids; the token grid is unknown")
        if self._grid_of is None or self._grid_of[0] is not image_ids:
            ids = image_ids.reshape(-1, image_ids.shape[-1])[: image_ids.shape[-2]]
            ids = ids[ids[:, 0] == ids[0, 0]]
            self._grid_of = (image_ids, (int(ids[:, 1].max()) + 1, int(ids[:, 2].max()) + 1))
        return self._grid_of[1]

    def streams(self) -> list[TextStream]:
        from diffusers.pipelines.flux2.pipeline_flux2 import format_input

        tokenizer = self.pipe.tokenizer

        def render(prompt: str) -> str:
            messages = format_input([prompt], system_message=self.pipe.system_message)[0]
            return str(tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=False))

        return [TextStream("mistral", template=Template.around(render, special_tokens=False))]


class Flux2KleinBackbone(Flux2Backbone):
    pipelines = ("Flux2KleinPipeline",)
    negative_in_separate_call = True

    def streams(self) -> list[TextStream]:
        return [TextStream("qwen", template=Template.user_turn(self.pipe.tokenizer, enable_thinking=False))]
