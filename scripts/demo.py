"""The main job: generate with the embedded default pipeline under the tracer, write the maps, the overlays
and the widget as one self-contained HTML file.

python scripts/demo.py [--prompt TEXT] [--out DIR]
"""

from __future__ import annotations

import argparse
import pathlib

import matplotlib

matplotlib.use("Agg")

import daam_widget
from daam_widget.plotting import plot_grid
from daam_widget.toy import load_pipeline


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--prompt", default=None)
    parser.add_argument("--out", default="artifacts/demo", type=pathlib.Path)
    parser.add_argument("--seed", default=0, type=int)
    args = parser.parse_args()
    pipe = load_pipeline()
    prompt = args.prompt or "a green star and a yellow triangle"
    args.out.mkdir(parents=True, exist_ok=True)
    widget = daam_widget.DaamWidget(pipe, prompt, seed=args.seed)
    if widget.error:
        raise SystemExit(widget.error)
    maps = widget.heat_maps
    assert maps is not None
    maps.save(args.out / "maps.safetensors")
    plot_grid(maps, tau=0.4).savefig(args.out / "overlay.png", dpi=100)
    widget.save_html(args.out / "widget.html")  # with every step's maps: the scrubber works in the file
    written = ", ".join(str(args.out / name) for name in ("overlay.png", "maps.safetensors", "widget.html"))
    print(f"{maps!r}\nwrote {written}")


if __name__ == "__main__":
    main()
