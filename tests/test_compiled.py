"""A compiled denoiser, traced: the maps of the uncompiled model's trace, and the model compiled once for
tracing, not at every step nor at every trace."""

import pytest
import torch
from torch._dynamo.utils import counters

import daam_widget
from daam_widget.testing import CALLS, PIPELINES

PROMPT = "a red dog on a hat"


def _generate(pipe, name, steps):
    call = {"num_inference_steps": steps, "height": 32, "width": 32, **CALLS.get(name, {})}
    pipe(PROMPT, generator=torch.Generator().manual_seed(0), output_type="latent", **call)


def _traced_maps(pipe, name, steps):
    with daam_widget.trace(pipe) as tc:
        _generate(pipe, name, steps)
    return tc.heat_maps(prompt=PROMPT).maps


def _compile(pipe, backend, in_place):
    attribute = "unet" if hasattr(pipe, "unet") else "transformer"
    model = getattr(pipe, attribute)
    if in_place:
        model.compile(backend=backend)
    else:
        setattr(pipe, attribute, torch.compile(model, backend=backend))
    return model


def _graphs():
    return counters["stats"]["unique_graphs"]


@pytest.mark.parametrize(
    ("name", "backend", "in_place"),
    [
        ("sd2", "eager", False),
        ("sd2", "eager", True),
        ("sdxl", "eager", False),
        ("sd3", "eager", False),
        ("pixart", "eager", False),
        pytest.param("sd2", "inductor", False, marks=pytest.mark.slow),
    ],
)
def test_a_compiled_denoiser_is_compiled_once_and_traced_exactly(name, backend, in_place):
    pipe = PIPELINES[name]()
    pipe.set_progress_bar_config(disable=True)
    expected = _traced_maps(pipe, name, 4)
    torch._dynamo.reset()
    counters.clear()
    model = _compile(pipe, backend, in_place)
    processors = {n: type(p) for n, p in model.attn_processors.items()}
    _generate(pipe, name, 2)
    untraced = _graphs()
    _traced_maps(pipe, name, 2)
    first_trace = _graphs()
    maps = _traced_maps(pipe, name, 4)
    _generate(pipe, name, 2)
    print(f"graphs: untraced {untraced}, first trace {first_trace}, after all {_graphs()}")
    assert first_trace - untraced <= 1, "the trace compiles the model once (its processors changed)"
    assert _graphs() == first_trace, "twice the steps, a second trace and an untraced call compile nothing"
    assert not counters["graph_break"], dict(counters["graph_break"])
    assert {n: type(p) for n, p in model.attn_processors.items()} == processors
    tolerance = 1e-5 if backend == "eager" else 1e-3
    torch.testing.assert_close(maps, expected, rtol=tolerance, atol=tolerance * float(expected.abs().max()))


def test_a_compiled_denoiser_traced_at_its_attention_call_warns_and_is_compiled_once():
    pipe = PIPELINES["flux"]()
    pipe.set_progress_bar_config(disable=True)
    expected = _traced_maps(pipe, "flux", 4)
    torch._dynamo.reset()
    counters.clear()
    _compile(pipe, "eager", False)
    with pytest.warns(UserWarning, match="compiled pieces"):
        _traced_maps(pipe, "flux", 2)
    first_trace = _graphs()
    with pytest.warns(UserWarning, match="compiled pieces"):
        maps = _traced_maps(pipe, "flux", 4)
    assert _graphs() == first_trace, "twice the steps and a second trace compile nothing"
    torch.testing.assert_close(maps, expected, rtol=1e-5, atol=1e-5 * float(expected.abs().max()))
