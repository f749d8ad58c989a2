"""AuraFlow: MMDiT (joint then single blocks) over [8 register tokens, text, image].

The text is UMT5's padded 256-token window with the padding's features zeroed (not masked), in a
guidance batch ``[negative, positive]``. The learned register tokens are keys, but not text.
"""

from __future__ import annotations

from .._text_streams import TextStream
from ._base import JointBackbone


class AuraFlowBackbone(JointBackbone):
    name = "AuraFlow"
    pipelines = ("AuraFlowPipeline",)
    layer_pattern = r"(joint_transformer_blocks|single_transformer_blocks)\.\d+\.attn"
    processors = ("AuraFlowAttnProcessor2_0",)
    registers = 8

    def streams(self) -> list[TextStream]:
        return [TextStream("umt5")]
