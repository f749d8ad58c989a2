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
from dataclasses import MISSING, asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from ._files import write_text_atomically
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


@dataclass(frozen=True, kw_only=True)
class IndexRow:
    """One image of a run as ``index.jsonl`` lists it: its prompt's place in the prompt file (``index`` from
    0 among the good lines, ``line`` the file's line number), its number among the prompt's images, what it
    was generated from, and its files relative to the run's folder."""

    index: int
    line: int | None = None
    image: int
    prompt: str
    seed: int | None = None
    negative_prompt: str | None = None
    source: dict[str, Any] | None = None
    """Where the prompt came from in a dataset file (a COCO caption's ``image_id`` and ``id``)."""
    kwargs: dict[str, Any] = field(default_factory=dict)
    """The pipeline call's keywords."""
    file: str
    settings: dict[str, Any] = field(default_factory=dict)
    """The run's settings (``run.json``)."""
    steps_file: str | None = None
    """The image's ``StepMaps`` (``--per-step``)."""

    @property
    def label(self) -> str:
        """Where the image comes from, for people: ``line 12, image 0``."""
        return f"line {self.line if self.line is not None else self.index + 1}, image {self.image}"

    def to_json(self) -> str:
        """One line of ``index.jsonl`` (fields that are ``None`` left out; a value JSON cannot hold, as its
        text)."""
        values = {f.name: getattr(self, f.name) for f in fields(self)}  # in the fields' order
        return json.dumps({k: v for k, v in values.items() if v is not None}, default=str)

    @classmethod
    def from_json(cls, text: str) -> IndexRow:
        """A row from a line of ``index.jsonl`` (keys this version does not know are ignored)."""
        data = json.loads(text)
        known = fields(cls)
        needed = [f.name for f in known if f.default is MISSING and f.default_factory is MISSING]
        if not isinstance(data, dict) or not set(needed) <= data.keys():
            raise ValueError(
                f"not an index row ({', '.join(needed[:-1])} and {needed[-1]} are needed): {text[:200]!r}"
            )
        return cls(**{f.name: data[f.name] for f in known if f.name in data})


@dataclass(frozen=True)
class PlannedImage:
    """One image of a run: its prompt's line, its seed, its number among the prompt's images, the call's
    keywords and its maps file's name."""

    line: PromptLine
    seed: int
    image: int
    kwargs: dict[str, Any]
    name: str

    def row(self, settings: dict[str, Any], steps: bool) -> IndexRow:
        """Its index row (``steps``: its step maps were written beside it)."""
        line = self.line
        return IndexRow(
            index=line.index,
            line=line.line,
            image=self.image,
            prompt=line.prompt,
            seed=self.seed,
            negative_prompt=line.negative_prompt,
            source=line.source or None,
            kwargs=self.kwargs,
            file=f"{MAPS}/{self.name}",
            settings=settings,
            steps_file=f"{MAPS}/{self.steps_name}" if steps else None,
        )

    @property
    def steps_name(self) -> str:
        return self.name.replace(SUFFIX, STEPS_SUFFIX)


def index_rows(out_dir: Path, planned: Sequence[PlannedImage], settings: dict) -> list[IndexRow]:
    """The index rows of the planned images done (their files exist), in prompt order."""
    present = set(os.listdir(out_dir / MAPS)) if (out_dir / MAPS).is_dir() else set()
    return [p.row(settings, p.steps_name in present) for p in planned if p.name in present]


def append_row(out_dir: Path, rank: int, row: IndexRow) -> None:
    """Add an image just written to the index while the run goes (under the folder's lock)."""
    with locked(out_dir):
        (out_dir / PARTS).mkdir(exist_ok=True)
        with open(out_dir / PARTS / f"{rank}.jsonl", "a", encoding="utf-8") as f:
            f.write(row.to_json() + "\n")


def write_index(out_dir: Path, rows: Sequence[IndexRow]) -> None:
    """Write the whole index and clear the parts it holds (the caller holds the folder's lock)."""
    text = "".join(row.to_json() + "\n" for row in rows)
    write_text_atomically(out_dir / INDEX, text)
    for part in (out_dir / PARTS).glob("*.jsonl") if (out_dir / PARTS).is_dir() else ():
        part.unlink()


def read_index(out_dir: str | os.PathLike) -> list[IndexRow]:
    """The rows of ``DIR/index.jsonl`` and of the parts a running (or killed) run has appended, once each,
    in prompt order."""
    rows: dict[tuple[int, int, str], IndexRow] = {}
    for row in _rows_in(_index_sources(Path(out_dir))):
        rows.setdefault((row.index, row.image, row.file), row)
    return sorted(rows.values(), key=lambda r: (r.index, r.image))


def indexed_files(out_dir: str | os.PathLike) -> list[str]:
    """The maps files of ``read_index``'s rows, in its order, without holding the rows: what a reader of a
    100,000-image run keeps in memory."""
    keys = dict.fromkeys((row.index, row.image, row.file) for row in _rows_in(_index_sources(Path(out_dir))))
    return [file for _, _, file in sorted(keys, key=lambda key: key[:2])]


def _index_sources(folder: Path) -> list[Path]:
    sources = [folder / INDEX] if (folder / INDEX).exists() else []
    sources += sorted((folder / PARTS).glob("*.jsonl")) if (folder / PARTS).is_dir() else []
    if not sources:
        raise FileNotFoundError(
            f"no {INDEX} in {folder}, and no image indexed yet: not a run folder, or a run that has written "
            "no image (daam-widget run PROMPTS --out DIR)"
        )
    return sources


def _rows_in(sources: Sequence[Path]) -> Iterator[IndexRow]:
    for source in sources:
        with open(source, encoding="utf-8") as f:
            for text in f:
                try:
                    yield IndexRow.from_json(text)
                except ValueError:  # the last line of a part whose process was killed while appending it
                    continue


def launcher_rank() -> tuple[int, int]:
    """``(rank, world size)`` from the launcher's environment (``RANK``, ``WORLD_SIZE``); ``(0, 1)`` alone."""
    try:
        rank, world = int(os.environ.get("RANK", "0")), int(os.environ.get("WORLD_SIZE", "1"))
    except ValueError:
        raise ValueError(
            f"RANK and WORLD_SIZE must be whole numbers (as torchrun and accelerate launch set them), not "
            f"{os.environ.get('RANK')!r} and {os.environ.get('WORLD_SIZE')!r}"
        ) from None
    if not 0 <= rank < world:
        raise ValueError(f"RANK={rank} must lie in 0..WORLD_SIZE-1 (WORLD_SIZE={world})")
    return rank, world


def launch_id(world: int) -> str:
    """What the processes of one launch share, and another launch's do not: the host and the launcher's
    process (torchrun's or accelerate's, the parent of each of its ``world`` processes), or this process."""
    return f"{socket.gethostname()}:{os.getppid() if world > 1 else os.getpid()}"


class FolderInUse(RuntimeError):
    """Another launch holds the run folder."""


@contextlib.contextmanager
def holding_rank(out_dir: Path, rank: int, world: int) -> Iterator[None]:
    """Hold rank ``rank``'s lock of the folder while the run goes; refuse at once if another launch holds
    any rank of it (the processes of one torchrun or accelerate launch share their parent)."""
    launch = launch_id(world)
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
