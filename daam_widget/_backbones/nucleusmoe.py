"""NucleusMoE-Image: an MoE DiT whose blocks attend from the image tokens to [image, text] keys.

The prompt goes after a system message into Qwen3-VL's chat template; every position of the window (the
system message and the template included, padded to a multiple of 8 under a key mask) is a key, from the
encoder's eighth-to-last layer. The negative prompt is a second call after the positive one; latents are
packed 2x2 as Qwen-Image's, and the VAE decodes one video frame.
"""

from __future__ import annotations

from .._text_streams import Template, TextStream
from ._base import pipeline_call_locals
from .qwen_image import QwenImageBackbone


class NucleusMoEBackbone(QwenImageBackbone):
    name = "NucleusMoE-Image"
    pipelines = ("NucleusMoEImagePipeline",)
    text_first = False
    processors = ("NucleusMoEAttnProcessor2_0",)

    def streams(self) -> list[TextStream]:
        system = pipeline_call_locals(self.pipe).get("system_prompt")
        template = Template.around(lambda prompt: str(self.pipe._format_prompt(prompt, system)))
        return [TextStream("qwen", tokenizer="processor", template=template)]
