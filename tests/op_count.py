"""Counting the aten operations a traced generation adds per traced attention-layer call (see
bench/dispatched_ops.py, which prints them, and tests/test_dispatched_ops.py, which bounds them)."""

from __future__ import annotations

from collections import Counter
from typing import Any

import torch
from torch.profiler import ProfilerActivity, profile

import daam_widget
from tests import rig

PIPELINES = {
    "sd2": lambda: rig.sd_pipeline("sd2"),
    "sdxl": rig.sdxl_pipeline,
    "sd3": rig.sd3_pipeline,
    "flux": rig.flux_pipeline,
    "pixart": rig.pixart_pipeline,
    "sana": rig.sana_pipeline,
}
CALLS: dict[str, dict[str, Any]] = {
    "sd3": {"max_sequence_length": 24},
    "flux": {"max_sequence_length": 24},
    "pixart": {"max_sequence_length": 24, "use_resolution_binning": False, "clean_caption": False},
    "sana": {"height": 64, "width": 64, "use_resolution_binning": False},
}


def aten_ops(fn: Any) -> Counter[str]:
    """The aten operations ``fn()`` dispatches, by name, nested ones included."""
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        fn()
    return Counter(e.name for e in prof.events() if e.name.startswith("aten::"))


def extra_ops(pipe: Any, name: str, steps: int, softmax_over: str) -> tuple[Counter[str], int]:
    """The extra aten operations of a traced call of ``steps`` steps over an untraced one, and the
    attention-layer calls the trace recorded."""
    call = {"prompt": "a red dog on a hat", "num_inference_steps": steps, "height": 32, "width": 32}
    call.update(CALLS.get(name, {}))
    layer_calls = 0

    def untraced() -> None:
        pipe(generator=torch.Generator().manual_seed(0), output_type="latent", **call)

    def traced() -> None:
        nonlocal layer_calls
        with daam_widget.trace(pipe, softmax_over=softmax_over) as tc:  # type: ignore[arg-type]
            untraced()
        layer_calls = len(tc.layer_names) * tc.num_steps

    untraced()  # warm caches
    plain, with_trace = aten_ops(untraced), aten_ops(traced)
    with_trace.subtract(plain)
    return with_trace, layer_calls


def per_layer_call(pipe: Any, name: str, softmax_over: str = "text") -> dict[str, Any]:
    """Extra aten operations per traced layer call (marginal, from 2 and 4 steps) and per generation."""
    short, short_calls = extra_ops(pipe, name, 2, softmax_over)
    long, long_calls = extra_ops(pipe, name, 4, softmax_over)
    per_call = (long.total() - short.total()) / (long_calls - short_calls)
    growth = long.copy()
    growth.subtract(short)
    return {
        "per_layer_call": per_call,
        "per_generation": short.total() - per_call * short_calls,
        "layer_calls_per_step": (long_calls - short_calls) // 2,
        "ops": {op: n / (long_calls - short_calls) for op, n in growth.most_common() if n},
    }
