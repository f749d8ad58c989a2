"""What tracing adds to a denoising step, counted in dispatched aten operations.

On a GPU at the sizes people use, a traced generation waits on kernel launches and Python dispatch more
than on arithmetic, so the operations the tracer adds are what it costs there. torch.profiler on the CPU
records every aten operation a call dispatches (nested ones included), deterministically.
"""

from __future__ import annotations

from collections import Counter
from contextlib import nullcontext
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


def ops_per_step(pipe: Any, call: dict[str, Any], trace_options: dict[str, Any] | None = None) -> int:
    """The aten operations one more step of ``pipe(**call)`` dispatches, untraced (``trace_options``
    None) or traced with them: the growth from a ``SHORT``- to a ``LONG``-step call, so that what a call
    costs once is left out."""

    def run(steps: int) -> None:
        with trace(pipe, **trace_options) if trace_options is not None else nullcontext():
            pipe(num_inference_steps=steps, generator=torch.Generator().manual_seed(0), **call)

    run(SHORT)  # warm caches
    return aten_ops(lambda: run(LONG)).total() - aten_ops(lambda: run(SHORT)).total()


def extra_ops(
    pipe: Any,
    name: str,
    steps: int,
    softmax_over: str,
    per_step: bool = False,
    layers: list[str] | None = None,
    warm: bool = True,
) -> tuple[Counter[str], int]:
    """The extra aten operations of a traced call of ``steps`` steps over an untraced one, and the
    attention-layer calls the trace recorded (``layers``: trace only these); ``warm``: call both once
    first (caches, and the recorders a pipeline's first trace makes)."""
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

    if warm:
        untraced()
        traced()
    plain, with_trace = aten_ops(untraced), aten_ops(traced)
    with_trace.subtract(plain)
    return with_trace, layer_calls


def extra_ops_per_step(
    pipe: Any,
    name: str,
    softmax_over: str = "text",
    per_step: bool = False,
    layers: list[str] | None = None,
) -> dict[str, Any]:
    """What a trace adds to each step of ``pipe`` called as ``CALLS[name]``, in aten operations: the
    growth of the extra operations of a traced call over an untraced one from ``SHORT`` to ``LONG`` steps,
    so that what a trace costs once (hooks, the text encoders' outputs) is apart. ``per_step`` traces with
    the per-step record (the widget's trace); ``layers``, only those layers. Returns ``per_step``,
    ``per_generation``, ``layer_calls_per_step`` and ``ops`` (per step, by operation name)."""
    (short, short_calls), (long, long_calls) = (
        extra_ops(pipe, name, steps, softmax_over, per_step, layers, warm=steps == SHORT)
        for steps in (SHORT, LONG)
    )
    growth = long.copy()
    growth.subtract(short)
    per_step_cost = growth.total() / (LONG - SHORT)
    return {
        "per_step": per_step_cost,
        "per_generation": short.total() - per_step_cost * SHORT,
        "layer_calls_per_step": (long_calls - short_calls) // (LONG - SHORT),
        "ops": {op: n / (LONG - SHORT) for op, n in growth.most_common() if n},
    }
