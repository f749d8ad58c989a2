"""SanaVideo text-to-video: Sana's blocks over (frame, row, column) video tokens, each block's ``attn2``
cross-attending to Gemma 2's keys.

The keys, their template, their mask and the q/k norms before the head split are Sana's
(``SanaBackbone``): ``<bos>`` and the last ``max_sequence_length - 1`` positions of the window holding the
instruction (``complex_human_instruction``, SanaVideo's own by default) and the lower-cased prompt; the
padding is masked by a -10000 bias, so it takes next to nothing of the softmax. The guidance batch is
``[negative, positive]``, the negative prompt encoded without the instruction. Latents are ``(batch,
channels, frames, h, w)``, cut into 1x2x2 patches.

The VAE is Wan 2.1's (``AutoencoderKLWan``, the 480p model's) or LTX-2's, both causal: the first frame is
decoded from latent frame 0 alone and every following ``vae_scale_factor_temporal`` frames from one
latent frame. With ``use_resolution_binning`` (the default) the pipeline generates at the nearest size of
its aspect-ratio table and resizes and crops the decoded video to the size asked for; a video's frames and
maps are the decoder's, so a call whose size is not in the table is refused (480 x 832 is in the 480p
table).
"""

from __future__ import annotations

from typing import Any

from ._base import DenoiserCall, argument, one_frame_per_token, size_before_binning
from .pixart import SanaBackbone


class SanaVideoBackbone(SanaBackbone):
    name = "SanaVideo"
    pipelines = ("SanaVideoPipeline",)
    video = True

    def read_call(self, args: tuple, kwargs: dict[str, Any]) -> DenoiserCall:
        latents = argument(args, kwargs, 0, "hidden_states")  # (batch, channels, frames, h, w)
        frames, h, w = (int(n) for n in latents.shape[-3:])
        patch_t, patch_h, patch_w = self.denoiser.config.patch_size
        one_frame_per_token(self.name, patch_t)
        scale = int(self.pipe.vae_scale_factor_spatial)
        image_size = (h * scale, w * scale)
        asked = size_before_binning(self.pipe)
        if asked is not None and asked != image_size:
            raise NotImplementedError(
                f"SanaVideo generated at {image_size[0]}x{image_size[1]} (its resolution binning) and "
                f"resizes the video to the {asked[0]}x{asked[1]} asked for, which a video's maps do not "
                "follow yet: ask for a size of the pipeline's aspect-ratio table, or pass "
                "use_resolution_binning=False"
            )
        return DenoiserCall(
            batch=int(latents.shape[0]),
            timestep=argument(args, kwargs, 2, "timestep"),
            embeddings=argument(args, kwargs, 1, "encoder_hidden_states"),
            grid=(frames, h // patch_h, w // patch_w),
            image_size=image_size,
            temporal_factor=int(self.pipe.vae_scale_factor_temporal),
        )
