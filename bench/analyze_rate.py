"""How fast ``analyze`` reads a run: images a second of ``analyze_run`` (in one process, after its imports),
on a run folder you made, or on a synthetic run of SD-512-shaped maps files (sums at the 64, 32, 16 and 8
grids as a trace writes them, 12 token positions, a noise image): the same file copied ``--sd`` times.

python bench/analyze_rate.py --run artifacts/runs/toy
python bench/analyze_rate.py --sd 50
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from pathlib import Path

from bench.run_throughput import sd_sized_maps
from daam_widget._run_files import write_index
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
        rows.append({"index": k, "image": 0, "prompt": maps.prompt, "file": f"maps/{k}.safetensors"})
    write_index(folder, rows)
    return folder


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--run", type=Path, help="a run's folder")
    parser.add_argument("--sd", type=int, help="images of a synthetic SD-512 run")
    args = parser.parse_args()
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
