"""The per-step record (``trace(pipe, per_step=True)``): each step's maps of the prompt's words, checked
against the independent per-head computation of tests/slow_daam.py, and what it costs."""

import pytest
import torch
from diffusers import StableDiffusionPipeline, UNet2DConditionModel

import daam_widget
from daam_widget import testing
from tests.conftest import seeded
from tests.slow_daam import record_slowly, slow_heat_maps

SIZE = {"height": 40, "width": 56}  # latent 20x28 -> 10x14 -> 5x7
PROMPT = "A red dog, on a hat"
STEPS = 3
CALL = dict(prompt=PROMPT, num_inference_steps=STEPS, **SIZE)


@pytest.fixture(scope="module")
def runs(sd2):
    with record_slowly(sd2.unet) as store:
        sd2(generator=seeded(), output_type="np", **CALL)
    with daam_widget.trace(sd2, per_step=True) as tc:
        sd2(generator=seeded(), output_type="np", **CALL)
    return store, tc


def slow_words(store, tc, steps):
    """The slow Eq. 6 over ``steps`` of each word: its tokens' per-head upsampled maps, summed."""
    slow = slow_heat_maps(store, 1, (20, 28), (40, 56), steps=steps)
    spans = [s for s in tc.heat_maps(prompt=PROMPT).spans if s.is_word]
    return torch.stack([slow[list(s.tokens)].sum(0) for s in spans]).float()


def relative_error(fast, slow):
    return float((fast - slow).abs().max() / slow.abs().max())


@pytest.mark.parametrize("step", range(STEPS))
def test_each_steps_record_equals_the_slow_per_head_sum_of_that_step(runs, step):
    store, tc = runs
    steps = tc.step_maps(0, prompt=PROMPT)
    assert steps.words == ("A", "red", "dog", "on", "a", "hat") and steps.num_steps == STEPS
    assert relative_error(steps.total([step]), slow_words(store, tc, [step])) < 2e-3, "float16 storage"


def test_heat_maps_over_steps_come_from_the_record_without_time_resolved(runs):
    store, tc = runs
    maps = tc.heat_maps(prompt=PROMPT, steps=range(1, 3))
    fast = torch.stack([torch.from_numpy(maps.soft(k)) for k in range(len(maps.words))])
    assert relative_error(fast, slow_words(store, tc, [1, 2])) < 2e-3
    with pytest.raises(ValueError, match="choose resolutions= with steps="):
        tc.heat_maps(steps=range(1, 3), layers=["up_blocks"])


def test_attention_mass_per_step_and_resolution_sums_to_each_words_total(runs):
    _, tc = runs
    steps = tc.step_maps(0, prompt=PROMPT)
    mass = steps.mass()
    assert mass.shape == (STEPS, 3, 6)
    for k, word in enumerate(steps.words):
        native = sum(steps.maps[g][:, k].sum() for g in steps.grids)
        assert mass[:, :, k].sum() == pytest.approx(float(native), rel=1e-5), word
    # The probabilities of one query over the 77 keys sum to 1: a word can hold at most heads x layers.
    assert (mass >= 0).all()


def test_the_record_keeps_only_the_words_tokens_at_each_native_resolution(runs, sd2):
    _, tc = runs
    record = tc._generations[0].record
    tokens = sd2.tokenizer.tokenize(PROMPT)
    words = [i + 1 for i, t in enumerate(tokens) if t.strip("</w>").isalnum()]  # after <start>
    assert record.positions == tuple(words), "no padding, no <start>, <end> or punctuation"
    assert record.grids() == [(20, 28), (10, 14), (5, 7)]
    assert record.bytes_per_step() == (20 * 28 + 10 * 14 + 5 * 7) * len(words) * 2, "float16, one image"


def test_memory_grows_by_one_records_step_per_step(sd1):
    def held(steps, **kwargs):
        with daam_widget.trace(sd1, **kwargs) as tc:
            sd1("a red dog", num_inference_steps=steps, height=32, width=32)
        return tc, tc.memory_bytes()

    _, plain = held(2)
    tc, two = held(2, per_step=True)
    _, six = held(6, per_step=True)
    per_step = tc._generations[0].record.bytes_per_step()
    assert six - two == 4 * per_step and two == plain + 2 * per_step
    assert per_step == (16 * 16 + 8 * 8 + 4 * 4) * 3 * 2, "3 one-token words, grids 16, 8 and 4"


def test_step_maps_need_the_record(sd1):
    with daam_widget.trace(sd1) as tc:
        sd1("a red dog", num_inference_steps=2, height=32, width=32)
    with pytest.raises(ValueError, match="per_step=True"):
        tc.step_maps(0)


def test_steps_from_the_record_equal_the_time_resolved_sums(sd2):
    call = dict(prompt=PROMPT, num_inference_steps=4, height=32, width=32)
    with daam_widget.trace(sd2, per_step=True, time_resolved=True) as tc:
        sd2(generator=seeded(), output_type="latent", **call)
    exact = tc.heat_maps(prompt=PROMPT, steps=range(1, 3))  # time_resolved: per-layer sums of each step
    tc.time_resolved = False  # the same trace read through its per-step record
    record = tc.heat_maps(prompt=PROMPT, steps=range(1, 3))
    for k, word in enumerate(exact.words):
        assert relative_error(torch.from_numpy(record.soft(k)), torch.from_numpy(exact.soft(k))) < 2e-3, word


def test_a_512_px_image_with_ten_words_keeps_under_1_mb_per_step(sd2):
    """SD's layout: 8x latents, 64x64 at 512 px (this tiny UNet's cross-attention grids: 64², 32², 16²)."""
    pipe = StableDiffusionPipeline(
        **{**sd2.components, "unet": UNet2DConditionModel.from_config(sd2.unet.config, sample_size=64)}
        | {"vae": testing.vae_by_8()},
        requires_safety_checker=False,
    )
    pipe.set_progress_bar_config(disable=True)
    prompt = "a red dog and a blue cat on a hat"
    assert len(prompt.split()) == 10
    with daam_widget.trace(pipe, per_step=True) as tc:
        pipe(prompt, num_inference_steps=2, height=512, width=512, generator=seeded(), output_type="latent")
    record = tc._generations[0].record
    tokens = len(pipe.tokenizer(prompt).input_ids) - 2
    assert record.grids() == [(64, 64), (32, 32), (16, 16)]
    assert record.bytes_per_step() == (64 * 64 + 32 * 32 + 16 * 16) * tokens * 2 <= 1_000_000
