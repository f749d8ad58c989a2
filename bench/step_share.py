"""What tracing adds to a denoising step, as a share of what an untraced step dispatches, on full-size
denoisers: on a GPU a traced step waits on launches more than on arithmetic, so this share is what a
traced generation costs there (the goal: at most 3%).

    python bench/step_share.py [--pipelines sd21,sdxl,flux-3] [--size 64] [--narrow 1]

For each pipeline of ``bench/pipelines.py`` (random weights: the operations do not depend on them) and 1
and 4 images per prompt: the aten operations an untraced step dispatches, and what ``trace(pipe)`` and the
widget's trace (``per_step=True``) add to a step, each the growth from a 2-step to a 3-step call counted
with torch.profiler on the CPU (deterministic), so that what a call costs once is left out. ``--narrow 8``
divides every width by 8: the same operations, in a minute instead of twenty.
"""

from __future__ import annotations

import argparse

import torch

from bench.pipelines import build
from daam_widget.testing import ops_per_step

PROMPT = "a red dog on a hat"
VIDEO = {"wan": {"num_frames": 9}}
"""Video pipelines' calls: 9 frames (5 latent frames with the test VAE's 2x in time)."""


def shares(name: str, size: int = 64, narrow: int = 1) -> list[dict[str, int]]:
    """For 1 and 4 images per prompt: untraced operations per step, and what the plain and the widget's
    trace add to a step."""
    pipe = build(name, narrow=narrow)
    pipe.set_progress_bar_config(disable=True)
    rows = []
    for images in (1, 4):
        per_prompt = "num_videos_per_prompt" if name in VIDEO else "num_images_per_prompt"
        call = {
            "prompt": PROMPT,
            "height": size,
            "width": size,
            per_prompt: images,
            "output_type": "latent",
            **VIDEO.get(name, {}),
        }
        untraced = ops_per_step(pipe, call)
        rows.append(
            {
                "images": images,
                "untraced": untraced,
                "trace": ops_per_step(pipe, call, {}) - untraced,
                "widget": ops_per_step(pipe, call, {"per_step": True}) - untraced,
            }
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--pipelines", default="sd21,sdxl,flux-3")
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--narrow", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(2)
    print(
        f"{'pipeline':<8} {'images':>6} {'untraced/step':>13} {'trace +/step':>12} {'share':>6} "
        f"{'widget +/step':>13} {'share':>6}"
    )
    for name in args.pipelines.split(","):
        for r in shares(name, args.size, args.narrow):
            print(
                f"{name:<8} {r['images']:>6} {r['untraced']:>13} {r['trace']:>12} "
                f"{r['trace'] / r['untraced']:>6.1%} {r['widget']:>13} {r['widget'] / r['untraced']:>6.1%}",
                flush=True,
            )


if __name__ == "__main__":
    main()
