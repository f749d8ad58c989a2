"""What tracing adds to a denoising step, as a share of what an untraced step dispatches, on full-size
denoisers: on a GPU a traced step waits on launches more than on arithmetic, so this share is what a
traced generation costs there (issue 29's goal: at most 3%).

    python bench/step_share.py [--pipelines sd21,sdxl,flux-3] [--size 64]

For each pipeline of ``bench/pipelines.py`` (random weights: the operations do not depend on them) and 1
and 4 images per prompt: the aten operations an untraced step dispatches, and what ``trace(pipe)`` and the
widget's trace (``per_step=True``) add to a step, each the growth from a 2-step to a 3-step call counted
with torch.profiler on the CPU (deterministic), so that what a call costs once is left out.
"""

from __future__ import annotations

import argparse
from contextlib import nullcontext
from typing import Any

import torch

import daam_widget
from bench.pipelines import build
from daam_widget.testing._dispatched_ops import LONG, SHORT, aten_ops

PROMPT = "a red dog on a hat"


def ops_per_step(pipe: Any, call: dict[str, Any], trace_options: dict[str, Any] | None) -> int:
    """Aten operations one more step dispatches, untraced (``trace_options`` None) or traced."""

    def run(steps: int) -> None:
        with daam_widget.trace(pipe, **trace_options) if trace_options is not None else nullcontext():
            pipe(PROMPT, num_inference_steps=steps, generator=torch.Generator().manual_seed(0), **call)

    run(SHORT)  # warm caches
    return aten_ops(lambda: run(LONG)).total() - aten_ops(lambda: run(SHORT)).total()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--pipelines", default="sd21,sdxl,flux-3")
    parser.add_argument("--size", type=int, default=64)
    args = parser.parse_args()
    torch.set_num_threads(2)
    print(
        f"{'pipeline':<8} {'images':>6} {'untraced/step':>13} {'trace +/step':>12} {'share':>6} "
        f"{'widget +/step':>13} {'share':>6}"
    )
    for name in args.pipelines.split(","):
        pipe = build(name)
        pipe.set_progress_bar_config(disable=True)
        for images in (1, 4):
            call = {
                "height": args.size,
                "width": args.size,
                "num_images_per_prompt": images,
                "output_type": "latent",
            }
            untraced = ops_per_step(pipe, call, None)
            plain = ops_per_step(pipe, call, {}) - untraced
            widget = ops_per_step(pipe, call, {"per_step": True}) - untraced
            print(
                f"{name:<8} {images:>6} {untraced:>13} {plain:>12} {plain / untraced:>6.1%} "
                f"{widget:>13} {widget / untraced:>6.1%}",
                flush=True,
            )
        del pipe


if __name__ == "__main__":
    main()
