"""ConceptAttention maps (``trace(concepts=...)``) against an independent computation
(tests/slow_concept_attention.py: each block run whole on [concepts, image]), the untouched image, and the
errors of what cannot be done."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import daam_widget
from daam_widget import testing
from tests.conftest import seeded
from tests.slow_concept_attention import concept_entry, concept_maps, record_blocks

PROMPT = "a cat and a dog under a blue sky"
CONCEPTS = ["cat", "blue sky", "dog", "grass"]

FAMILIES = {
    "flux": dict(
        call=dict(height=32, width=48, max_sequence_length=24),
        encode=dict(prompt_2=None, max_sequence_length=24),
        windows=lambda pipe: {"text_encoder_2": ("tokenizer_2", 0)},
        joint="text first",
    ),
    "sd3": dict(
        call=dict(height=32, width=48, max_sequence_length=24, guidance_scale=1.0),
        encode=dict(prompt_2=None, prompt_3=None, do_classifier_free_guidance=False, max_sequence_length=24),
        windows=lambda pipe: {
            "text_encoder": ("tokenizer", 0),
            "text_encoder_3": ("tokenizer_3", pipe.tokenizer_max_length),
        },
        joint="image first",
    ),
    "chroma": dict(
        call=dict(height=32, width=48, max_sequence_length=32, guidance_scale=1.0),
        encode=dict(do_classifier_free_guidance=False, max_sequence_length=32),
        windows=lambda pipe: {"text_encoder": ("tokenizer", 0)},
        joint="text first",
    ),
    "flux2": dict(
        call=dict(height=32, width=48, max_sequence_length=64, text_encoder_out_layers=(1, 2, 3)),
        encode=dict(max_sequence_length=64, text_encoder_out_layers=(1, 2, 3)),
        windows=lambda pipe: {"text_encoder": ("tokenizer", 0)},
        joint="text first",
    ),
    "flux2_klein": dict(
        call=dict(
            height=32, width=48, max_sequence_length=48, text_encoder_out_layers=(1, 2, 3), guidance_scale=1.0
        ),
        encode=dict(max_sequence_length=48, text_encoder_out_layers=(1, 2, 3)),
        windows=lambda pipe: {"text_encoder": ("tokenizer", 0)},
        joint="text first",
    ),
    "longcat_image": dict(
        call=dict(height=32, width=48, enable_prompt_rewrite=False, guidance_scale=1.0),
        encode=dict(),
        windows=lambda pipe: {
            "text_encoder": (
                "tokenizer",
                -len(
                    pipe.tokenizer(pipe.prompt_template_encode_prefix, add_special_tokens=False)["input_ids"]
                ),
            )
        },
        joint="text first",
    ),
    "ovis_image": dict(
        call=dict(height=32, width=48, max_sequence_length=32, guidance_scale=1.0),
        encode=dict(max_sequence_length=32),
        windows=lambda pipe: {"text_encoder": ("tokenizer", -int(pipe.user_prompt_begin_id))},
        joint="text first",
    ),
    "qwen_image": dict(
        call=dict(height=32, width=48),
        encode=dict(),
        windows=lambda pipe: {"text_encoder": ("tokenizer", -pipe.prompt_template_encode_start_idx)},
        joint="qwen",
    ),
}


@pytest.fixture(scope="module")
def pipes():
    return {}


@pytest.fixture(params=list(FAMILIES))
def family(request, pipes):
    if request.param not in pipes:
        pipe = testing.PIPELINES[request.param]()
        pipe.set_progress_bar_config(disable=True)
        pipes[request.param] = pipe
    return request.param, pipes[request.param]


def _call(name):
    return dict(prompt=PROMPT, num_inference_steps=2, output_type="np", **FAMILIES[name]["call"])


def test_concept_maps_equal_each_block_run_whole_on_concepts_and_image(family):
    name, pipe = family
    spec = FAMILIES[name]
    with daam_widget.trace(pipe, concepts=CONCEPTS) as tc:
        traced = pipe(generator=seeded(), **_call(name))
    maps = tc.concept_maps()

    calls, untraced = record_blocks(pipe, _call(name), seeded())
    np.testing.assert_array_equal(traced.images, untraced.images)  # the concepts changed nothing
    entry = torch.stack([concept_entry(pipe, c, spec["encode"], spec["windows"](pipe)) for c in CONCEPTS])[
        None
    ]
    blocks = len(pipe.transformer.transformer_blocks)
    chosen = set(range(max(0, blocks - 4), blocks))
    expected = concept_maps(pipe, calls, entry, chosen, spec["joint"])

    ((grid, got),) = maps.grids.grids.items()
    assert maps.words == tuple(CONCEPTS) and got.shape == (len(CONCEPTS), *grid)
    torch.testing.assert_close(got, expected.reshape(len(CONCEPTS), *grid), rtol=1e-4, atol=1e-5)
    # softmax over concepts, summed over 2 steps and the chosen blocks
    torch.testing.assert_close(got.sum(0), torch.full(grid, 2.0 * len(chosen)), rtol=1e-5, atol=1e-5)
    assert maps.settings["concepts"] == CONCEPTS and maps["blue sky"].shape == maps.shape


def test_tracing_with_concepts_leaves_the_pipeline_as_it_was(pipes):
    pipe = pipes.setdefault("flux", testing.PIPELINES["flux"]())
    blocks = pipe.transformer.transformer_blocks
    processors = {n: m.processor for n, m in pipe.transformer.named_modules() if hasattr(m, "processor")}

    def stop(trace):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        with daam_widget.trace(pipe, concepts=["cat"], on_step=stop):
            pipe(generator=seeded(), **_call("flux"))
    after = {n: m.processor for n, m in pipe.transformer.named_modules() if hasattr(m, "processor")}
    assert all(after[n] is p for n, p in processors.items())
    assert all(not b._forward_hooks and not b._forward_pre_hooks for b in blocks)


def test_concept_layers_choose_the_blocks_summed(pipes):
    pipe = pipes.setdefault("flux", testing.PIPELINES["flux"]())
    with daam_widget.trace(pipe, concepts=CONCEPTS, concept_layers=["transformer_blocks.1"]) as tc:
        pipe(generator=seeded(), **_call("flux"))
    one = tc.concept_maps()
    assert one.settings["layers"] == ["transformer_blocks.1"]
    ((grid, got),) = one.grids.grids.items()
    torch.testing.assert_close(got.sum(0), torch.full(grid, 2.0))  # one block, two steps
    with pytest.raises(ValueError, match=r"matches no joint block; the blocks are: transformer_blocks\.0"):
        daam_widget.trace(pipe, concepts=CONCEPTS, concept_layers=["single"]).__enter__()


def test_what_concept_maps_cannot_do_is_said(pipes):
    flux = pipes.setdefault("flux", testing.PIPELINES["flux"]())
    with pytest.raises(TypeError, match="concepts must be a non-empty list of strings"):
        daam_widget.trace(flux, concepts="cat")
    with pytest.raises(ValueError, match="each concept must be a word or words, not '!!'"):
        daam_widget.trace(flux, concepts=["cat", "!!"])
    with pytest.raises(ValueError, match="concepts must differ"):
        daam_widget.trace(flux, concepts=["Cat", "cat"])
    with pytest.raises(
        ValueError, match="concept_layers= chooses the blocks of concept maps: give concepts="
    ):
        daam_widget.trace(flux, concept_layers=["transformer_blocks.0"])
    with daam_widget.trace(flux) as tc:
        flux(generator=seeded(), **_call("flux"))
    with pytest.raises(ValueError, match=r"concept maps need trace\(pipe, concepts=\[...\]\)"):
        tc.concept_maps()
    sd = testing.sd_pipeline("sd2")
    with pytest.raises(ValueError, match=r"joint double-stream blocks; Stable Diffusion .* has none"):
        daam_widget.trace(sd, concepts=["cat"])


@pytest.mark.parametrize("name", ["flux", "sd3"])
def test_attribute_image_gives_concept_maps_of_a_given_image(pipes, name):
    pipe = pipes.setdefault(name, testing.PIPELINES[name]())
    pixels = np.random.default_rng(0).integers(0, 256, (32, 48, 3), dtype=np.uint8)
    maps = daam_widget.attribute_image(pipe, pixels, PROMPT, concepts=CONCEPTS, timesteps=(100, 400))
    assert maps.words == tuple(CONCEPTS) and maps.shape == (32, 48) and maps.image is pixels
    ((grid, got),) = maps.grids.grids.items()
    blocks = min(4, len(pipe.transformer.transformer_blocks))
    torch.testing.assert_close(got.sum(0), torch.full(grid, 2.0 * blocks))  # two timesteps
    assert maps.settings["source"] == "attribute_image" and maps.settings["concepts"] == CONCEPTS
    assert not np.allclose(maps["cat"], maps["grass"])
