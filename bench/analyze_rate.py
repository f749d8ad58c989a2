"""How fast ``analyze`` reads a run, and how much memory it holds as the run grows.

Images a second of ``analyze_run`` (in one process, after its imports), on a run folder you made, or on a
synthetic run of SD-512-shaped maps files (sums at the 64, 32, 16 and 8 grids as a trace writes them, 12 token
positions, a noise image): the same file copied ``--sd`` times. ``--memory N,M,...`` analyses the run's images
indexed over and over to N, M, ... rows (its maps folder linked, not copied), each in a fresh process, and
reports what the analysis holds at its end (``tracemalloc``) and the process's peak resident memory;
``--code DIR`` does the same with another checkout's ``daam_widget`` (an older commit, side by side; its
``daam_widget/static`` built or copied in).

python -m bench.analyze_rate --run artifacts/runs/toy
python -m bench.analyze_rate --sd 50
python -m bench.analyze_rate --run artifacts/runs/toy --memory 1000,10000 [--code /tmp/old-checkout]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.run_throughput import sd_sized_maps
from daam_widget._run_files import IndexRow, read_index, write_index
from daam_widget.analysis import analyze_run


def rate(folder: Path) -> dict[str, float]:
    started = time.perf_counter()
    result = analyze_run(folder)
    seconds = time.perf_counter() - started
    return {
        "images": result.images,
        "seconds": round(seconds, 2),
        "images_per_s": round(result.images / seconds, 1),
    }


def synthetic_sd_run(folder: Path, images: int) -> Path:
    (folder / "maps").mkdir(parents=True)
    maps = sd_sized_maps()
    maps.save(folder / "maps" / "0.safetensors")
    rows = []
    for k in range(images):
        if k:
            shutil.copy(folder / "maps" / "0.safetensors", folder / "maps" / f"{k}.safetensors")
        rows.append(IndexRow(index=k, image=0, prompt=maps.prompt, file=f"maps/{k}.safetensors"))
    write_index(folder, rows)
    return folder


def repeated_run(run: Path, folder: Path, rows: int) -> Path:
    """``run``'s images indexed again and again to ``rows`` rows, its maps folder linked."""
    images = read_index(run)
    (folder / "maps").symlink_to((run / "maps").resolve())
    write_index(
        folder,
        [
            IndexRow(
                index=k, image=0, prompt=images[k % len(images)].prompt, file=images[k % len(images)].file
            )
            for k in range(rows)
        ],
    )
    return folder


MEMORY = """
import json, resource, sys, time, tracemalloc
from daam_widget.analysis import analyze_run
tracemalloc.start()
started = time.perf_counter()
result = analyze_run(sys.argv[1])
seconds = time.perf_counter() - started
held, peak = tracemalloc.get_traced_memory()
rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"images": result.images, "seconds": round(seconds, 1), "held_mb": round(held / 2**20, 2),
                  "peak_mb": round(peak / 2**20, 2), "peak_rss_mb": round(rss, 1)}))
"""


def memory(folder: Path, code: Path | None) -> dict[str, float]:
    """What ``analyze_run`` of ``folder`` holds (Python's allocations, ``tracemalloc``) and the process's
    peak resident memory, in a fresh process of ``code``'s checkout (default: this one), started outside
    any checkout so that the current folder does not come first on its path."""
    code = code or Path(__file__).resolve().parent.parent
    with tempfile.TemporaryDirectory() as elsewhere:
        done = subprocess.run(
            [sys.executable, "-c", MEMORY, str(folder)],
            env=dict(os.environ, PYTHONPATH=str(code)),
            cwd=elsewhere,
            check=True,
            capture_output=True,
            text=True,
        )
    return dict(json.loads(done.stdout.splitlines()[-1]))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--run", type=Path, help="a run's folder")
    parser.add_argument("--sd", type=int, help="images of a synthetic SD-512 run")
    parser.add_argument("--memory", help="rows of the repeated runs whose peak memory is measured: N,M,...")
    parser.add_argument("--code", type=Path, help="the checkout whose daam_widget --memory measures")
    args = parser.parse_args()
    if args.memory:
        for rows in (int(n) for n in args.memory.split(",")):
            with tempfile.TemporaryDirectory() as folder:
                measured = memory(repeated_run(args.run, Path(folder), rows), args.code)
                print(json.dumps({"rows": rows, "code": str(args.code or "this checkout"), **measured}))
        return
    if args.run:
        print(json.dumps({"run": str(args.run), **rate(args.run)}))
    if args.sd:
        with tempfile.TemporaryDirectory() as folder:
            print(
                json.dumps(
                    {
                        "run": f"synthetic SD-512, {args.sd} images",
                        **rate(synthetic_sd_run(Path(folder), args.sd)),
                    }
                )
            )


if __name__ == "__main__":
    main()
