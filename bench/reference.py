"""The reference's side of the benchmark: castorini's ``daam`` 0.2.0, run by the reference venv's python.

    bench/.reference-venv/bin/python bench/reference.py --model DIR --prompt TEXT --words red,circle --out DIR

``bench/overhead.py`` calls this with a pipeline it built and saved (``save_pretrained``); this script
loads it with ``from_pretrained`` from the local folder, times untraced and ``daam.trace``-d calls with the
protocol of ``_measure.py``, and writes ``result.json`` (times, memory) and ``maps.npz`` (the last traced
call's image and the reference's word maps at image size) into ``--out``.

Word maps come from ``compute_global_heat_map().compute_word_heat_map(word)``, which finds the word's
tokens by tokenizing; spaCy (which the reference downloads a model for with ``os.system``) is used only by
its parsing helpers, which are never called here. Nothing in the package is patched or stubbed.
"""

from __future__ import annotations

import argparse
import json
import pathlib
import time

import daam  # type: ignore[import-not-found]  # lives in bench/.reference-venv only
import diffusers
import numpy as np
import torch
import transformers
from _measure import interleaved
from diffusers import StableDiffusionPipeline


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", required=True, type=pathlib.Path, help="a folder from save_pretrained")
    parser.add_argument("--prompt", required=True)
    parser.add_argument("--words", required=True, help="comma-separated words to write maps of")
    parser.add_argument("--size", type=int, default=512, help="image height and width (512, 768 or 1024)")
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--guidance", type=float, default=7.5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", required=True, type=pathlib.Path)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    args.out.mkdir(parents=True, exist_ok=True)

    pipe = StableDiffusionPipeline.from_pretrained(
        args.model, local_files_only=True, safety_checker=None, requires_safety_checker=False
    )
    pipe.set_progress_bar_config(disable=True)

    def generate(steps: int) -> np.ndarray:
        out = pipe(
            args.prompt,
            height=args.size,
            width=args.size,
            num_inference_steps=steps,
            guidance_scale=args.guidance,
            generator=torch.Generator().manual_seed(args.seed),
            output_type="np",
        )
        return out.images[0]

    def traced(steps: int = args.steps):
        tc = daam.trace(pipe)
        with tc:
            image = generate(steps)
        return tc, image

    def warmup() -> None:
        generate(1)
        traced(1)

    measured = interleaved(lambda: generate(args.steps), traced, args.reps, "cpu", warmup)
    tc, image = measured.pop("traced_result")
    stored = sum(t.numel() * t.element_size() for _, t in tc.all_heat_maps)

    start = time.perf_counter()
    global_map = tc.compute_global_heat_map()
    words = [w for w in args.words.split(",") if w]
    maps = {w: global_map.compute_word_heat_map(w).expand_as(tc.last_image, absolute=True) for w in words}
    maps_s = time.perf_counter() - start

    np.savez(
        args.out / "maps.npz",
        image=(image * 255).round().astype(np.uint8),
        **{f"map:{w}": m.numpy().astype(np.float32) for w, m in maps.items()},
    )
    result = {
        "implementation": "daam 0.2.0",
        "versions": {
            "diffusers": diffusers.__version__,
            "transformers": transformers.__version__,
            "torch": torch.__version__,
        },
        "threads": args.threads,
        **measured,
        "stored_bytes": stored,
        "stored_maps": len(list(tc.all_heat_maps)),
        "layers": list(tc.layer_names),
        "maps_s": maps_s,
    }
    (args.out / "result.json").write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
