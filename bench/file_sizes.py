"""What one image of a dataset run costs on disk: its maps file (``HeatMaps.save``) and its per-step file
(``StepMaps.save``) in the compact format (each resolution's sums at its own grid in float16 with a
float32 scale per map, the image as PNG) beside the former one (float32 maps at the image's size, raw
pixels), on a UNet shaped like Stable Diffusion 2.1-base at 512 px (random weights: the sizes do not
depend on them, except the PNG's, which here compresses a noise image: the worst case) and a prompt of
15 token positions. Also how far the maps rebuilt from the compact file are from the trace's.

python bench/file_sizes.py [--size 512] [--steps 2]
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import numpy as np
import torch
from safetensors import safe_open
from safetensors.numpy import save_file

import daam_widget
from bench.pipelines import build

PROMPT = "a red circle and a big blue square with three small stars"


def former_bytes(maps: daam_widget.HeatMaps, folder: Path) -> int:
    """The file of daam-widget/1: float32 maps at the image's size and the raw image."""
    tensors = {"maps": maps.maps.numpy(), "positions": np.asarray(maps.positions, np.int64)}
    if maps.image is not None:
        tensors["image"] = np.ascontiguousarray(maps.image)
    save_file(tensors, str(folder / "former.safetensors"))
    return (folder / "former.safetensors").stat().st_size


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--steps", type=int, default=2)
    args = parser.parse_args()
    pipe = build("sd21")
    pipe.set_progress_bar_config(disable=True)
    with daam_widget.trace(pipe, per_step=True) as tc:
        pipe(
            PROMPT,
            height=args.size,
            width=args.size,
            num_inference_steps=args.steps,
            generator=torch.Generator().manual_seed(0),
        )
    maps, steps = tc.heat_maps(0, prompt=PROMPT), tc.step_maps(0, prompt=PROMPT)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder)
        maps.save(path / "maps.safetensors")
        steps.save(path / "steps.safetensors")
        loaded = daam_widget.HeatMaps.load(path / "maps.safetensors")
        with safe_open(str(path / "maps.safetensors"), framework="numpy") as f:
            image_png = f.get_tensor("image_png").nbytes if "image_png" in f.keys() else 0
        result = {
            "pipeline": "sd21-shaped UNet, random weights",
            "image": [args.size, args.size],
            "positions": len(maps.positions),
            "grids": [list(g) for g in maps.grids.grids] if maps.grids else None,
            "maps_file_bytes": (path / "maps.safetensors").stat().st_size,
            "of_which_image_png_bytes": image_png,
            "former_maps_file_bytes": former_bytes(maps, path),
            "steps_file_bytes_per_step": (path / "steps.safetensors").stat().st_size // steps.num_steps,
            "former_steps_bytes_per_step": sum(m.numel() * 4 for m in steps.maps.values()) // steps.num_steps,
            "max_error_over_peak": float(
                ((loaded.maps - maps.maps).abs().flatten(1).amax(1) / maps.maps.flatten(1).amax(1)).max()
            ),
        }
    result["maps_bytes_without_image"] = result["maps_file_bytes"] - image_png
    print(json.dumps(result))


if __name__ == "__main__":
    main()
