"""What keeping every step costs: bytes per image and step of the per-step record (``per_step=True``, the
widget's default), of the per-layer time-resolved sums (``time_resolved=True``), and of the widget's
``step_maps``, measured in one run on a UNet shaped like Stable Diffusion 2.1-base at 512 px (64x64
latents; random weights: the sizes do not depend on them) with a ten-word prompt.

python bench/step_record.py [--size 512] [--steps 2]
"""

from __future__ import annotations

import argparse
import json

import torch

import daam_widget
from bench.pipelines import build
from daam_widget._widget_data import encode_steps

PROMPT = "a red circle and a big blue square with stars"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--steps", type=int, default=2)
    args = parser.parse_args()
    torch.manual_seed(0)
    pipe = build("sd21")
    pipe.set_progress_bar_config(disable=True)
    call = dict(height=args.size, width=args.size, num_inference_steps=args.steps, output_type="latent")
    with daam_widget.trace(pipe, per_step=True, time_resolved=True) as tc:
        pipe(PROMPT, generator=torch.Generator().manual_seed(0), **call)
    generation = tc._generations[0]
    record = generation.record
    assert record is not None
    per_layer = sum(t.numel() * t.element_size() for t in generation.sums.by_step[0].values())
    steps = tc.step_maps(0, prompt=PROMPT)
    widget_bytes = len(encode_steps(steps)["step_maps"]) + 4 * steps.num_steps * len(steps.words)
    result = {
        "pipeline": "sd21-shaped UNet, random weights",
        "image": [args.size, args.size],
        "prompt": PROMPT,
        "words": len(steps.words),
        "kept_token_positions": len(record.positions),
        "grids": [list(g) for g in record.grids()],
        "record_bytes_per_step": record.bytes_per_step(),
        "time_resolved_bytes_per_step": per_layer,
        "widget_step_maps_bytes_per_step": widget_bytes // steps.num_steps,
        "sums_bytes": generation.sums.nbytes() - per_layer * generation.steps,
    }
    result["time_resolved_over_record"] = round(per_layer / result["record_bytes_per_step"], 1)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
