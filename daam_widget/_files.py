"""The heat-map file: one safetensors file, no pickle, readable from any language with a safetensors reader.

Tensors:

- ``maps``: float32 ``(positions, H, W)``, the Eq. 6 soft map of each used token position;
- ``positions``: int64 ``(positions,)``, the encoder-window position of each map (``<start>`` is 0);
- ``image``: uint8 ``(H, W, 3)``, the generated image (absent if none was captured).

Metadata (strings): ``format`` (``"daam-widget/1"``), ``layout`` (JSON: the prompt text, window length,
``<end>`` position, and spans ``[text, start, end, token positions, is_word, available]``) and
``settings`` (JSON: the generation and trace settings).

``save_step_maps`` writes an image's ``StepMaps`` (the per-step record) the same way, beside its maps.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from safetensors import safe_open
from safetensors.numpy import load_file, save_file

from ._heat_maps import HeatMaps
from ._step_maps import StepMaps
from ._words import PromptLayout

FORMAT = "daam-widget/1"


def write_atomically(path: str | os.PathLike, write: Callable[[Path], object]) -> None:
    """``write(temporary)`` beside ``path``, flushed to disk, then renamed to ``path``: readers (and a
    rerun after a crash) see the whole file or none. The file gets the permissions of an ordinary one
    (safetensors creates its files private)."""
    target = Path(path)
    temporary = target.with_name(f".{target.name}.tmp")
    write(temporary)
    with open(temporary, "rb+") as f:
        os.fsync(f.fileno())
    os.chmod(temporary, 0o666 & ~_UMASK)
    os.replace(temporary, target)


_UMASK = os.umask(0)
os.umask(_UMASK)


def save_heat_maps(maps: HeatMaps, path: str | os.PathLike) -> None:
    tensors: dict[str, np.ndarray] = {
        "maps": maps.maps.numpy().astype(np.float32),
        "positions": np.asarray(maps.positions, dtype=np.int64),
    }
    if maps.image is not None:
        tensors["image"] = np.ascontiguousarray(maps.image, dtype=np.uint8)
    metadata = {
        "format": FORMAT,
        "layout": json.dumps(maps.layout.to_json()),
        "settings": json.dumps(maps.settings, default=str),
    }
    _save(path, tensors, metadata)


def load_heat_maps(path: str | os.PathLike) -> HeatMaps:
    metadata = _metadata(path, FORMAT, "heat-map")
    tensors = load_file(os.fspath(path))
    return HeatMaps(
        torch.from_numpy(tensors["maps"]),
        tensors["positions"].tolist(),
        PromptLayout.from_json(json.loads(metadata["layout"])),
        image=tensors.get("image"),
        settings=json.loads(metadata["settings"]),
    )


STEPS_FORMAT = "daam-widget-steps/1"


def save_step_maps(steps: StepMaps, path: str | os.PathLike) -> None:
    """``StepMaps`` (the per-step record of one image): tensor ``grid/{h}x{w}`` float32 ``(steps, words, h,
    w)`` per resolution; metadata ``format``, ``layout`` (as above) and ``image_size`` (JSON ``[H, W]``)."""
    tensors = {f"grid/{h}x{w}": m.numpy().astype(np.float32) for (h, w), m in steps.maps.items()}
    metadata = {
        "format": STEPS_FORMAT,
        "layout": json.dumps(steps.layout.to_json()),
        "image_size": json.dumps(list(steps.image_size)),
    }
    _save(path, tensors, metadata)


def load_step_maps(path: str | os.PathLike) -> StepMaps:
    metadata = _metadata(path, STEPS_FORMAT, "step-maps")
    maps = {}
    for name, array in load_file(os.fspath(path)).items():
        h, w = (int(x) for x in name.removeprefix("grid/").split("x"))
        maps[(h, w)] = torch.from_numpy(array)
    h, w = json.loads(metadata["image_size"])
    return StepMaps(PromptLayout.from_json(json.loads(metadata["layout"])), maps, (int(h), int(w)))


def _save(path: str | os.PathLike, tensors: dict[str, np.ndarray], metadata: dict[str, str]) -> None:
    write_atomically(path, lambda temporary: save_file(tensors, os.fspath(temporary), metadata=metadata))


def _metadata(path: str | os.PathLike, expected: str, kind: str) -> dict[str, str]:
    """The file's metadata, once its ``format`` is ``expected`` (else a ValueError naming the kind)."""
    with safe_open(os.fspath(path), framework="numpy") as f:
        metadata = f.metadata() or {}
    if metadata.get("format") != expected:
        raise ValueError(f"{os.fspath(path)!r} is not a daam-widget {kind} file (format {expected!r})")
    return metadata
