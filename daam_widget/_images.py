"""Images as PNG bytes and back: what the widget sends and what files keep (lossless, compressed); a
video's frames as JPEG for the widget."""

from __future__ import annotations

import io

import numpy as np


def png(image: np.ndarray | None, longer_side: int | None = None) -> bytes:
    """PNG bytes of an ``(H, W, 3)`` uint8 image (resized to ``longer_side`` if given); empty for None."""
    if image is None:
        return b""
    from PIL import Image

    picture = Image.fromarray(np.asarray(image, dtype=np.uint8))
    if longer_side is not None:
        scale = longer_side / max(picture.size)
        picture = picture.resize(
            (max(1, round(picture.width * scale)), max(1, round(picture.height * scale)))
        )
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG")
    return buffer.getvalue()


def jpeg(image: np.ndarray, quality: int = 85) -> bytes:
    """JPEG bytes of an ``(H, W, 3)`` uint8 image: a video's frames, where PNG would be ten times larger."""
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(np.asarray(image, dtype=np.uint8)).save(buffer, format="JPEG", quality=quality)
    return buffer.getvalue()


def from_png(data: bytes) -> np.ndarray:
    """The ``(H, W, 3)`` uint8 pixels of PNG bytes."""
    from PIL import Image

    with Image.open(io.BytesIO(data)) as picture:
        return np.asarray(picture.convert("RGB"), dtype=np.uint8)
