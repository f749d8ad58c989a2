"""Lumina-Image 2.0: a single-stream DiT whose main layers attend over one sequence per sample,
[the caption's valid tokens, image tokens], padded across the batch (masked only when lengths differ).

The caption is Gemma-2's second-to-last layer of ``system_prompt + " <Prompt Start> " + prompt`` padded on
the right; the transformer keeps each sample's valid tokens, so a sample's image starts after its own
caption. The caption and noise refiners attend within the caption or the image alone and are not traced.
The negative prompt (no system prompt) is a second call after the positive one; the timestep grows from
0 to 1.
"""

from __future__ import annotations

from typing import Any

from .._text_streams import Template, TextStream
from ._base import DenoiserCall, JointBackbone, Layout, argument, pipeline_call_locals


class Lumina2Backbone(JointBackbone):
    name = "Lumina-Image 2.0"
    pipelines = ("Lumina2Pipeline",)
    layer_pattern = r"layers\.\d+\.attn"
    processors = ("Lumina2AttnProcessor2_0",)
    negative_in_separate_call = True

    def read_call(self, args: tuple, kwargs: dict[str, Any]) -> DenoiserCall:
        mask = argument(args, kwargs, 3, "encoder_attention_mask")
        return self.latent_call(
            argument(args, kwargs, 0, "hidden_states"),
            argument(args, kwargs, 1, "timestep"),
            argument(args, kwargs, 2, "encoder_hidden_states"),
            patch=int(self.denoiser.config.patch_size),
            text_lengths=self.once_per("lengths", (mask,), lambda parts: tuple(parts[0].sum(1).tolist())),
            rising=True,
        )

    def positions(self, arguments: dict[str, Any], call: DenoiserCall) -> Layout:
        assert call.text_lengths is not None
        image = call.grid[0] * call.grid[1]
        return [(slice(length, length + image), slice(0, length)) for length in call.text_lengths]

    def streams(self) -> list[TextStream]:
        system = pipeline_call_locals(self.pipe).get("system_prompt") or self.pipe.system_prompt
        template = Template(system + " <Prompt Start> ")
        return [TextStream("gemma", template=template, negative_template=Template())]
