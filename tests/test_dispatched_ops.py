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


@pytest.mark.parametrize("name", ["sd2", "flux"])
def test_the_per_step_record_adds_one_operation_per_layer_call_and_a_few_per_stored_step(name):
    pipe = PIPELINES[name]()
    pipe.set_progress_bar_config(disable=True)
    plain = extra_ops_per_layer_call(pipe, name)
    widget = extra_ops_per_layer_call(pipe, name, per_step=True)
    added = {op: n - plain["ops"].get(op, 0) for op, n in widget["ops"].items()}
    extra = widget["per_layer_call"] - plain["per_layer_call"]
    print(f"{name}: per_step=True adds {extra:.1f} per layer call")
    assert added["aten::add_"] == pytest.approx(1.0), "one add_ per layer call"
    assert added.get("aten::index_select", 0) < 1, "the words' keys are picked per stored step, not per call"
    assert extra <= 8
