"""The files of a dataset run, and how they are written so that a killed run leaves nothing half-written.

``DIR/run.json`` holds the run's settings (once an image exists, a rerun with other settings is refused);
``DIR/maps/`` one ``HeatMaps`` file per image, named ``{k:06d}-{j:02d}-{spec}.safetensors`` from the prompt's
line index ``k``, the image ``j`` and a hash of what the image depends on (prompt, seed, negative prompt,
pipeline keywords, images per prompt), so that any number of processes names an image the same way and an
edited line is generated again; ``DIR/index.jsonl`` lists the images done, in prompt order.

Every file is written under a temporary name of its own, flushed to disk, then renamed: a file under its
real name is whole. The index is current while a run goes: each process appends an image's row to
``DIR/index.parts/{rank}.jsonl`` once its file is written, and readers merge those with ``index.jsonl``;
each process, as it ends, rebuilds ``index.jsonl`` from the files present and clears the parts (under an
exclusive lock, which the appends take too). A process holds a lock on its rank for as long as it runs, so
that a second launch on the same folder is refused at once; the kernel releases it when a process dies.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import socket
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from ._files import write_atomically
from ._prompts import PromptLine

MAPS = "maps"
INDEX = "index.jsonl"
PARTS = "index.parts"
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


@dataclass(frozen=True)
class RunSettings:
    """What every image of a run shares, as ``run.json`` keeps it (and every index row repeats it)."""

    model: str
    pipeline: str
    dtype: str
    call: dict[str, Any]
    images_per_prompt: int
    layers: list[str] | str
    softmax_over: str
    per_step: bool

    def to_json(self) -> dict[str, Any]:
        """The settings as JSON values (a keyword's value that JSON cannot hold, as its text)."""
        return dict(json.loads(json.dumps(asdict(self), default=str)))

    def bind(self, out_dir: Path) -> None:
        """Record these settings in ``run.json``; once the folder holds an image, refuse other settings
        (before it does, a failed first try leaves nothing to protect)."""
        path = out_dir / SETTINGS
        wanted = self.to_json()
        has_images = (
            any(name.endswith(SUFFIX) for name in os.listdir(out_dir / MAPS))
            if (out_dir / MAPS).is_dir()
            else False
        )
        if path.exists() and has_images:
            held = json.loads(path.read_text(encoding="utf-8"))
            if held != wanted:
                differ = sorted(k for k in {*held, *wanted} if held.get(k) != wanted.get(k))
                changes = "; ".join(f"{k}: {held.get(k)!r} there, {wanted.get(k)!r} now" for k in differ)
                raise ValueError(
                    f"{out_dir} holds a run with other settings ({changes}): rerun with the same settings "
                    f"to resume it, choose another --out, or delete {path} and {out_dir / MAPS} to start "
                    "afresh"
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


@dataclass(frozen=True)
class PlannedImage:
    """One image of a run: its prompt's line, its seed, its number among the prompt's images, the call's
    keywords and its maps file's name."""

    line: PromptLine
    seed: int
    image: int
    kwargs: dict[str, Any]
    name: str

    def row(self, settings: dict[str, Any], steps: bool) -> dict[str, Any]:
        """Its index row (``steps``: its step maps were written beside it)."""
        line = self.line
        row = {
            "index": line.index,
            "line": line.line,
            "image": self.image,
            "prompt": line.prompt,
            "seed": self.seed,
        }
        if line.negative_prompt is not None:
            row["negative_prompt"] = line.negative_prompt
        if line.source:
            row["source"] = line.source
        row |= {"kwargs": self.kwargs, "file": f"{MAPS}/{self.name}", "settings": settings}
        if steps:
            row["steps_file"] = f"{MAPS}/{self.steps_name}"
        return row

    @property
    def steps_name(self) -> str:
        return self.name.replace(SUFFIX, STEPS_SUFFIX)


def index_rows(out_dir: Path, planned: Sequence[PlannedImage], settings: dict) -> list[dict[str, Any]]:
    """The index rows of the planned images done (their files exist), in prompt order."""
    present = set(os.listdir(out_dir / MAPS)) if (out_dir / MAPS).is_dir() else set()
    return [p.row(settings, p.steps_name in present) for p in planned if p.name in present]


def append_row(out_dir: Path, rank: int, row: dict[str, Any]) -> None:
    """Add an image just written to the index while the run goes (under the folder's lock)."""
    with locked(out_dir):
        (out_dir / PARTS).mkdir(exist_ok=True)
        with open(out_dir / PARTS / f"{rank}.jsonl", "a", encoding="utf-8") as f:
            f.write(json.dumps(row, default=str) + "\n")


def write_index(out_dir: Path, rows: Sequence[dict[str, Any]]) -> None:
    """Write the whole index and clear the parts it holds (the caller holds the folder's lock)."""
    text = "".join(json.dumps(row, default=str) + "\n" for row in rows)
    write_text_atomically(out_dir / INDEX, text)
    for part in (out_dir / PARTS).glob("*.jsonl") if (out_dir / PARTS).is_dir() else ():
        part.unlink()


def read_index(out_dir: str | os.PathLike) -> list[dict[str, Any]]:
    """The rows of ``DIR/index.jsonl`` and of the parts a running (or killed) run has appended, once each,
    in prompt order."""
    folder = Path(out_dir)
    sources = [folder / INDEX] if (folder / INDEX).exists() else []
    sources += sorted((folder / PARTS).glob("*.jsonl")) if (folder / PARTS).is_dir() else []
    if not sources:
        raise FileNotFoundError(
            f"no {INDEX} in {out_dir}, and no image indexed yet: not a run folder, or a run that has written "
            "no image (daam-widget run PROMPTS --out DIR)"
        )
    rows: dict[tuple[int, int, str], dict[str, Any]] = {}
    for source in sources:
        for text in source.read_text(encoding="utf-8").splitlines():
            try:
                row = json.loads(text)
            except ValueError:  # the last line of a part whose process was killed while appending it
                continue
            rows.setdefault((row["index"], row["image"], row["file"]), row)
    return sorted(rows.values(), key=lambda r: (r["index"], r["image"]))


class FolderInUse(RuntimeError):
    """Another launch holds the run folder."""


@contextlib.contextmanager
def holding_rank(out_dir: Path, rank: int, world: int) -> Iterator[None]:
    """Hold rank ``rank``'s lock of the folder while the run goes; refuse at once if another launch holds
    any rank of it (the processes of one torchrun or accelerate launch share their parent)."""
    launch = f"{socket.gethostname()}:{os.getppid() if world > 1 else os.getpid()}"
    with locked(out_dir):
        for path in sorted(out_dir.glob(".rank-*.lock")):
            holder = _holder(path)
            if holder is not None and (holder.get("launch") != launch or path.name == f".rank-{rank}.lock"):
                raise FolderInUse(
                    f"{out_dir} is in use by another run: process {holder.get('pid')} on "
                    f"{holder.get('launch', '?').split(':')[0]} (rank {holder.get('rank')} of "
                    f"{holder.get('world')}, started {holder.get('started')}); wait for it to end or stop "
                    "it, or choose another --out"
                )
        mine = open(out_dir / f".rank-{rank}.lock", "a+", encoding="utf-8")
        fcntl.flock(mine, fcntl.LOCK_EX | fcntl.LOCK_NB)
        mine.truncate(0)
        mine.write(
            json.dumps(
                {
                    "pid": os.getpid(),
                    "launch": launch,
                    "rank": rank,
                    "world": world,
                    "started": time.strftime("%Y-%m-%d %H:%M:%S"),
                }
            )
        )
        mine.flush()
    try:
        yield
    finally:
        fcntl.flock(mine, fcntl.LOCK_UN)
        mine.close()


def _holder(path: Path) -> dict[str, Any] | None:
    """Who holds a rank's lock (what it wrote), or None when nobody does."""
    with open(path, "a+", encoding="utf-8") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            f.seek(0)
            try:
                return dict(json.loads(f.read() or "{}"))
            except ValueError:
                return {}
        fcntl.flock(f, fcntl.LOCK_UN)
        return None
