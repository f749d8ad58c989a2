"""CogVideoX (1.0: 2B and 5B) text-to-video: a transformer whose blocks run joint attention over
[text, video], video tokens in (frame, row, column) order.

Keys are T5's 226 positions, unmasked, then the video's; rotary positions (5B) rotate the video part only.
The guidance batch is ``[negative, positive]``. Latents come frames before channels, ``(batch, frames,
channels, h, w)``. CogVideoX 1.5 (``patch_size_t=2``) pairs latent frames into one token frame and pads
the first pair; it is refused until its frame rule is mapped.
"""

from __future__ import annotations

from typing import Any

from .._text_streams import TextStream
from ._base import DenoiserCall, JointBackbone, argument


class CogVideoXBackbone(JointBackbone):
    name = "CogVideoX"
    pipelines = ("CogVideoXPipeline",)
    layer_pattern = r"transformer_blocks\.\d+\.attn1"
    processors = ("CogVideoXAttnProcessor2_0",)
    video = True

    def read_call(self, args: tuple, kwargs: dict[str, Any]) -> DenoiserCall:
        config = self.denoiser.config
        if config.patch_size_t is not None:
            raise NotImplementedError(
                "CogVideoX 1.5 (patch_size_t=2: two latent frames per token frame, the first pair padded) "
                "is not traced yet; CogVideoX 1.0 (2B, 5B) is"
            )
        latents = argument(args, kwargs, 0, "hidden_states")  # (batch, frames, channels, h, w)
        batch, frames, _, h, w = (int(n) for n in latents.shape)
        patch, scale = int(config.patch_size), int(self.pipe.vae_scale_factor_spatial)
        return DenoiserCall(
            batch=batch,
            timestep=argument(args, kwargs, 2, "timestep"),
            embeddings=argument(args, kwargs, 1, "encoder_hidden_states"),
            grid=(frames, h // patch, w // patch),
            image_size=(h * scale, w * scale),
            temporal_factor=int(self.pipe.vae_scale_factor_temporal),
        )

    def streams(self) -> list[TextStream]:
        return [TextStream("t5")]
