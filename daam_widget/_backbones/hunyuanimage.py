"""HunyuanImage-2.1: double- and single-stream blocks whose one attention call runs over [image, text].

The text is Qwen2.5-VL's third-to-last layer of the prompt in a chat template, the template's first 34
positions dropped, under a key mask. A second encoder (ByT5) reads only the prompt's quoted text, and the
transformer puts its valid tokens before the prompt's: prompts with quoted text are refused for now. The
VAE compresses 32x, with no patching. A guider runs the negative prompt as a second call after the
positive one.
"""

from __future__ import annotations

from typing import Any

from .._text_streams import Template, TextStream, from_position
from ._base import DenoiserCall, JointBackbone


class HunyuanImageBackbone(JointBackbone):
    name = "HunyuanImage-2.1"
    pipelines = ("HunyuanImagePipeline",)
    layer_pattern = r"(transformer_blocks|single_transformer_blocks)\.\d+\.attn"
    processors = ("HunyuanImageAttnProcessor",)
    text_first = False
    negative_in_separate_call = True

    def read_call(self, args: tuple, kwargs: dict[str, Any]) -> DenoiserCall:
        glyphs = kwargs.get("encoder_attention_mask_2")
        if glyphs is not None and self.once_per("glyphs", (glyphs,), lambda parts: bool(parts[0].any())):
            raise NotImplementedError(
                "HunyuanImage-2.1 with quoted text in the prompt is not traced yet: its glyph tokens go "
                "before the prompt's among the keys; remove the quotation marks to trace it"
            )
        return self.latent_call(kwargs["hidden_states"], kwargs["timestep"], kwargs["encoder_hidden_states"])

    def streams(self) -> list[TextStream]:
        prefix, _, suffix = self.pipe.prompt_template_encode.partition("{}")
        keys = from_position(int(self.pipe.prompt_template_encode_start_idx))
        return [TextStream("qwen", template=Template(prefix, suffix), keys=keys)]
