"""What concept maps cost against DAAM alone: time per step and peak memory, side by side in one run.

    python -m bench.concept_cost [--double 4] [--single 2] [--size 512] [--narrow 4] [--concepts 4]
                                 [--device cpu]

A transformer shaped like Flux.1-dev (24 heads; widths divided by ``--narrow``; ``--double`` double- and
``--single`` single-stream blocks) at ``--size`` px with a 512-token T5 window, random weights. Three cases,
each in a fresh process so that peak memory is its own: the pipeline untraced, traced (DAAM), and traced
with ``--concepts`` concepts in its last four double-stream blocks (the default). Each runs 2 steps once
to warm up, then ``--repeats`` generations of ``--steps`` steps; reported: the median seconds per step, and
the process's peak resident memory (on CUDA, ``torch.cuda.max_memory_allocated``). The concepts are
encoded once per generation (each text encoder once per concept), so with few ``--steps`` that one-time cost
weighs on each step.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time

CASE = """
import json, resource, statistics, sys, time
import torch
from bench.pipelines import flux
import daam_widget
options = json.loads(sys.argv[1])
device = options["device"]
torch.manual_seed(0)
with torch.device(device):
    pipe = flux(double=options["double"], single=options["single"], narrow=options["narrow"])
pipe.scheduler = type(pipe.scheduler).from_config(pipe.scheduler.config)
pipe.set_progress_bar_config(disable=True)
concepts = ["cat", "dog", "sky", "grass", "tree", "car", "house", "road"][: options["concepts"]]
size = options["size"]
call = dict(prompt="a cat and a dog on the grass under the sky", height=size, width=size,
            max_sequence_length=512, output_type="latent")

def generate(steps):
    generator = torch.Generator().manual_seed(0)
    if options["case"] == "untraced":
        pipe(num_inference_steps=steps, generator=generator, **call)
        return
    extra = {"concepts": concepts} if options["case"] == "concepts" else {}
    with daam_widget.trace(pipe, **extra):
        pipe(num_inference_steps=steps, generator=generator, **call)

generate(2)
if device == "cuda":
    torch.cuda.reset_peak_memory_stats()
times = []
for _ in range(options["repeats"]):
    if device == "cuda":
        torch.cuda.synchronize()
    started = time.perf_counter()
    generate(options["steps"])
    if device == "cuda":
        torch.cuda.synchronize()
    times.append((time.perf_counter() - started) / options["steps"])
peak = (torch.cuda.max_memory_allocated() if device == "cuda"
        else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)
print(json.dumps({"case": options["case"], "s_per_step": statistics.median(times), "peak_mb": peak / 2**20}))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--double", type=int, default=4)
    parser.add_argument("--single", type=int, default=2)
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--narrow", type=int, default=4)
    parser.add_argument("--concepts", type=int, default=4)
    parser.add_argument("--steps", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    results = {}
    started = time.perf_counter()
    for case in ("untraced", "daam", "concepts"):
        options = vars(args) | {"case": case}
        done = subprocess.run(
            [sys.executable, "-c", CASE, json.dumps(options)], check=True, capture_output=True, text=True
        )
        results[case] = json.loads(done.stdout.splitlines()[-1])
        print(json.dumps(results[case]), flush=True)
    summary = {
        "setup": {k: v for k, v in vars(args).items()},
        "daam_over_untraced_time": results["daam"]["s_per_step"] / results["untraced"]["s_per_step"],
        "concepts_over_daam_time": results["concepts"]["s_per_step"] / results["daam"]["s_per_step"],
        "concepts_minus_daam_peak_mb": results["concepts"]["peak_mb"] - results["daam"]["peak_mb"],
        "daam_minus_untraced_peak_mb": results["daam"]["peak_mb"] - results["untraced"]["peak_mb"],
        "cases": results,
        "seconds": round(time.perf_counter() - started, 1),
    }
    print(json.dumps(summary, indent=1))


if __name__ == "__main__":
    main()
