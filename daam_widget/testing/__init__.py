"""Offline test material for diffusers pipelines, for daam-widget's own tests and for yours.

Tiny random-init pipelines of every family the tracer supports, built from configs in code with tokenizers
made from a word list (no file, no network; each runs a 2-step call in well under a second on one CPU
core), and the count of operations tracing adds per traced attention-layer call.

>>> from daam_widget import testing, trace
>>> pipe = testing.flux_pipeline()
>>> with trace(pipe) as tc:
...     pipe("a red dog", num_inference_steps=2, height=32, width=32, max_sequence_length=24)
"""

from ._catalog import CALLS, PIPELINES, VIDEO_CALLS, VIDEO_PIPELINES
from ._chat_pipelines import (
    cogview4_pipeline,
    glm4_tokenizer,
    kandinsky5_pipeline,
    kandinsky5_tokenizer,
    lumina2_pipeline,
    lumina2_tokenizer,
)
from ._dispatched_ops import extra_ops_per_step, ops_per_step
from ._flux_like_pipelines import bria_fibo_pipeline, longcat_image_pipeline
from ._image_first_pipelines import ernie_image_pipeline, nucleusmoe_pipeline, qwen3_vl_tokenizer
from ._kolors_pipeline import chatglm_tokenizer, kolors_pipeline
from ._llm_pipelines import (
    chroma_pipeline,
    flux2_klein_pipeline,
    flux2_pipeline,
    qwen_image_pipeline,
    z_image_pipeline,
)
from ._llm_tokenizers import mistral_small_3_tokenizer, qwen2_5_vl_tokenizer, qwen3_tokenizer
from ._moving_clip import moving_clip_maps
from ._multi_encoder_pipelines import hidream_pipeline, hunyuanimage_pipeline, llama3_tokenizer
from ._pipelines import (
    flux_pipeline,
    pixart_pipeline,
    sana_pipeline,
    sd3_pipeline,
    sd35_pipeline,
    sd_pipeline,
    sdxl_pipeline,
    vae_by_8,
)
from ._prx_pipeline import prx_pipeline
from ._qwen3_pipelines import krea2_pipeline, ovis_image_pipeline
from ._t5_pipelines import auraflow_pipeline, cogview3plus_pipeline, hunyuandit_pipeline
from ._tokenizers import WORDS, clip_tokenizer, gemma_tokenizer, t5_tokenizer
from ._video_pipelines import wan_pipeline

__all__ = [
    "CALLS",
    "PIPELINES",
    "VIDEO_CALLS",
    "VIDEO_PIPELINES",
    "WORDS",
    "auraflow_pipeline",
    "bria_fibo_pipeline",
    "chatglm_tokenizer",
    "chroma_pipeline",
    "clip_tokenizer",
    "cogview3plus_pipeline",
    "cogview4_pipeline",
    "ernie_image_pipeline",
    "extra_ops_per_step",
    "flux2_klein_pipeline",
    "flux2_pipeline",
    "flux_pipeline",
    "gemma_tokenizer",
    "glm4_tokenizer",
    "hidream_pipeline",
    "hunyuandit_pipeline",
    "hunyuanimage_pipeline",
    "kandinsky5_pipeline",
    "kandinsky5_tokenizer",
    "kolors_pipeline",
    "krea2_pipeline",
    "llama3_tokenizer",
    "longcat_image_pipeline",
    "lumina2_pipeline",
    "lumina2_tokenizer",
    "mistral_small_3_tokenizer",
    "moving_clip_maps",
    "nucleusmoe_pipeline",
    "ops_per_step",
    "ovis_image_pipeline",
    "pixart_pipeline",
    "prx_pipeline",
    "qwen2_5_vl_tokenizer",
    "qwen3_tokenizer",
    "qwen3_vl_tokenizer",
    "qwen_image_pipeline",
    "sana_pipeline",
    "sd3_pipeline",
    "sd35_pipeline",
    "sd_pipeline",
    "sdxl_pipeline",
    "t5_tokenizer",
    "vae_by_8",
    "wan_pipeline",
    "z_image_pipeline",
]
