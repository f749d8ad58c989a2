"""What tracing adds per traced attention-layer call, counted in dispatched aten operations (on a GPU the
tracer's cost is the launches it adds). Deterministic, so bounded here; bench/dispatched_ops.py prints it."""

import pytest

from daam_widget.testing import PIPELINES, extra_ops_per_layer_call

# Before the tracer read q and k off the processor's own attention call, it took 69 (SD 2, SDXL), 83
# (SD3), 210 (Flux) and 88 (PixArt, Sana) per layer call.
BOUND = 15


@pytest.mark.parametrize("name", list(PIPELINES))
def test_a_traced_layer_call_dispatches_at_most_15_extra_operations(name):
    pipe = PIPELINES[name]()
    pipe.set_progress_bar_config(disable=True)
    measured = extra_ops_per_layer_call(pipe, name)
    print(f"{name}: {measured['per_layer_call']:.1f} extra aten operations per layer call")
    assert measured["per_layer_call"] <= BOUND, measured["ops"]
