"""Every tiny pipeline of ``daam_widget.testing`` by name, with the call options that keep it fast.

The one list that the tests, the dispatched-operations bench and the docs' table of supported pipelines
are checked against (``tests/test_families.py``): every denoiser family of the tracer has a tiny pipeline
here.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ._chat_pipelines import cogview4_pipeline, kandinsky5_pipeline, lumina2_pipeline
from ._flux_like_pipelines import bria_fibo_pipeline, longcat_image_pipeline
from ._image_first_pipelines import ernie_image_pipeline, nucleusmoe_pipeline
from ._kolors_pipeline import kolors_pipeline
from ._llm_pipelines import (
    chroma_pipeline,
    flux2_klein_pipeline,
    flux2_pipeline,
    qwen_image_pipeline,
    z_image_pipeline,
)
from ._ltx2_pipeline import ltx2_pipeline
from ._more_video_pipelines import kandinsky5_t2v_pipeline, sana_video_pipeline
from ._multi_encoder_pipelines import hidream_pipeline, hunyuanimage_pipeline
from ._pipelines import (
    flux_pipeline,
    pixart_pipeline,
    sana_pipeline,
    sd3_pipeline,
    sd35_pipeline,
    sd_pipeline,
    sdxl_pipeline,
)
from ._prx_pipeline import prx_pipeline
from ._qwen3_pipelines import krea2_pipeline, ovis_image_pipeline
from ._t5_pipelines import auraflow_pipeline, cogview3plus_pipeline, hunyuandit_pipeline
from ._video_pipelines import (
    cogvideox_pipeline,
    first_frame,
    hunyuanvideo15_pipeline,
    wan_i2v_pipeline,
    wan_pipeline,
)

PIPELINES: dict[str, Callable[[], Any]] = {
    "sd2": lambda: sd_pipeline("sd2"),
    "sdxl": sdxl_pipeline,
    "sd3": sd3_pipeline,
    "sd35": sd35_pipeline,
    "flux": flux_pipeline,
    "pixart": pixart_pipeline,
    "sana": sana_pipeline,
    "qwen_image": qwen_image_pipeline,
    "flux2": flux2_pipeline,
    "flux2_klein": flux2_klein_pipeline,
    "chroma": chroma_pipeline,
    "z_image": z_image_pipeline,
    "cogview3plus": cogview3plus_pipeline,
    "auraflow": auraflow_pipeline,
    "hunyuandit": hunyuandit_pipeline,
    "hidream": hidream_pipeline,
    "hunyuanimage": hunyuanimage_pipeline,
    "lumina2": lumina2_pipeline,
    "cogview4": cogview4_pipeline,
    "kandinsky5": kandinsky5_pipeline,
    "kolors": kolors_pipeline,
    "ovis_image": ovis_image_pipeline,
    "krea2": krea2_pipeline,
    "nucleusmoe": nucleusmoe_pipeline,
    "ernie_image": ernie_image_pipeline,
    "prx": prx_pipeline,
    "longcat_image": longcat_image_pipeline,
    "bria_fibo": bria_fibo_pipeline,
}
"""One tiny pipeline of each family (two where a family's variants differ in what is traced), by name."""

CALLS: dict[str, dict[str, Any]] = {
    "sd3": {"max_sequence_length": 24},
    "sd35": {"max_sequence_length": 24},
    "flux": {"max_sequence_length": 24},
    "pixart": {"max_sequence_length": 24, "use_resolution_binning": False, "clean_caption": False},
    "sana": {"height": 64, "width": 64, "use_resolution_binning": False},
    "z_image": {"max_sequence_length": 32},
    "flux2": {"max_sequence_length": 64, "text_encoder_out_layers": (1, 2, 3)},
    "flux2_klein": {"max_sequence_length": 48, "text_encoder_out_layers": (1, 2, 3)},
    "chroma": {"max_sequence_length": 32},
    "cogview3plus": {"max_sequence_length": 24},
    "auraflow": {"max_sequence_length": 24},
    "hunyuandit": {"height": 64, "width": 96, "use_resolution_binning": False},
    "hidream": {"max_sequence_length": 24},
    "hunyuanimage": {"height": 64, "width": 128},
    "lumina2": {"height": 64, "width": 96, "max_sequence_length": 64},
    "cogview4": {},
    "kandinsky5": {"height": 64, "width": 96},
    "ovis_image": {"max_sequence_length": 32},
    "krea2": {"max_sequence_length": 24},
    "prx": {"use_resolution_binning": False, "tokenizer_max_length": 16},
    "longcat_image": {"enable_prompt_rewrite": False},
    "bria_fibo": {"height": 64, "width": 96},
}
"""Call options that keep each tiny pipeline fast (short token windows, no resolution binning) or make it
work (Flux.2's stacked encoder layers must exist in a 4-layer encoder). Pass ``prompt=`` by keyword:
Flux.2's first positional argument is ``image``."""

VIDEO_PIPELINES: dict[str, Callable[[], Any]] = {
    "wan": wan_pipeline,
    "wan2.2": lambda: wan_pipeline(two_stage=True),
    "wan-i2v": wan_i2v_pipeline,
    "cogvideox": cogvideox_pipeline,
    "hunyuanvideo1.5": hunyuanvideo15_pipeline,
    "ltx2": ltx2_pipeline,
    "kandinsky5-t2v": kandinsky5_t2v_pipeline,
    "sana-video": sana_video_pipeline,
}
"""One tiny text-to-video pipeline of each video family (Wan 2.2 apart: it has two transformers), and Wan
2.1's image-to-video (its ``attn2`` makes a second attention call, to the image)."""

VIDEO_CALLS: dict[str, dict[str, Any]] = {
    "wan": {"height": 32, "width": 48, "num_frames": 5, "max_sequence_length": 16},
    "wan2.2": {"height": 32, "width": 48, "num_frames": 5, "max_sequence_length": 16},
    "wan-i2v": {"image": first_frame(), "height": 32, "width": 48, "num_frames": 5},  # umT5's 512 keys
    "cogvideox": {"height": 32, "width": 48, "num_frames": 5, "max_sequence_length": 16},
    "hunyuanvideo1.5": {"height": 32, "width": 48, "num_frames": 5},
    # LTX-2: sides multiples of 32, the window a multiple of its 8 registers, 9 frames (3 latent frames);
    # spatio-temporal guidance skips block 1's self-attention in its extra call
    "ltx2": {
        "height": 32,
        "width": 64,
        "num_frames": 9,
        "max_sequence_length": 16,
        "spatio_temporal_guidance_blocks": [1],
    },
    "kandinsky5-t2v": {"height": 32, "width": 48, "num_frames": 9},  # 4 frames a latent frame
    "sana-video": {"height": 32, "width": 64, "frames": 5, "use_resolution_binning": False},  # not num_frames
}
"""Call options of the video pipelines: 5 frames (3 latent frames) of 32x48 pixels, a short text window."""
