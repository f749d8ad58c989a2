"""HiDream-I1: double- and single-stream blocks whose one attention call runs over [image, text].

The text keys are T5's window (128 positions), then Llama-3.1's last layer of the prompt's window, then the
layer of Llama that the block reads (``llama_layers``): the prompt's words have keys in three segments
(streams ``t5``, ``llama`` and ``llama_layer``), none masked. CLIP gives pooled vectors only. The image
tokens of a non-square image are padded to a fixed length with zeroed keys, so the text starts where the
padded image ends. The guidance batch is ``[negative, positive]``.
"""

from __future__ import annotations

from typing import Any

from .._text_streams import TextStream
from ._base import DenoiserCall, JointBackbone, Layout, side_by_side


class HiDreamBackbone(JointBackbone):
    name = "HiDream-I1"
    pipelines = ("HiDreamImagePipeline",)
    layer_pattern = r"(double|single)_stream_blocks\.\d+\.block\.attn1"
    processors = ("HiDreamAttnProcessor",)

    def __init__(self, pipe: Any) -> None:
        super().__init__(pipe)
        self._segments = (128, 128)  # T5's and Llama's windows, read from each call

    def read_call(self, args: tuple, kwargs: dict[str, Any]) -> DenoiserCall:
        t5, llama = kwargs["encoder_hidden_states_t5"], kwargs["encoder_hidden_states_llama3"]
        self._segments = (int(t5.shape[1]), int(llama.shape[2]))
        return self.latent_call(
            kwargs["hidden_states"],
            kwargs["timesteps"],
            self.once_per("text", (t5, llama), lambda parts: side_by_side([t5, llama[-1], llama[-1]])),
            patch=int(self.denoiser.config.patch_size),
        )

    def positions(self, arguments: dict[str, Any], call: DenoiserCall) -> Layout:
        text = call.text_length
        length = int(arguments["hidden_states"].shape[1])
        if arguments.get("encoder_hidden_states") is not None:  # double-stream: image and text apart
            length += int(arguments["encoder_hidden_states"].shape[1])
        return slice(0, call.grid[0] * call.grid[1]), slice(length - text, length)

    def streams(self) -> list[TextStream]:
        t5, llama = self._segments
        return [
            TextStream("t5", "text_encoder_3", "tokenizer_3", length=t5),
            TextStream("llama", "text_encoder_4", "tokenizer_4", offset=t5, length=llama),
            TextStream("llama_layer", "text_encoder_4", "tokenizer_4", offset=t5 + llama, length=llama),
        ]
