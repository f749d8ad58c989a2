"""``daam-widget gallery DIR``: a run's images as one static HTML page (thumbnails, prompts, files), to
browse a run without a notebook; ``DaamGallery`` is the interactive one."""

from __future__ import annotations

import argparse
import base64
import html
import sys
from pathlib import Path

from ._files import read_image
from ._images import png
from ._run_files import read_index


def write_page(out_dir: Path, target: Path, limit: int, size: int = 128) -> tuple[int, list[str]]:
    """The page of the first ``limit`` images; returns how many it shows and the files it could not read."""
    rows = read_index(out_dir)[:limit]
    figures, unreadable = [], []
    for row in rows:
        try:
            image = read_image(out_dir / row.file)
        except (OSError, ValueError) as error:
            unreadable.append(f"{row.file} ({error})")
            continue
        source = (
            "data:image/png;base64," + base64.b64encode(png(image, size)).decode()
            if image is not None
            else ""
        )
        prompt = html.escape(row.prompt)
        figures.append(
            f'<figure><img src="{source}" alt="{prompt}" width="{size}"><figcaption>{prompt}<br>'
            f"<small>{row.label}: "
            f"{html.escape(row.file)}</small>"
            "</figcaption></figure>"
        )
    notes = "".join(f"<p>could not read {html.escape(u)}</p>" for u in unreadable)
    target.write_text(
        _PAGE.format(
            title=html.escape(str(out_dir)), count=len(figures), notes=notes, figures="\n".join(figures)
        ),
        encoding="utf-8",
    )
    return len(figures), unreadable


_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>DAAM run {title}</title>
<style>body {{ font: 13px system-ui, sans-serif; }} main {{ display: flex; flex-wrap: wrap; gap: 10px; }}
figure {{ margin: 0; width: 160px; }} figcaption {{ font-size: 12px; overflow-wrap: anywhere; }}
</style></head>
<body><h1>{title}</h1><p>{count} images</p>{notes}<main>
{figures}
</main></body></html>
"""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="daam-widget gallery", description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path, help="a run's folder (daam-widget run ... --out DIR)")
    parser.add_argument("--out", type=Path, help="the page (default: DIR/gallery.html)")
    parser.add_argument("--limit", type=int, default=500, help="images on the page (default: the first 500)")
    args = parser.parse_args(argv)
    target = args.out or args.run / "gallery.html"
    try:
        shown, unreadable = write_page(args.run, target, args.limit)
    except (FileNotFoundError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(
        f"{target}: {shown} images" + (f"; {len(unreadable)} files could not be read" if unreadable else "")
    )
    return 0
