"""The heat-map file: one safetensors file, no pickle, readable from any language with a safetensors reader.

Format ``daam-widget/2`` (written now) keeps what Eq. 6 is made of rather than its result:

- ``grid/{h}x{w}``: float16 ``(positions, h, w)``, each resolution's sum over layers, heads and steps at
  its own grid, each map divided by its largest magnitude, which is ``scale/{h}x{w}`` (float32
  ``(positions,)``). Float16 rather than bfloat16: 11 significant bits against 8 (a relative error of at most
  4.9e-4 of the map's peak against 3.9e-3), and every safetensors reader decodes it (numpy too); the scale
  per map keeps large sums (Flux's 57 layers x 24 heads x 50 steps) inside float16's range;
- ``positions``: int64 ``(positions,)``, the encoder-window position of each map (``<start>`` is 0);
- ``image_png``: uint8, the generated image as PNG bytes (absent if none was captured).

A video's maps (``VideoHeatMaps``) have grids ``grid/{h}x{w}`` of ``(positions, latent frames, h, w)``,
their scale per (position, frame), the decoded frames as ``frame_png/{j}`` (PNG bytes each, ``j`` from
0), and the metadata ``temporal_factor`` (JSON int: decoded frames per latent frame after the first).

Metadata (strings): ``format``, ``layout`` (JSON: the prompt text, window length, ``<end>`` position, and
spans ``[text, start, end, token positions, is_word, available]``), ``settings`` (JSON: the generation and
trace settings), ``size`` (JSON ``[H, W]``: the size the grids are upsampled to, bicubically, as Eq. 6
does) and ``output_size`` (JSON ``[H, W]`` or null: the size a pipeline then resized and cropped to).
Loading rebuilds the maps at the image's size. Maps with no grids (made by hand) are kept as ``maps``,
float32 ``(positions, H, W)``, as ``daam-widget/1`` kept every file (with the image raw, as ``image``);
files of that format load as before.

``save_step_maps`` writes an image's ``StepMaps`` (the per-step record) the same way, beside its maps.
"""

from __future__ import annotations

import contextlib
import glob
import json
import os
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import safe_open
from safetensors.numpy import load_file, save_file

from ._grid_sums import GridSums
from ._heat_maps import HeatMaps
from ._images import from_png, png
from ._step_maps import StepMaps
from ._video_maps import VideoHeatMaps
from ._words import PromptLayout

FORMAT = "daam-widget/2"
FORMATS = ("daam-widget/1", FORMAT)


def write_atomically(path: str | os.PathLike, write: Callable[[Path], object]) -> None:
    """``write(temporary)`` beside ``path``, flushed to disk, then renamed to ``path``: readers (and a
    rerun after a crash) see the whole file or none (``atomic_path`` for a file written bit by bit)."""
    with atomic_path(path) as temporary:
        write(temporary)


def write_text_atomically(path: str | os.PathLike, text: str) -> None:
    """``text`` in UTF-8 to ``path``, as ``write_atomically`` writes."""
    write_atomically(path, lambda temporary: temporary.write_text(text, encoding="utf-8"))


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """A temporary name beside ``path`` to write, flushed to disk and renamed to ``path`` when the block
    ends normally. The temporary name is the process's own, so two writers never write into one file; what a
    killed writer left of the same file is removed once the file is whole. The file gets the permissions of
    an ordinary one (safetensors creates its files private)."""
    target = Path(path)
    temporary = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    yield temporary
    with open(temporary, "rb+") as f:
        os.fsync(f.fileno())
    os.chmod(temporary, 0o666 & ~_UMASK)
    os.replace(temporary, target)
    for stale in target.parent.glob(f".{glob.escape(target.name)}.*.tmp"):
        stale.unlink(missing_ok=True)


_UMASK = os.umask(0)
os.umask(_UMASK)


def save_heat_maps(maps: HeatMaps, path: str | os.PathLike) -> None:
    tensors: dict[str, np.ndarray] = {"positions": np.asarray(maps.positions, dtype=np.int64)}
    metadata = {
        "format": FORMAT,
        "layout": json.dumps(maps.layout.to_json()),
        "settings": json.dumps(maps.settings, default=str),
    }
    if maps.grids is not None:
        for (h, w), sums in maps.grids.grids.items():  # a video's: (positions, frames, h, w)
            tensors[f"grid/{h}x{w}"], tensors[f"scale/{h}x{w}"] = _half(sums, sums.ndim - 2)
        metadata["size"] = json.dumps(list(maps.grids.size))
        metadata["output_size"] = json.dumps(maps.grids.output_size and list(maps.grids.output_size))
    else:
        tensors["maps"] = maps.maps.numpy().astype(np.float32)
    if maps.image is not None:
        tensors["image_png"] = np.frombuffer(png(maps.image), dtype=np.uint8)
    if isinstance(maps, VideoHeatMaps):
        metadata["temporal_factor"] = json.dumps(maps.temporal_factor)
        for j, frame in enumerate(maps.video if maps.video is not None else []):
            tensors[f"frame_png/{j}"] = np.frombuffer(png(frame), dtype=np.uint8)
    _save(path, tensors, metadata)


def load_heat_maps(path: str | os.PathLike) -> HeatMaps:
    metadata = _metadata(path, FORMATS, "heat-map")
    tensors = _tensors(path)
    positions = tensors["positions"].tolist()
    layout = PromptLayout.from_json(_json(metadata, "layout", path))
    settings = _json(metadata, "settings", path)
    if "maps" in tensors:
        return HeatMaps(torch.from_numpy(tensors["maps"]), positions, layout, _image(tensors), settings)
    size = _json(metadata, "size", path)
    output = _json(metadata, "output_size", path)
    grids = GridSums(
        _grids(tensors),
        (int(size[0]), int(size[1])),
        None if output is None else (int(output[0]), int(output[1])),
    )
    if "temporal_factor" in metadata:
        frames = [from_png(tensors[f"frame_png/{j}"].tobytes()) for j in range(_count(tensors, "frame_png/"))]
        video = np.stack(frames) if frames else None
        factor = int(_json(metadata, "temporal_factor", path))
        return VideoHeatMaps(grids, positions, layout, factor, video, settings)
    return HeatMaps(grids.maps(), positions, layout, image=_image(tensors), settings=settings, grids=grids)


def _count(names: Iterable[str], prefix: str) -> int:
    return sum(name.startswith(prefix) for name in names)


def read_image(path: str | os.PathLike) -> np.ndarray | None:
    """The image of a maps file alone (safetensors reads one tensor lazily), a video's middle frame, or
    None."""
    try:
        with safe_open(os.fspath(path), framework="numpy") as f:
            names = set(f.keys())
            frames = _count(names, "frame_png/")
            wanted = ("image_png", "image", f"frame_png/{frames // 2}")
            tensors = {name: f.get_tensor(name) for name in wanted if name in names}
        if frames:
            return from_png(tensors[f"frame_png/{frames // 2}"].tobytes())
        return _image(tensors)
    except (OSError, ValueError):
        raise
    except Exception as error:  # safetensors' and PIL's own errors for a damaged file
        raise ValueError(f"{os.fspath(path)!r} cannot be read: {error}") from None


def _tensors(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """Every tensor of a file whose header was read; a ValueError where its data is cut short."""
    try:
        return load_file(os.fspath(path))
    except Exception as error:  # safetensors raises its own error type for a damaged file
        raise ValueError(f"{os.fspath(path)!r} cannot be read: {error}") from None


def _image(tensors: dict[str, np.ndarray]) -> np.ndarray | None:
    if "image_png" in tensors:
        return from_png(tensors["image_png"].tobytes())
    return tensors.get("image")


def _half(sums: torch.Tensor, dims: int) -> tuple[np.ndarray, np.ndarray]:
    """Maps ``(..., h, w)`` as float16 divided by each map's largest magnitude, and those (float32) for
    the ``dims`` leading dimensions."""
    flat = sums.float().flatten(dims)
    scale = flat.abs().amax(-1).clamp_min(torch.finfo(torch.float32).tiny)
    values = (sums.float() / scale.reshape(*scale.shape, 1, 1)).to(torch.float16)
    return values.numpy(), scale.numpy()


def _grids(tensors: dict[str, np.ndarray]) -> dict[tuple[int, int], torch.Tensor]:
    """Each ``grid/{h}x{w}`` times its ``scale/{h}x{w}`` (per map, or per map and frame of a video), in
    float32, in the file's order."""
    grids = {}
    for name, values in tensors.items():
        if not name.startswith("grid/"):
            continue
        h, w = _grid_of(name)
        scale = torch.from_numpy(tensors[f"scale/{h}x{w}"])
        grids[(h, w)] = torch.from_numpy(values).float() * scale.reshape(*scale.shape, 1, 1)
    return grids


STEPS_FORMAT = "daam-widget-steps/2"
STEPS_FORMATS = ("daam-widget-steps/1", STEPS_FORMAT)


def save_step_maps(steps: StepMaps, path: str | os.PathLike) -> None:
    """``StepMaps`` (the per-step record of one image): per resolution, ``grid/{h}x{w}`` float16 ``(steps,
    words, h, w)``, each (step, word) map divided by its largest magnitude, ``scale/{h}x{w}`` (float32
    ``(steps, words)``; a video's grids and scales have its latent frames after the words); metadata
    ``format``, ``layout`` (as above) and ``image_size`` (JSON ``[H, W]``). ``daam-widget-steps/1`` files
    (float32 ``grid/{h}x{w}``, no scales) load as before."""
    tensors: dict[str, np.ndarray] = {}
    for (h, w), m in steps.maps.items():
        tensors[f"grid/{h}x{w}"], tensors[f"scale/{h}x{w}"] = _half(m, m.dim() - 2)
    metadata = {
        "format": STEPS_FORMAT,
        "layout": json.dumps(steps.layout.to_json()),
        "image_size": json.dumps(list(steps.image_size)),
    }
    _save(path, tensors, metadata)


def load_step_maps(path: str | os.PathLike) -> StepMaps:
    metadata = _metadata(path, STEPS_FORMATS, "step-maps")
    tensors = _tensors(path)
    if metadata["format"] == STEPS_FORMAT:
        maps = _grids(tensors)
    else:
        maps = {_grid_of(name): torch.from_numpy(array) for name, array in tensors.items()}
    h, w = _json(metadata, "image_size", path)
    return StepMaps(PromptLayout.from_json(_json(metadata, "layout", path)), maps, (int(h), int(w)))


def _grid_of(name: str) -> tuple[int, int]:
    """``(h, w)`` of a tensor named ``grid/{h}x{w}``."""
    h, w = name.removeprefix("grid/").split("x")
    return int(h), int(w)


def _save(path: str | os.PathLike, tensors: dict[str, np.ndarray], metadata: dict[str, str]) -> None:
    write_atomically(path, lambda temporary: save_file(tensors, os.fspath(temporary), metadata=metadata))


def _metadata(path: str | os.PathLike, formats: tuple[str, ...], kind: str) -> dict[str, str]:
    """The file's metadata, once its ``format`` is one of ``formats`` (else a ValueError naming the kind)."""
    try:
        with safe_open(os.fspath(path), framework="numpy") as f:
            metadata = f.metadata() or {}
    except Exception as error:  # safetensors raises its own error types for a damaged header
        raise ValueError(f"{os.fspath(path)!r} is not a readable safetensors file: {error}") from None
    if metadata.get("format") not in formats:
        raise ValueError(
            f"{os.fspath(path)!r} is not a daam-widget {kind} file (format "
            f"{' or '.join(map(repr, formats))}; it says {metadata.get('format')!r})"
        )
    return metadata


def _json(metadata: dict[str, str], key: str, path: str | os.PathLike) -> Any:
    """A JSON metadata entry, or a ValueError saying which file and entry are damaged."""
    try:
        return json.loads(metadata[key])
    except (KeyError, ValueError, RecursionError) as error:
        raise ValueError(
            f"{os.fspath(path)!r}: its metadata entry {key!r} is missing or not JSON ({type(error).__name__})"
        ) from None
