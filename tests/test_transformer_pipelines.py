"""The tracer on transformer pipelines (SD3, SD3.5, Flux, PixArt, Sana) against an independent oracle
(tests/slow_transformer_daam.py: q and k taken where each processor calls attention) and the untraced
output."""

import numpy as np
import pytest
import torch

import daam_widget
from daam_widget import testing
from tests.conftest import seeded
from tests.slow_transformer_daam import record_at_attention, slow_transformer_maps

PROMPT = "A red dog, on a hat"
FAMILIES = ["sd3", "sd35", "flux", "pixart", "pixart_sigma", "sana"]

# Non-square everywhere; Sana wants multiples of 32. Short T5 windows keep the tiny runs fast.
CALLS = {
    "sd3": dict(height=32, width=48, max_sequence_length=24),
    "sd35": dict(height=32, width=48, max_sequence_length=24),
    "flux": dict(height=32, width=48, max_sequence_length=24),
    "pixart": dict(height=32, width=48, max_sequence_length=24, use_resolution_binning=False),
    "pixart_sigma": dict(height=32, width=48, max_sequence_length=24, use_resolution_binning=False),
    "sana": dict(height=64, width=96, use_resolution_binning=False),
}


def _build(name):
    if name == "pixart_sigma":
        pipe = testing.pixart_pipeline(sigma=True)
    else:
        pipe = getattr(testing, f"{name}_pipeline")()
    pipe.set_progress_bar_config(disable=True)
    return pipe


@pytest.fixture(scope="module")
def pipes():
    return {}


@pytest.fixture(params=FAMILIES)
def family(request, pipes):
    if request.param not in pipes:
        pipes[request.param] = _build(request.param)
    return request.param, pipes[request.param]


def _call(name, **overrides):
    call = dict(prompt=PROMPT, num_inference_steps=2, output_type="np", **CALLS[name])
    if name.startswith("pixart"):
        call["clean_caption"] = False
    call.update(overrides)
    return call


def _run(pipe, call, **options):
    with daam_widget.trace(pipe, **options) as tc:
        out = pipe(generator=seeded(), **call)
    return tc, out


def _oracle(pipe, call, row, size, mode="text", calls_filter=None):
    with record_at_attention(pipe.transformer) as calls:
        pipe(generator=seeded(), **call)
    return slow_transformer_maps(calls, row, size, mode=mode, calls_filter=calls_filter)


def _max_relative_error(fast: torch.Tensor, slow: torch.Tensor) -> float:
    return float((fast.double() - slow).abs().max() / slow.abs().max())


def _guided(name, call):
    return not name.startswith("flux") and call.get("guidance_scale", 7.0) > 1


@pytest.fixture(params=["seen", "recomputed"])
def path(request, monkeypatch):
    """Probabilities from the processor's own q and k (its projections' outputs, or what it gave the
    attention function), or, as for a processor that shows neither (a flash-attention package), from q
    and k computed again."""
    if request.param == "recomputed":
        from daam_widget._backbones import FAMILIES

        monkeypatch.setattr("daam_widget._capture._attention", object())
        for family in FAMILIES:
            monkeypatch.setattr(family, "projections", lambda self, attn: None)
    return request.param


@pytest.mark.parametrize("mode", ["text", "all"])
def test_maps_equal_per_head_upsampled_oracle_in_both_softmax_modes(family, mode, path):
    name, pipe = family
    call = _call(name)
    tc, _ = _run(pipe, call, softmax_over=mode)
    maps = tc.heat_maps(prompt=PROMPT)
    slow = _oracle(pipe, call, 1 if _guided(name, call) else 0, maps.shape, mode)
    error = _max_relative_error(maps.maps, slow[list(maps.positions)])
    print(f"{name} softmax_over={mode} ({path}): max relative error {error:.2e}")
    assert error < 1e-5
    assert maps.words == ("A", "red", "dog", "on", "a", "hat")
    assert maps.shape == (call["height"], call["width"])


def test_without_guidance_the_single_row_is_traced(family):
    name, pipe = family
    call = _call(name, guidance_scale=1.0)
    tc, _ = _run(pipe, call)
    maps = tc.heat_maps()
    slow = _oracle(pipe, call, 0, maps.shape)
    assert _max_relative_error(maps.maps, slow[list(maps.positions)]) < 1e-5
    # decoded from the ids: T5 and Gemma keep the case (PixArt and Sana lower-case the prompt first)
    assert tuple(w.lower() for w in maps.words) == ("a", "red", "dog", "on", "a", "hat")


def test_traced_image_is_bit_identical_and_processors_restored(family):
    name, pipe = family
    modules = {n: m for n, m in pipe.transformer.named_modules() if hasattr(m, "processor")}
    before = {n: m.processor for n, m in modules.items()}
    call = _call(name)
    plain = pipe(generator=seeded(), **call).images
    _, traced = _run(pipe, call)
    assert np.array_equal(plain, traced.images)
    assert all(modules[n].processor is before[n] for n in modules)


@pytest.mark.parametrize("exception", [RuntimeError, KeyboardInterrupt])
def test_processors_and_hooks_restored_when_generation_is_interrupted(family, exception):
    name, pipe = family
    modules = {n: m for n, m in pipe.transformer.named_modules() if hasattr(m, "processor")}
    before = {n: m.processor for n, m in modules.items()}
    last_block = pipe.transformer.transformer_blocks[-1]

    def interrupt(module, args):
        raise exception("stop")

    handle = last_block.register_forward_pre_hook(interrupt)
    try:
        with pytest.raises(exception), daam_widget.trace(pipe):
            pipe(**_call(name))
    finally:
        handle.remove()
    assert all(modules[n].processor is before[n] for n in modules)
    assert not pipe.transformer._forward_pre_hooks


@pytest.mark.parametrize("name", ["sd3", "flux"])
def test_batch_of_prompts_gives_one_map_set_per_image(pipes, name):
    pipe = pipes.setdefault(name, _build(name))
    prompts = ["a red dog", "a blue cat on a hat"]
    call = _call(name, prompt=prompts, num_images_per_prompt=2)
    tc, _ = _run(pipe, call)
    assert tc.num_images == 4
    for image in range(4):
        maps = tc.heat_maps(image)
        assert maps.words == tuple(prompts[image // 2].split())
        row = 4 + image if _guided(name, call) else image
        slow = _oracle(pipe, call, row, maps.shape)
        assert _max_relative_error(maps.maps, slow[list(maps.positions)]) < 1e-5


def test_sd3_words_have_a_key_in_each_stream_and_streams_can_be_picked(pipes):
    pipe = pipes.setdefault("sd3", _build("sd3"))
    call = _call("sd3")
    tc, _ = _run(pipe, call)
    both = tc.heat_maps(prompt=PROMPT)
    clip, t5 = tc.heat_maps(prompt=PROMPT, stream="clip"), tc.heat_maps(prompt=PROMPT, stream="t5")
    assert both.layout.find("dog").tokens == (3, 77 + 2)  # CLIP: <start> first; T5: no start token
    assert clip.layout.find("dog").tokens == (3,) and t5.layout.find("dog").tokens == (79,)
    np.testing.assert_allclose(both["dog"], clip["dog"] + t5["dog"], rtol=1e-5)
    slow = _oracle(pipe, call, 1, both.shape)
    assert _max_relative_error(t5.tensor("dog"), slow[79]) < 1e-5
    with pytest.raises(ValueError, match="stream='gemma' is not one of these maps' streams: 'clip', 't5'"):
        tc.heat_maps(stream="gemma")


def test_sd3_without_t5_maps_words_by_clip_alone():
    pipe = testing.sd3_pipeline()
    pipe.text_encoder_3, pipe.tokenizer_3 = None, None
    pipe.set_progress_bar_config(disable=True)
    tc, _ = _run(pipe, _call("sd3"))
    maps = tc.heat_maps()
    assert maps.words == ("a", "red", "dog", "on", "a", "hat")
    assert maps.layout.find("dog").tokens == (3,)
    assert [s.name for s in maps.layout.streams] == ["clip"]


def test_sd3_skip_layer_guidance_calls_are_not_counted(pipes):
    pipe = pipes.setdefault("sd3", _build("sd3"))
    call = _call("sd3", skip_guidance_layers=[0], skip_layer_guidance_stop=1.0)
    tc, _ = _run(pipe, call)
    maps = tc.heat_maps()
    assert maps.settings["num_steps"] == 2
    slow = _oracle(pipe, call, 1, maps.shape, calls_filter=lambda i, c: not c.skip_layers)
    assert _max_relative_error(maps.maps, slow[list(maps.positions)]) < 1e-5


def test_flux_true_cfg_counts_the_conditional_call_once_and_keeps_the_negative(pipes):
    pipe = pipes.setdefault("flux", _build("flux"))
    call = _call("flux", true_cfg_scale=2.0, negative_prompt="a blue cat")
    tc, _ = _run(pipe, call, keep_negative=True)
    maps, negative = tc.heat_maps(), tc.heat_maps(negative=True)
    assert maps.settings["num_steps"] == 2 and tc.num_images == 1
    assert maps.words == ("A", "red", "dog", "on", "a", "hat")
    assert negative.words == ("a", "blue", "cat")
    positive_calls = _oracle(pipe, call, 0, maps.shape, calls_filter=lambda i, c: i % 2 == 0)
    negative_calls = _oracle(pipe, call, 0, maps.shape, calls_filter=lambda i, c: i % 2 == 1)
    assert _max_relative_error(maps.maps, positive_calls[list(maps.positions)]) < 1e-5
    assert _max_relative_error(negative.maps, negative_calls[list(negative.positions)]) < 1e-5


def test_negative_prompt_maps_are_the_unconditional_half(pipes):
    pipe = pipes.setdefault("sd3", _build("sd3"))
    call = _call("sd3", negative_prompt="a blue hat")
    tc, _ = _run(pipe, call, keep_negative=True)
    negative = tc.heat_maps(negative=True)
    assert negative.words == ("a", "blue", "hat")
    slow = _oracle(pipe, call, 0, negative.shape)
    assert _max_relative_error(negative.maps, slow[list(negative.positions)]) < 1e-5


def test_joint_attention_all_is_text_times_the_share_that_goes_to_text(pipes):
    """On joint attention the two modes differ (each query gives part of its attention to image keys);
    on real cross-attention they are the same."""
    for name in ("sd3", "flux", "pixart"):
        pipe = pipes.setdefault(name, _build(name))
        text = _run(pipe, _call(name), softmax_over="text")[0].heat_maps().maps
        everything = _run(pipe, _call(name), softmax_over="all")[0].heat_maps().maps
        if name == "pixart":
            torch.testing.assert_close(everything, text)
        else:
            assert (everything < text * (1 + 1e-5)).all() and not torch.allclose(everything, text)


def test_pixart_resolution_binning_gives_maps_of_the_returned_image(pipes):
    pipe = pipes.setdefault("pixart", _build("pixart"))
    call = _call("pixart", height=64, width=40, use_resolution_binning=True)
    tc, out = _run(pipe, call)
    maps = tc.heat_maps()
    assert maps.shape == out.images[0].shape[:2] == (64, 40)
    np.testing.assert_array_equal(maps.image, (out.images[0] * 255).round().astype(np.uint8))
    generated = tc._generations[0].call.image_size
    assert generated != (64, 40)  # it did generate at a bin's size
    slow = _oracle(pipe, call, 1, generated)
    slow = pipe.image_processor.resize_and_crop_tensor(slow[None].float(), 40, 64)[0]
    assert _max_relative_error(maps.maps, slow[list(maps.positions)].double()) < 1e-5


def test_sana_instruction_prefix_is_not_mapped_as_words(pipes):
    pipe = pipes.setdefault("sana", _build("sana"))
    for instruction in ({}, {"complex_human_instruction": None}):
        tc, _ = _run(pipe, _call("sana", **instruction))
        assert tc.heat_maps().words == ("a", "red", "dog", "on", "a", "hat")
        assert tc.heat_maps(prompt=PROMPT).words == ("A", "red", "dog", "on", "a", "hat")


def test_t5_sub_word_pieces_merge_and_cut_off_words_are_marked(pipes):
    pipe = pipes.setdefault("flux", _build("flux"))
    prompt = "a zebra " + "dog " * 12 + "cat"
    tc, _ = _run(pipe, _call("flux", prompt=prompt, max_sequence_length=16))
    with pytest.warns(UserWarning, match="keeps 15"):
        maps = tc.heat_maps(prompt=prompt)
    assert maps.layout.find("zebra").tokens == (1, 2, 3, 4, 5)  # ▁z e b r a
    assert "cat" not in maps and maps.layout.find("dog", 8).available  # 15 kept: a, 5 pieces, 9 dogs
    assert not maps.spans[11].available
    with pytest.raises(KeyError, match="'cat' was cut off"):
        maps["cat"]


def test_maps_behave_like_a_mapping_of_words(pipes):
    pipe = pipes.setdefault("sd3", _build("sd3"))
    maps = _run(pipe, _call("sd3"))[0].heat_maps(prompt=PROMPT)
    assert "dog" in maps and "DOG" in maps and "a" in maps and "zebra" not in maps and 7 not in maps
    assert len(maps) == 6 and list(maps) == ["A", "red", "dog", "on", "a", "hat"]


def test_unknown_processors_are_refused_with_what_is_supported(pipes):
    from diffusers.models.attention_processor import AttnProcessor

    pipe = pipes.setdefault("pixart", _build("pixart"))
    attn = pipe.transformer.transformer_blocks[0].attn2
    original = attn.processor
    attn.set_processor(AttnProcessor())
    try:
        with pytest.raises(TypeError, match=r"processors AttnProcessor are not supported.*AttnProcessor2_0"):
            daam_widget.trace(pipe)
    finally:
        attn.set_processor(original)


def test_softmax_over_is_checked():
    with pytest.raises(ValueError, match="softmax_over must be 'text' or 'all', not 'image'"):
        daam_widget.trace(testing.sd_pipeline(), softmax_over="image")


@pytest.fixture(scope="module")
def picture():
    return np.random.default_rng(0).integers(0, 256, size=(64, 96, 3), dtype=np.uint8)


def test_attribute_image_maps_equal_the_oracle_on_the_same_denoiser_calls(family, picture):
    _, pipe = family
    with record_at_attention(pipe.transformer) as calls:
        maps = daam_widget.attribute_image(pipe, picture, "a red dog", timesteps=(200, 500), seed=3)
    assert len(calls) == 2 and maps.words == ("a", "red", "dog")
    slow = slow_transformer_maps(calls, 0, maps.shape)
    assert _max_relative_error(maps.maps, slow[list(maps.positions)]) < 1e-5
    np.testing.assert_array_equal(maps.image, picture)


def test_attribute_image_noises_as_the_flow_matching_scheduler_does(pipes, picture):
    from diffusers import FlowMatchEulerDiscreteScheduler

    pipe = pipes.setdefault("sd3", _build("sd3"))
    seen = []
    handle = pipe.transformer.register_forward_pre_hook(
        lambda module, args, kwargs: seen.append(kwargs["hidden_states"]), with_kwargs=True
    )
    try:
        daam_widget.attribute_image(pipe, picture, "a red dog", timesteps=(200,), seed=3)
    finally:
        handle.remove()
    x = torch.from_numpy(picture).permute(2, 0, 1)[None].float() / 127.5 - 1
    with torch.no_grad():
        config = pipe.vae.config
        latents = (pipe.vae.encode(x).latent_dist.mean - config.shift_factor) * config.scaling_factor
    noise = torch.randn(latents.shape, generator=torch.Generator().manual_seed(3))
    scheduler = FlowMatchEulerDiscreteScheduler.from_config(pipe.scheduler.config)
    expected = scheduler.scale_noise(latents, torch.tensor([200.0]), noise)
    torch.testing.assert_close(seen[0], expected)


def test_attribute_image_says_what_sizes_a_family_takes(pipes, picture):
    pipe = pipes.setdefault("flux", _build("flux"))
    with pytest.raises(ValueError, match=r"positive multiple of 4 \(the VAE's factor 2 times Flux's 2x2"):
        daam_widget.attribute_image(pipe, picture[:62], "a dog")


def test_the_widget_generates_and_shows_every_family(family):
    from daam_widget import DaamWidget

    name, pipe = family
    call = _call(name)
    del call["prompt"], call["output_type"]
    widget = DaamWidget(pipe, PROMPT, **call)
    assert widget.status == "ready", widget.error
    assert widget.words == ["A", "red", "dog", "on", "a", "hat"]
    assert tuple(widget.progress) == (2, 2)
    h, w = widget.map_size
    assert len(widget.maps) == len(widget.words) * h * w
    assert widget.heat_maps.shape == (call["height"], call["width"])


def test_memory_does_not_grow_with_steps_unless_time_resolved(pipes):
    pipe = pipes.setdefault("flux", _build("flux"))

    def held(steps, **options):
        return _run(pipe, _call("flux", num_inference_steps=steps), **options)[0].memory_bytes()

    assert held(2) == held(5) > 0
    assert held(5, time_resolved=True) == held(2) * (1 + 5)


def test_on_step_is_called_once_a_step_with_that_steps_attention_already_recorded(pipes):
    pipe = pipes.setdefault("flux", _build("flux"))
    call = _call("flux", num_inference_steps=3, true_cfg_scale=2.0, negative_prompt="a blue cat")
    seen = []

    def on_step(tc):
        steps = tc.step_maps(0, prompt=PROMPT)
        seen.append((tc.num_steps, steps.num_steps, steps.on_grid()[-1].clone()))

    tc, _ = _run(pipe, call, per_step=True, on_step=on_step)
    assert [(done, recorded) for done, recorded, _ in seen] == [(1, 1), (2, 2), (3, 3)], (
        "once per step: not after the negative prompt's call of its own"
    )
    final = tc.step_maps(0, prompt=PROMPT).on_grid()
    for step, (_, _, at_callback) in enumerate(seen):
        assert torch.equal(at_callback, final[step]), f"step {step} was complete when on_step ran"
