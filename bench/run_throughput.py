"""Throughput of a dataset run: images per second of one process against two (torchrun), and what writing an
image's maps costs.

    python bench/run_throughput.py [--prompts 24] [--steps 10] [--batch-size 1] [--model toy]

Runs ``daam-widget run`` on the toy world's captions three ways (each ``--repeats`` times, in turn;
the fastest is reported), into fresh folders: one process with one torch thread, one process with a thread per
core (``--threads`` = the cores), and ``torchrun --nproc_per_node 2`` with one thread each. Images per second
are counted from each process's own report (generation and writing, after the model is loaded; the processes
of a torchrun run at once, so the run's rate is all images over the slowest process's time), and from the wall
clock of the whole command, model loading and imports included. Then the cost of writing one image's maps
(``HeatMaps.save`` through the run's atomic write: temporary file, fsync, rename) for the toy's maps and for
maps of Stable Diffusion's size (512 px, 12 token positions), in ms and bytes. On a CUDA machine add
``--device-count N`` to compare 1 against N GPUs.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from daam_widget import HeatMaps, testing
from daam_widget._grid_sums import GridSums
from daam_widget._words import layout_from_text
from daam_widget.toy import EVALUATION_SEEDS, scene

REPORT = re.compile(r"rank (\d+)/(\d+): wrote (\d+) images in ([\d.]+) s")


def launch(command: list[str], env: dict[str, str]) -> dict[str, float]:
    started = time.perf_counter()
    done = subprocess.run(command, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - started
    if done.returncode:
        raise RuntimeError(f"{' '.join(command)} failed:\n{done.stderr[-3000:]}")
    reports = [(int(m[2]), float(m[3])) for m in REPORT.findall(done.stderr)]
    images = sum(n for n, _ in reports)
    slowest = max(s for _, s in reports)
    return {
        "processes": len(reports),
        "images": images,
        "images_per_s": images / slowest,
        "wall_s": wall,
        "images_per_s_wall": images / wall,
    }


def write_cost(maps: HeatMaps, folder: Path, repeats: int = 20) -> dict[str, float]:
    times = []
    for r in range(repeats):
        path = folder / f"{r}.safetensors"
        started = time.perf_counter()
        maps.save(path)  # a temporary file, fsync, rename
        times.append(time.perf_counter() - started)
    size = (folder / "0.safetensors").stat().st_size
    return {"ms_median": 1000 * float(np.median(times)), "bytes": size, "map_size": list(maps.shape)}


def sd_sized_maps(size: int = 512, positions: int = 12) -> HeatMaps:
    """Maps as a trace of Stable Diffusion at ``size`` px gives them: sums at the 64, 32, 16 and 8 grids."""
    layout = layout_from_text("a photo of a red dog on a blue hat", testing.clip_tokenizer())
    used = layout.used_positions[:positions]
    random = torch.Generator().manual_seed(0)
    grids = {
        (g, g): torch.rand(len(used), g, g, generator=random)
        for g in (size // 8, size // 16, size // 32, size // 64)
    }
    sums = GridSums(grids, (size, size))
    image = np.random.default_rng(0).integers(0, 255, (size, size, 3), dtype=np.uint8)
    return HeatMaps(sums.maps(), used, layout, image=image, grids=sums)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prompts", type=int, default=24)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--batch-size", type=int, default=1)
    parser.add_argument("--model", default="toy")
    parser.add_argument("--device-count", type=int, default=2, help="processes of the torchrun case")
    parser.add_argument("--repeats", type=int, default=1, help="runs of each case; the fastest is reported")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()

    root = Path(tempfile.mkdtemp(prefix="daam-run-bench-"))
    prompts = root / "prompts.txt"
    prompts.write_text("".join(scene(EVALUATION_SEEDS + k).caption + "\n" for k in range(args.prompts)))
    common = [str(prompts), "--steps", str(args.steps), "--batch-size", str(args.batch_size)]
    common += ["--model", args.model]
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK")}
    cores = os.cpu_count() or 1
    torchrun = str(Path(sys.executable).parent / "torchrun")
    cases = {
        "1 process, 1 thread": [sys.executable, "-m", "daam_widget", "run", *common, "--threads", "1"],
        f"1 process, {cores} threads": [
            sys.executable,
            "-m",
            "daam_widget",
            "run",
            *common,
            "--threads",
            str(cores),
        ],
        f"torchrun, {args.device_count} processes, 1 thread each": [
            torchrun,
            "--standalone",
            "--nproc_per_node",
            str(args.device_count),
            "-m",
            "daam_widget",
            "run",
            *common,
            "--threads",
            "1",
        ],
    }
    tries: dict[str, list[dict[str, float]]] = {name: [] for name in cases}
    for attempt in range(args.repeats):  # the cases in turn, so that load from elsewhere hits them alike
        for name, command in cases.items():
            out = root / f"{re.sub(r'[^a-z0-9]+', '-', name)}-{attempt}"
            tries[name].append(launch([*command, "--out", str(out)], env))
            index = [json.loads(line) for line in (out / "index.jsonl").read_text().splitlines()]
            assert len(index) == args.prompts, f"{name}: {len(index)} images indexed, {args.prompts} expected"
    results = {
        name: max(runs, key=lambda r: r["images_per_s"]) | {"tries": runs} for name, runs in tries.items()
    }

    print(
        f"{args.prompts} toy captions, {args.steps} steps, batch size {args.batch_size}, {cores} CPU cores, "
        f"fastest of {args.repeats}"
    )
    print(f"{'case':<40} {'images/s (after loading)':>25} {'images/s (wall)':>16} {'wall s':>8}")
    for name, r in results.items():
        print(f"{name:<40} {r['images_per_s']:>25.2f} {r['images_per_s_wall']:>16.2f} {r['wall_s']:>8.1f}")

    written = root / "writes"
    written.mkdir()
    some = next((root / f"{re.sub(r'[^a-z0-9]+', '-', next(iter(cases)))}-0" / "maps").glob("*.safetensors"))
    costs = {"toy": write_cost(HeatMaps.load(some), written), "sd-512": write_cost(sd_sized_maps(), written)}
    print("\nwriting one image's maps (HeatMaps.save, temporary file, fsync, rename):")
    for name, c in costs.items():
        h, w = c["map_size"]
        print(f"{name:<8} maps {h}x{w}: {c['ms_median']:.2f} ms, {c['bytes'] / 1e6:.3f} MB per image")
    if args.json:
        args.json.write_text(
            json.dumps(
                {"args": vars(args) | {"json": str(args.json)}, "runs": results, "writes": costs}, indent=1
            )
        )
    shutil.rmtree(root)


if __name__ == "__main__":
    main()
