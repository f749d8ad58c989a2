"""LongCat-Image: Flux.1's architecture ([text, image] in double- and single-stream blocks) on Qwen2.5-VL.

The pipeline tokenizes a system template's prefix, the prompt padded to 512 tokens and the template's
suffix apart and encodes them together; the keys are the prompt's 512 positions, unmasked. Quoted text
is tokenized one character at a time, so a quoted prompt's words are read back from the ids. By default
the pipeline first rewrites the prompt with its own text encoder (``enable_prompt_rewrite=True``): the
maps are then of the rewritten text, and the tracer says so. The image ids count from 512; the negative
prompt is a second call after the positive one.
"""

from __future__ import annotations

import warnings

from .._text_streams import Template, TextStream, from_position
from ._base import pipeline_call_locals
from .flux import FluxLayoutBackbone


class LongCatImageBackbone(FluxLayoutBackbone):
    name = "LongCat-Image"
    pipelines = ("LongCatImagePipeline",)
    processors = ("LongCatImageAttnProcessor",)
    concept_blocks_pattern = r"transformer_blocks\.\d+"

    def streams(self) -> list[TextStream]:
        if pipeline_call_locals(self.pipe).get("enable_prompt_rewrite", False):
            warnings.warn(
                "LongCat-Image rewrote the prompt with its text encoder (enable_prompt_rewrite=True): the "
                "maps are of the rewritten text, whose words heat_maps() reads from the token ids; pass "
                "enable_prompt_rewrite=False to map the prompt as written",
                stacklevel=2,
            )
        prefix, suffix = self.pipe.prompt_template_encode_prefix, self.pipe.prompt_template_encode_suffix
        tokenizer = self.pipe.tokenizer
        template = Template(prefix, suffix, special_tokens=False, padded_suffix=True)
        keys = from_position(len(tokenizer(prefix, add_special_tokens=False)["input_ids"]))
        return [TextStream("qwen", template=template, keys=keys)]
