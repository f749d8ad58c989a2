"""What tracing adds to a denoising step, in dispatched aten operations (on a GPU the tracer's cost is the
launches it adds). Deterministic, so bounded here; bench/dispatched_ops.py prints it, and
tests/test_step_share.py bounds it as a share of a step of full-structure models."""

import pytest
import torch

from daam_widget import trace
from daam_widget._capture import recording
from daam_widget.testing import CALLS, PIPELINES, extra_ops_per_step

BATCH = 16
"""What a batch of layers adds beyond one layer computed alone: the concatenations of their q and of their
k (and the views these dispatch), and, with a mask, adding it to the scores apart from the product."""

PER_LAYER = {
    "lumina2": "each sample's caption has its own length: probabilities are computed row by row",
    "z_image": "each sample's caption has its own length: probabilities are computed row by row",
}


def _shapes(pipe, name):
    """The distinct shapes of the q and k the traced layers see in one call: each is one batch."""
    tc = trace(pipe)
    modules = tc.backbone.attention_layers()
    seen = set()

    def keep(layer, attn, arguments, inputs):
        if inputs is not None:
            seen.add((tuple(inputs.query.shape), tuple(inputs.key.shape)))

    call = {"num_inference_steps": 2, "height": 32, "width": 32, **CALLS.get(name, {})}
    with recording(modules, keep, projections=tc.backbone.projections):
        pipe(
            prompt="a red dog on a hat",
            generator=torch.Generator().manual_seed(0),
            output_type="latent",
            **call,
        )
    return seen


EVERY_SHAPE = {
    "sd2",
    "sdxl",
    "sd3",
    "flux",
    "pixart",
    "qwen_image",
    "chroma",
    "hunyuanimage",
    "lumina2",
    "prx",
}
"""The default run's families: a UNet of three resolutions and one of two, projection and attention-call
taps, masks from one argument and from the denoiser's, a mask made at every call, rows apart; the slow
tier runs every family."""


@pytest.mark.parametrize(
    "name", [n if n in EVERY_SHAPE else pytest.param(n, marks=pytest.mark.slow) for n in PIPELINES]
)
def test_a_step_costs_one_batch_of_operations_per_shape_of_layer(name):
    pipe = PIPELINES[name]()
    pipe.set_progress_bar_config(disable=True)
    every = extra_ops_per_step(pipe, name)
    one = extra_ops_per_step(pipe, name, layers=trace(pipe).layer_names[:1])
    layers, batches = every["layer_calls_per_step"], len(_shapes(pipe, name))
    print(
        f"{name}: {layers} layers, {batches} shapes: {every['per_step']:.0f} a step, 1: {one['per_step']:.0f}"
    )
    if name in PER_LAYER:
        assert every["per_step"] <= layers * one["per_step"], every["ops"]
    else:
        assert every["per_step"] <= batches * (one["per_step"] + BATCH), every["ops"]
    assert one["per_step"] <= 30, one["ops"]


@pytest.mark.parametrize("name", ["sd2", "flux"])
def test_the_per_step_record_adds_a_few_operations_per_resolution_and_step(name):
    pipe = PIPELINES[name]()
    pipe.set_progress_bar_config(disable=True)
    plain = extra_ops_per_step(pipe, name)
    widget = extra_ops_per_step(pipe, name, per_step=True)
    added = {op: n - plain["ops"].get(op, 0) for op, n in widget["ops"].items()}
    extra = widget["per_step"] - plain["per_step"]
    print(f"{name}: per_step=True adds {extra:.0f} a step: {added}")
    assert added.get("aten::index_select", 0) == 1, (
        "the words' keys are picked once a step, all resolutions together"
    )
    assert extra <= 20
