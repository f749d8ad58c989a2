"""The tracer against an independent slow DAAM (tests/slow_daam.py) and the pipeline's untraced output."""

import re

import numpy as np
import pytest
import torch

import daam_widget
from daam_widget import testing
from tests.conftest import seeded
from tests.slow_daam import record_slowly, slow_heat_maps

SIZE = {"height": 40, "width": 56}  # latent 20x28 -> 10x14 -> 5x7: non-square and odd
PROMPT = "A red dog, on a hat"


def _slow(pipe, row, layers=None, heads=None, steps=None, **call):
    with record_slowly(pipe.unet) as store:
        pipe(generator=seeded(), output_type="np", **call)
    h, w = call.get("height", 32), call.get("width", 32)
    s = pipe.vae_scale_factor
    return slow_heat_maps(store, row, (h // s, w // s), (h, w), layers, heads, steps)


def _max_relative_error(fast: torch.Tensor, slow: torch.Tensor) -> float:
    return float((fast.double() - slow).abs().max() / slow.abs().max())


@pytest.mark.parametrize("guidance_scale", [7.5, 1.0])
def test_fast_path_equals_per_head_upsampled_sum(any_pipe, guidance_scale):
    call = dict(prompt=PROMPT, num_inference_steps=3, guidance_scale=guidance_scale, **SIZE)
    row = 1 if guidance_scale > 1 else 0  # [unconditional, conditional] only when guidance is on
    slow = _slow(any_pipe, row, **call)
    with daam_widget.trace(any_pipe) as tc:
        any_pipe(generator=seeded(), output_type="np", **call)
    maps = tc.heat_maps()
    error = _max_relative_error(maps.maps, slow[list(maps.positions)])
    print(f"max relative error vs per-head upsampling: {error:.2e}")
    assert error < 1e-5
    assert maps.shape == (40, 56)


def test_traced_image_is_bit_identical_and_processors_restored(any_pipe):
    before = dict(any_pipe.unet.attn_processors)
    call = dict(prompt=PROMPT, num_inference_steps=2, **SIZE)
    plain = any_pipe(generator=seeded(), output_type="np", **call).images
    with daam_widget.trace(any_pipe):
        traced = any_pipe(generator=seeded(), output_type="np", **call).images
    assert np.array_equal(plain, traced)
    after = any_pipe.unet.attn_processors
    assert after.keys() == before.keys() and all(after[k] is before[k] for k in before)


@pytest.mark.parametrize("exception", [RuntimeError, KeyboardInterrupt])
def test_processors_restored_when_generation_is_interrupted(sd1, exception):
    before = dict(sd1.unet.attn_processors)

    def interrupt(pipe, step, timestep, kwargs):
        raise exception("stop")

    with pytest.raises(exception), daam_widget.trace(sd1):
        sd1(PROMPT, num_inference_steps=3, callback_on_step_end=interrupt, height=32, width=32)
    after = sd1.unet.attn_processors
    assert all(after[k] is before[k] for k in before)
    assert not sd1.unet._forward_pre_hooks and not sd1.text_encoder._forward_hooks


def test_nested_trace_is_refused_and_leaves_the_outer_one_working(sd1):
    before = dict(sd1.unet.attn_processors)
    with daam_widget.trace(sd1) as outer:
        with pytest.raises(RuntimeError, match="already being traced"), daam_widget.trace(sd1):
            pass
        sd1(PROMPT, num_inference_steps=1, height=32, width=32)
    assert outer.num_images == 1
    assert all(sd1.unet.attn_processors[k] is before[k] for k in before)


def test_a_trace_is_entered_once(sd1):
    tc = daam_widget.trace(sd1)
    with tc:
        pass
    with pytest.raises(RuntimeError, match="entered once"), tc:
        pass


def test_unsupported_pipeline_names_the_supported_ones():
    with pytest.raises(TypeError, match="StableDiffusionPipeline and StableDiffusionXLPipeline"):
        daam_widget.trace(object())


def test_batch_of_prompts_gives_one_map_set_per_image(sd1):
    prompts = ["a red dog", "a blue cat on a hat"]
    call = dict(prompt=prompts, num_images_per_prompt=2, num_inference_steps=2, height=32, width=32)
    with daam_widget.trace(sd1) as tc:
        sd1(generator=seeded(), output_type="np", **call)
    assert tc.num_images == 4
    for image in range(4):
        slow = _slow(sd1, 4 + image, **call)
        maps = tc.heat_maps(image)
        assert maps.words == tuple(prompts[image // 2].split())
        assert _max_relative_error(maps.maps, slow[list(maps.positions)]) < 1e-5
    assert not np.allclose(tc.heat_maps(0)["red"], tc.heat_maps(1)["red"])  # different noise, different maps


def test_images_of_successive_calls_are_numbered_in_order(sd1):
    with daam_widget.trace(sd1) as tc:
        sd1("a red dog", num_inference_steps=2, height=32, width=32)
        sd1("a blue cat", num_inference_steps=3, height=32, width=32)
    assert tc.num_images == 2
    assert tc.heat_maps(0).words == ("a", "red", "dog")
    assert tc.heat_maps(1).words == ("a", "blue", "cat")
    assert tc.heat_maps(1).settings["num_steps"] == 3
    with pytest.raises(IndexError, match=r"images are 0\.\.1"):
        tc.heat_maps(2)


def test_negative_prompt_maps_are_the_unconditional_half(sd1):
    call = dict(prompt="a red dog", negative_prompt="a blue hat", num_inference_steps=2, height=32, width=32)
    slow = _slow(sd1, 0, **call)
    with daam_widget.trace(sd1, keep_negative=True) as tc:
        sd1(generator=seeded(), output_type="np", **call)
    negative = tc.heat_maps(negative=True)
    assert negative.words == ("a", "blue", "hat")
    assert _max_relative_error(negative.maps, slow[list(negative.positions)]) < 1e-5
    assert tc.heat_maps().words == ("a", "red", "dog")


def test_guidance_switched_off_mid_run_by_a_cfg_cutoff_callback(sd1):
    from diffusers.callbacks import SDCFGCutoffCallback

    call = dict(prompt="a red dog", num_inference_steps=4, height=32, width=32)

    def cutoff():
        return SDCFGCutoffCallback(cutoff_step_ratio=None, cutoff_step_index=1)

    with record_slowly(sd1.unet) as store:
        sd1(generator=seeded(), callback_on_step_end=cutoff(), **call)
    slow = slow_heat_maps(store, lambda step: 1 if step <= 1 else 0, (16, 16), (32, 32))
    with daam_widget.trace(sd1, keep_negative=True) as tc:
        sd1(generator=seeded(), callback_on_step_end=cutoff(), **call)
    assert tc.num_images == 1
    maps = tc.heat_maps()
    assert maps.settings["num_steps"] == 4
    assert _max_relative_error(maps.maps, slow[list(maps.positions)]) < 1e-5
    slow_negative = slow_heat_maps(store, 0, (16, 16), (32, 32), steps=range(2))
    negative = tc.heat_maps(negative=True)
    assert _max_relative_error(negative.maps, slow_negative[list(negative.positions)]) < 1e-5


def test_negative_maps_need_keep_negative(sd1):
    with daam_widget.trace(sd1) as tc:
        sd1("a red dog", num_inference_steps=1, height=32, width=32)
    with pytest.raises(ValueError, match="keep_negative=True"):
        tc.heat_maps(negative=True)


def test_prompt_embeds_give_maps_by_position_and_words_need_the_prompt(sd1):
    embeds, negative = sd1.encode_prompt("a red dog", "cpu", 1, True)
    call = dict(num_inference_steps=2, height=32, width=32)
    with daam_widget.trace(sd1) as tc:
        sd1(prompt_embeds=embeds, negative_prompt_embeds=negative, **call)
    maps = tc.heat_maps()
    with pytest.raises(KeyError, match="prompt_embeds, not a prompt"):
        maps["dog"]
    assert maps.token(3).shape == (32, 32)
    named = tc.heat_maps(prompt="a red dog")
    np.testing.assert_allclose(named["dog"], maps.token(3), rtol=1e-6)


def test_prompt_embeds_with_an_encoded_negative_prompt_are_told_apart(sd1):
    embeds, _ = sd1.encode_prompt("a red dog", "cpu", 1, False)
    with daam_widget.trace(sd1, keep_negative=True) as tc:
        sd1(prompt_embeds=embeds, negative_prompt="a blue hat", num_inference_steps=1, height=32, width=32)
    assert tc.heat_maps(negative=True).words == ("a", "blue", "hat")
    assert tc.heat_maps().words == ()


def test_sdxl_words_come_from_the_first_tokenizer(sdxl):
    with daam_widget.trace(sdxl) as tc:
        sdxl("a red dog on a hat", num_inference_steps=2, height=32, width=32)
    maps = tc.heat_maps(prompt="a red dog on a hat")
    assert maps.words == ("a", "red", "dog", "on", "a", "hat")
    assert [s.tokens for s in maps.spans] == [(i,) for i in range(1, 7)]


def test_filters_match_the_slow_computation_restricted_the_same_way(sd2):
    call = dict(prompt=PROMPT, num_inference_steps=3, **SIZE)
    for kwargs in ({"layers": ["mid_block", "up_blocks.2"]}, {"heads": [1]}, {"steps": range(1, 2)}):
        slow = _slow(sd2, 1, **kwargs, **call)
        with daam_widget.trace(sd2, **kwargs) as tc:
            sd2(generator=seeded(), output_type="np", **call)
        maps = tc.heat_maps()
        assert _max_relative_error(maps.maps, slow[list(maps.positions)]) < 1e-5, kwargs


def test_layer_and_resolution_choices_after_the_run(sd1):
    call = dict(prompt=PROMPT, num_inference_steps=2, **SIZE)
    slow = _slow(sd1, 1, layers=["down_blocks.1", "up_blocks.1"], **call)
    with daam_widget.trace(sd1) as tc:
        sd1(generator=seeded(), output_type="np", **call)
    assert tc.resolutions == [(20, 28), (10, 14), (5, 7)]
    maps = tc.heat_maps(resolutions=[10])
    assert _max_relative_error(maps.maps, slow[list(maps.positions)]) < 1e-5
    with pytest.raises(ValueError, match="matches none"):
        tc.heat_maps(resolutions=[3])


def test_time_resolved_steps_equal_recording_only_those_steps(sd1):
    call = dict(prompt=PROMPT, num_inference_steps=4, height=32, width=32)
    with daam_widget.trace(sd1, time_resolved=True) as everything:
        sd1(generator=seeded(), **call)
    with daam_widget.trace(sd1, steps=(1, 3)) as some:
        sd1(generator=seeded(), **call)
    np.testing.assert_allclose(everything.heat_maps(steps=range(1, 3)).maps, some.heat_maps().maps, rtol=1e-5)
    with pytest.raises(ValueError, match="time_resolved=True"):
        some.heat_maps(steps=range(1, 2))


def test_memory_does_not_grow_with_steps_unless_time_resolved(sd1):
    def held(steps, **kwargs):
        with daam_widget.trace(sd1, **kwargs) as tc:
            sd1("a red dog", num_inference_steps=steps, height=32, width=32)
        return tc.memory_bytes()

    assert held(2) == held(6) > 0
    assert held(6, time_resolved=True) == held(2) * (1 + 6)


def test_bad_filters_are_refused_with_what_is_allowed(sd1):
    with pytest.raises(ValueError, match="matches no cross-attention layer; layer names are: down_blocks"):
        daam_widget.trace(sd1, layers=["nope"])
    allowed = r"heads must be distinct whole head indices in 0\.\.1 \(the fewest heads of a layer\)"
    for heads in ([2], ["a"], [0, 0], [0.7], []):
        with pytest.raises(ValueError, match=rf"{allowed}, not {re.escape(repr(heads))}"):
            daam_widget.trace(sd1, heads=heads)
    with pytest.raises(TypeError, match="heads must be a list of distinct"):
        daam_widget.trace(sd1, heads=1)
    with pytest.raises(TypeError, match=r"layers must be a name prefix or a list of them .*not 123"):
        daam_widget.trace(sd1, layers=123)
    with pytest.raises(ValueError, match="steps must be"):
        daam_widget.trace(sd1, steps=range(-1, 3))
    with pytest.raises(
        ValueError, match=r"steps as a tuple is \(start, stop\) of whole steps from 0, not \(0.5, 2\)"
    ):
        daam_widget.trace(sd1, steps=(0.5, 2))


def test_the_captured_image_is_the_pipeline_output(sd2):
    with daam_widget.trace(sd2) as tc:
        out = sd2(PROMPT, num_inference_steps=2, generator=seeded(), output_type="pil", **SIZE)
    np.testing.assert_array_equal(tc.heat_maps().image, np.asarray(out.images[0]))


def test_low_precision_pipeline_aggregates_in_float32():
    pipe = testing.sd_pipeline("sd1").to(dtype=torch.bfloat16)
    pipe.set_progress_bar_config(disable=True)
    with daam_widget.trace(pipe) as tc:
        pipe("a red dog", num_inference_steps=1, height=32, width=32)
    maps = tc.heat_maps()
    assert maps.maps.dtype == torch.float32 and np.isfinite(maps["dog"]).all()


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_fp16_on_cuda_matches_the_slow_computation_and_aggregates_on_the_device():
    pipe = testing.sd_pipeline("sd2").to("cuda", torch.float16)
    pipe.set_progress_bar_config(disable=True)
    call = dict(prompt=PROMPT, num_inference_steps=3, **SIZE)
    with record_slowly(pipe.unet) as store:
        pipe(generator=torch.Generator("cuda").manual_seed(0), output_type="np", **call)
    slow = slow_heat_maps(store, 1, (20, 28), (40, 56))
    with daam_widget.trace(pipe) as tc:
        pipe(generator=torch.Generator("cuda").manual_seed(0), output_type="np", **call)
    generation = tc._generations[0]
    assert all(t.is_cuda and t.dtype == torch.float32 for t in generation.sums.totals.values())
    maps = tc.heat_maps()
    assert _max_relative_error(maps.maps, slow[list(maps.positions)]) < 1e-3


def test_maps_asked_for_before_any_generation_say_to_generate_first(sd1):
    with daam_widget.trace(sd1) as tc:
        pass
    with pytest.raises(IndexError, match="no denoising step has run under it"):
        tc.heat_maps()


def test_steps_that_were_not_run_say_which_steps_the_run_had(sd1):
    with daam_widget.trace(sd1, steps=range(100, 200)) as tc:
        sd1("a red dog", num_inference_steps=5, height=32, width=32)
    ran = r"the run had 5 steps \(0\.\.4\)"
    with pytest.raises(ValueError, match=r"trace\(steps=range\(100, 200\)\) recorded nothing: " + ran):
        tc.heat_maps()
    with daam_widget.trace(sd1, time_resolved=True) as tc:
        sd1("a red dog", num_inference_steps=5, height=32, width=32)
    with pytest.raises(ValueError, match=r"steps=range\(7, 9\) holds none of the recorded steps: " + ran):
        tc.heat_maps(steps=range(7, 9))


def test_a_processor_that_does_not_call_torch_attention_is_traced_by_recomputing(sd1):
    """diffusers' AttnProcessor computes attention with baddbmm: no q and k to read off a call."""
    from diffusers.models.attention_processor import AttnProcessor

    originals = dict(sd1.unet.attn_processors)
    sd1.unet.set_attn_processor(AttnProcessor())
    try:
        call = dict(prompt=PROMPT, num_inference_steps=2, **SIZE)
        slow = _slow(sd1, 1, **call)
        with daam_widget.trace(sd1) as tc:
            sd1(generator=seeded(), output_type="np", **call)
        maps = tc.heat_maps()
        assert _max_relative_error(maps.maps, slow[list(maps.positions)]) < 1e-5
    finally:
        sd1.unet.set_attn_processor(originals)


def test_a_traced_pipeline_is_freed_once_the_user_lets_it_go():
    import gc
    import weakref

    pipe = testing.sd_pipeline("sd2")
    pipe.set_progress_bar_config(disable=True)
    with daam_widget.trace(pipe) as tc:
        pipe(
            "a red dog", num_inference_steps=2, height=32, width=32, generator=seeded(), output_type="latent"
        )
    layer = weakref.ref(next(iter(tc.backbone.attention_layers().values())))
    unet = weakref.ref(pipe.unet)
    del pipe, tc
    gc.collect()
    assert unet() is None and layer() is None, "the recorders kept for a later trace hold no model"


def test_what_on_step_raises_stops_the_generation_and_restores_the_processors(sd1):
    processors = dict(sd1.unet.attn_processors)

    def stop_at_two(tc):
        if tc.num_steps == 2:
            raise RuntimeError("enough")

    with pytest.raises(RuntimeError, match="enough"), daam_widget.trace(sd1, on_step=stop_at_two) as tc:
        sd1("a dog", num_inference_steps=4, generator=seeded())
    assert tc.num_steps == 2 and dict(sd1.unet.attn_processors) == processors
    with pytest.raises(TypeError, match="on_step must be a function of the trace, not 3"):
        daam_widget.trace(sd1, on_step=3)


def test_layer_focus_is_one_minus_the_normalised_entropy_of_each_words_map_at_each_layers_grid(sd1):
    prompt = "a red dog on a hat"
    with daam_widget.trace(sd1) as tc:
        sd1(prompt, num_inference_steps=2, generator=torch.Generator().manual_seed(0))
    focus = tc.layer_focus(0, prompt=prompt).numpy()
    assert focus.shape == (len(tc.layer_names), 6)
    for k, name in enumerate(tc.layer_names):
        maps = tc.heat_maps(0, prompt=prompt, layers=[name])
        (sums,) = maps.grids.grids.values()
        for w, span in enumerate(maps.layout.word_spans):
            word = sums[[maps.positions.index(t) for t in span.tokens]].sum(0).numpy().astype(np.float64)
            p = word.ravel() / word.sum()
            entropy = -(p * np.log(np.clip(p, 1e-30, None))).sum()
            assert focus[k, w] == pytest.approx(1 - entropy / np.log(p.size), abs=1e-5), (name, span.text)
    assert ((0 <= focus) & (focus <= 1)).all()
