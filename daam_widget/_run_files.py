"""The files of a dataset run, and how they are written so that a killed run leaves nothing half-written.

``DIR/run.json`` holds the run's settings (a rerun with other settings is refused); ``DIR/maps/`` one
``HeatMaps`` file per image, named ``{k:06d}-{j:02d}-{spec}.safetensors`` from the prompt's line index
``k``, the image ``j`` and a hash of what the image depends on (prompt, seed, negative prompt, pipeline
keywords, images per prompt), so that any number of processes names an image the same way and an edited
line is generated again; ``DIR/index.jsonl`` lists the images done, in prompt order.

Every file is written under a temporary name in its own folder (``.NAME.tmp``, one per file, so only the
process that owns an image ever writes it), flushed to disk, then renamed: a file under its real name is
whole. The index is rebuilt from the files present, under an exclusive lock, by every process as it ends:
the last one to end sees every process's files.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from ._files import write_atomically
from ._prompts import PromptLine

MAPS = "maps"
INDEX = "index.jsonl"
SETTINGS = "run.json"
SUFFIX = ".safetensors"
STEPS_SUFFIX = ".steps.safetensors"


def image_spec(line: PromptLine, seed: int, image: int, images_per_prompt: int) -> dict[str, Any]:
    """What image ``image`` of a prompt depends on, besides the run's settings."""
    return {
        "prompt": line.prompt,
        "seed": seed,
        "negative_prompt": line.negative_prompt,
        "kwargs": line.kwargs,
        "image": image,
        "images_per_prompt": images_per_prompt,
    }


def image_name(index: int, image: int, spec: dict[str, Any]) -> str:
    """The maps file name of image ``image`` of prompt ``index`` (its line, from 0)."""
    digest = hashlib.sha256(json.dumps(spec, sort_keys=True, default=str).encode()).hexdigest()[:8]
    return f"{index:06d}-{image:02d}-{digest}{SUFFIX}"


def write_text_atomically(path: Path, text: str) -> None:
    write_atomically(path, lambda p: p.write_text(text, encoding="utf-8"))


def check_settings(out_dir: Path, settings: dict[str, Any]) -> None:
    """Record the run's settings in ``run.json``, or refuse if the folder holds a run with other ones."""
    path = out_dir / SETTINGS
    wanted = json.loads(json.dumps(settings, default=str))
    if path.exists():
        held = json.loads(path.read_text(encoding="utf-8"))
        if held != wanted:
            differ = sorted(k for k in {*held, *wanted} if held.get(k) != wanted.get(k))
            changes = "; ".join(f"{k}: {held.get(k)!r} there, {wanted.get(k)!r} now" for k in differ)
            raise ValueError(
                f"{out_dir} holds a run with other settings ({changes}): rerun with the same settings to "
                "resume it, or choose another --out"
            )
        return
    write_text_atomically(path, json.dumps(wanted, indent=1) + "\n")


@contextlib.contextmanager
def locked(out_dir: Path) -> Iterator[None]:
    """An exclusive lock on the run folder (``flock``; on a shared filesystem it needs lock support)."""
    with open(out_dir / ".index.lock", "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def index_rows(
    out_dir: Path, planned: Sequence[tuple[PromptLine, int, int, dict[str, Any], str]], settings: dict
) -> list[dict[str, Any]]:
    """The index rows of the images done: ``planned`` is every (line, seed, image, call keywords, file name)
    of the run in prompt order; an image is done when its file exists."""
    present = set(os.listdir(out_dir / MAPS)) if (out_dir / MAPS).is_dir() else set()
    rows = []
    for line, seed, image, kwargs, name in planned:
        if name not in present:
            continue
        row = {"index": line.index, "line": line.line, "image": image, "prompt": line.prompt, "seed": seed}
        if line.negative_prompt is not None:
            row["negative_prompt"] = line.negative_prompt
        row |= {"kwargs": kwargs, "file": f"{MAPS}/{name}", "settings": settings}
        steps_name = name.replace(SUFFIX, STEPS_SUFFIX)
        if steps_name in present:
            row["steps_file"] = f"{MAPS}/{steps_name}"
        rows.append(row)
    return rows


def write_index(out_dir: Path, rows: Sequence[dict[str, Any]]) -> None:
    text = "".join(json.dumps(row, default=str) + "\n" for row in rows)
    write_text_atomically(out_dir / INDEX, text)


def read_index(out_dir: str | os.PathLike) -> list[dict[str, Any]]:
    """The rows of ``DIR/index.jsonl``, in prompt order."""
    path = Path(out_dir) / INDEX
    if not path.exists():
        raise FileNotFoundError(
            f"no {INDEX} in {out_dir}: not a finished run (python -m daam_widget.run PROMPTS --out DIR "
            "writes it when its last process ends; rerun the same command to finish an interrupted run)"
        )
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
