"""CogView3-Plus and CogView4: MMDiTs whose blocks run joint attention over [text, image].

CogView3-Plus reads T5's padded 224-token window (no key mask; without a negative prompt its
unconditional text is zeros), in a guidance batch ``[negative, positive]``. CogView4 reads GLM-4's
second-to-last layer of the prompt padded to the longest prompt, then on the left to a multiple of 16
(every position a key, no mask), and runs the negative prompt as a second call after the positive one.
"""

from __future__ import annotations

from .._text_streams import Template, TextStream
from ._base import JointBackbone


class CogView3PlusBackbone(JointBackbone):
    name = "CogView3-Plus"
    pipelines = ("CogView3PlusPipeline",)
    layer_pattern = r"transformer_blocks\.\d+\.attn1"
    processors = ("CogVideoXAttnProcessor2_0",)

    def streams(self) -> list[TextStream]:
        return [TextStream("t5")]


class CogView4Backbone(JointBackbone):
    name = "CogView4"
    pipelines = ("CogView4Pipeline",)
    layer_pattern = r"transformer_blocks\.\d+\.attn1"
    processors = ("CogView4AttnProcessor",)
    negative_in_separate_call = True

    def guided(self) -> bool | None:
        return False

    def streams(self) -> list[TextStream]:
        return [TextStream("glm", template=Template(padding_side="left"))]
