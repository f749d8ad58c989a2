"""HunyuanDiT: a DiT whose blocks cross-attend (``attn2``) from the image tokens to two encoders' text
side by side: BERT's 77 positions, then mT5's 256 projected to BERT's width.

Padding positions are replaced by a learned padding embedding (not masked), so every position is a key.
The guidance batch is ``[negative, positive]``. The keys' text is read from the transformer's two inputs,
joined along the positions (mT5's features are wider: BERT's are zero-padded to them).
"""

from __future__ import annotations

from typing import Any

from .._text_streams import TextStream
from ._base import Backbone, DenoiserCall, argument, side_by_side


class HunyuanDiTBackbone(Backbone):
    name = "HunyuanDiT"
    pipelines = ("HunyuanDiTPipeline",)
    layer_pattern = r"blocks\.\d+\.attn2"
    processors = ("HunyuanAttnProcessor2_0",)

    def read_call(self, args: tuple, kwargs: dict[str, Any]) -> DenoiserCall:
        bert, t5 = kwargs["encoder_hidden_states"], kwargs["encoder_hidden_states_t5"]
        return self.latent_call(
            argument(args, kwargs, 0, "hidden_states"),
            argument(args, kwargs, 1, "timestep"),
            self.once_per("text", (bert, t5), side_by_side),
            patch=int(self.denoiser.config.patch_size),
        )

    def streams(self) -> list[TextStream]:
        bert = int(self.denoiser.config.text_len)
        return [
            TextStream("bert", length=bert),
            TextStream("t5", "text_encoder_2", "tokenizer_2", offset=bert),
        ]
