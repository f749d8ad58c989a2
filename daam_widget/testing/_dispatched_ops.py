"""What tracing adds per traced attention-layer call, counted in dispatched aten operations.

On a GPU at the sizes people use, a traced generation waits on kernel launches and Python dispatch more
than on arithmetic, so the operations the tracer adds are what it costs there. torch.profiler on the CPU
records every aten operation a call dispatches (nested ones included), deterministically.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import torch
from torch.profiler import ProfilerActivity, profile

from .._trace import trace
from ._catalog import CALLS

SHORT, LONG = 2, 3
"""The steps of the two traced calls whose difference is a step's cost."""


def aten_ops(fn: Any) -> Counter[str]:
    """The aten operations ``fn()`` dispatches, by name, nested ones included."""
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        fn()
    return Counter(e.name for e in prof.events() if e.name.startswith("aten::"))


def extra_ops(
    pipe: Any,
    name: str,
    steps: int,
    softmax_over: str,
    per_step: bool = False,
    layers: list[str] | None = None,
) -> tuple[Counter[str], int]:
    """The extra aten operations of a traced call of ``steps`` steps over an untraced one, and the
    attention-layer calls the trace recorded (``layers``: trace only these)."""
    call = {"prompt": "a red dog on a hat", "num_inference_steps": steps, "height": 32, "width": 32}
    call.update(CALLS.get(name, {}))
    layer_calls = 0

    def untraced() -> None:
        pipe(generator=torch.Generator().manual_seed(0), output_type="latent", **call)

    def traced() -> None:
        nonlocal layer_calls
        options: dict[str, Any] = {"softmax_over": softmax_over, "per_step": per_step, "layers": layers}
        with trace(pipe, **options) as tc:
            untraced()
        layer_calls = len(tc.layer_names) * tc.num_steps

    untraced()  # warm caches
    plain, with_trace = aten_ops(untraced), aten_ops(traced)
    with_trace.subtract(plain)
    return with_trace, layer_calls


def extra_ops_per_layer_call(
    pipe: Any, name: str, softmax_over: str = "text", per_step: bool = False
) -> dict[str, Any]:
    """Extra aten operations per traced layer call, per step and per generation, for ``pipe`` called as
    ``CALLS[name]``.

    The marginal cost of a layer call: the extra operations of a traced call over an untraced one grow by
    the same amount with each step; the growth over one more step with every layer traced, less the growth
    with one layer traced, divided by the layer calls that makes, is what each traced layer call costs. So
    what a trace costs once per step (reading the denoiser call) or once (hooks, the text encoders'
    outputs) is apart, however few layers the tiny pipeline has. ``per_step`` traces with the per-step
    record (the widget's trace). Returns ``per_layer_call``, ``per_step`` (besides the layer calls),
    ``per_generation``, ``layer_calls_per_step`` and ``ops`` (per layer call, by operation name).
    """
    first = [trace(pipe).layer_names[0]]
    runs = {
        (steps, layers is None): extra_ops(pipe, name, steps, softmax_over, per_step, layers)
        for steps in (SHORT, LONG)
        for layers in (None, first)
    }
    growth, growth_one = runs[LONG, True][0].copy(), runs[LONG, False][0].copy()
    growth.subtract(runs[SHORT, True][0])
    growth_one.subtract(runs[SHORT, False][0])
    calls = runs[LONG, True][1] - runs[SHORT, True][1] - (runs[LONG, False][1] - runs[SHORT, False][1])
    per_layer: Counter[str] = growth.copy()
    per_layer.subtract(growth_one)
    per_call = per_layer.total() / calls
    per_step_cost = growth_one.total() / (LONG - SHORT) - per_call
    short, short_calls = runs[SHORT, True]
    return {
        "per_layer_call": per_call,
        "per_step": per_step_cost,
        "per_generation": short.total() - per_call * short_calls - per_step_cost * SHORT,
        "layer_calls_per_step": (runs[LONG, True][1] - runs[SHORT, True][1]) // (LONG - SHORT),
        "ops": {op: n / calls for op, n in per_layer.most_common() if n},
    }
