"""The tracer's ways to get q and k, side by side in one run: taken from the processor's own computation
(hooks on its projections, or its attention call watched; the default) or computed again from the
processor's arguments (the fallback for processors that show neither, and what the tracer did for every
processor before).

    python bench/capture_paths.py --pipeline sd21 --size 256 --steps 1 --reps 7

Untraced, traced and traced-with-recomputing calls alternate (rotating their order), one torch thread;
medians of each call's CPU time (the calling thread's: the steadiest clock on a shared machine) and of its
wall-clock time, over the untraced call's.
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import time
from typing import Any

import torch
from pipelines import PIPELINES, build

import daam_widget
import daam_widget._capture as capture

KINDS = ("untraced", "from the processor", "recomputed")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--pipeline", default="sd21", choices=PIPELINES)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--steps", type=int, default=1)
    parser.add_argument("--reps", type=int, default=7)
    args = parser.parse_args()
    torch.set_num_threads(1)
    pipe = build(args.pipeline)
    pipe.set_progress_bar_config(disable=True)
    call: dict[str, Any] = {"height": args.size, "width": args.size, "num_inference_steps": args.steps}
    attention = capture._attention

    def run(kind: str) -> tuple[float, float]:
        tc = daam_widget.trace(pipe)
        if kind == "recomputed":  # neither hooks on the projections nor a call to watch: recompute
            tc.backbone.projections = lambda attn: None  # type: ignore[method-assign]
            capture._attention = object()
        try:
            with tc if kind != "untraced" else contextlib.nullcontext():
                start, start_cpu = time.perf_counter(), time.thread_time()
                pipe("a red circle to the left of a blue square", output_type="latent", **call)
                return time.perf_counter() - start, time.thread_time() - start_cpu
        finally:
            capture._attention = attention

    for kind in KINDS:
        run(kind)  # warm-up
    times: dict[str, list[tuple[float, float]]] = {kind: [] for kind in KINDS}
    for rep in range(args.reps):
        for kind in KINDS[rep % 3 :] + KINDS[: rep % 3]:
            times[kind].append(run(kind))
    base_wall = statistics.median(w for w, _ in times["untraced"])
    base_cpu = statistics.median(c for _, c in times["untraced"])
    print(f"{args.pipeline} {args.size} px, {args.steps} steps, {args.reps} calls of each kind")
    for kind in KINDS:
        wall = statistics.median(w for w, _ in times[kind])
        cpu = statistics.median(c for _, c in times[kind])
        print(
            f"{kind:<18} {cpu:8.3f} s CPU ({cpu / base_cpu:.3f})  {wall:8.3f} s wall ({wall / base_wall:.3f})"
        )


if __name__ == "__main__":
    main()
