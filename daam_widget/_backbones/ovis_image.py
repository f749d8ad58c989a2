"""Ovis-Image: Flux.1's architecture ([text, image] in double- and single-stream blocks) on Qwen3.

The prompt goes after a system sentence into Qwen3's chat template; the pipeline drops the template's
first 28 positions (the user turn's opening and the sentence) and zeroes the padding's features, so the
keys are the prompt's tokens, the template's closing tokens and padding, unmasked. The negative prompt is a
second call after the positive one.
"""

from __future__ import annotations

from .._text_streams import Template, TextStream, from_position
from .flux import FluxLayoutBackbone


class OvisImageBackbone(FluxLayoutBackbone):
    name = "Ovis-Image"
    pipelines = ("OvisImagePipeline",)
    processors = ("OvisImageAttnProcessor",)
    concept_blocks_pattern = r"transformer_blocks\.\d+"

    def streams(self) -> list[TextStream]:
        template = Template.user_turn(
            self.pipe.tokenizer, self.pipe.system_prompt, special_tokens=False, enable_thinking=False
        )
        return [
            TextStream("qwen", template=template, keys=from_position(int(self.pipe.user_prompt_begin_id)))
        ]
