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


def aten_ops(fn: Any) -> Counter[str]:
    """The aten operations ``fn()`` dispatches, by name, nested ones included."""
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        fn()
    return Counter(e.name for e in prof.events() if e.name.startswith("aten::"))


def extra_ops(
    pipe: Any, name: str, steps: int, softmax_over: str, per_step: bool = False
) -> tuple[Counter[str], int]:
    """The extra aten operations of a traced call of ``steps`` steps over an untraced one, and the
    attention-layer calls the trace recorded."""
    call = {"prompt": "a red dog on a hat", "num_inference_steps": steps, "height": 32, "width": 32}
    call.update(CALLS.get(name, {}))
    layer_calls = 0

    def untraced() -> None:
        pipe(generator=torch.Generator().manual_seed(0), output_type="latent", **call)

    def traced() -> None:
        nonlocal layer_calls
        with trace(pipe, softmax_over=softmax_over, per_step=per_step) as tc:  # type: ignore[arg-type]
            untraced()
        layer_calls = len(tc.layer_names) * tc.num_steps

    untraced()  # warm caches
    plain, with_trace = aten_ops(untraced), aten_ops(traced)
    with_trace.subtract(plain)
    return with_trace, layer_calls


def extra_ops_per_layer_call(
    pipe: Any, name: str, softmax_over: str = "text", per_step: bool = False
) -> dict[str, Any]:
    """Extra aten operations per traced layer call and per generation, for ``pipe`` called as ``CALLS[name]``.

    The marginal cost: the extra operations of a traced call over an untraced one grow by the same amount
    with each step; that growth over 2 more steps, divided by the layer calls they add, is what each traced
    layer call costs. What a trace costs once (hooks, reading the text encoders' outputs) is apart.
    ``per_step`` traces with the per-step record (the widget's trace).
    Returns ``per_layer_call``, ``per_generation``, ``layer_calls_per_step`` and ``ops`` (per layer call,
    by operation name).
    """
    short, short_calls = extra_ops(pipe, name, 2, softmax_over, per_step)
    long, long_calls = extra_ops(pipe, name, 4, softmax_over, per_step)
    per_call = (long.total() - short.total()) / (long_calls - short_calls)
    growth = long.copy()
    growth.subtract(short)
    return {
        "per_layer_call": per_call,
        "per_generation": short.total() - per_call * short_calls,
        "layer_calls_per_step": (long_calls - short_calls) // 2,
        "ops": {op: n / (long_calls - short_calls) for op, n in growth.most_common() if n},
    }
