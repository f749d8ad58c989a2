"""Kolors: an SDXL UNet whose cross-attention reads ChatGLM3's second-to-last layer (projected in the
UNet), over the prompt's 256-token window padded on the left after ``[gMASK] sop``, every position a key.

ChatGLM's tokenizer is a slow, SentencePiece tokenizer without character offsets: words are found by
searching each token's text in the prompt. ChatGLM returns its hidden states sequence first.
"""

from __future__ import annotations

from typing import ClassVar

from .._text_streams import TextStream
from .unet import UNetBackbone


class KolorsBackbone(UNetBackbone):
    name = "Kolors"
    pipelines: ClassVar[tuple[str, ...]] = ("KolorsPipeline",)

    def streams(self) -> list[TextStream]:
        return [TextStream("chatglm")]
