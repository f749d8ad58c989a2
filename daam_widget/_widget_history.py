"""The widget's history strip: each generation as the browser draws it, kept so that an earlier one can
be shown beside the current one, over the same steps where both have them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Entry:
    """One generation: what its traits were when it was shown (maps of all steps, and every step's)."""

    prompt: str
    seed: int
    words: list[str]
    image: bytes
    thumbnail: bytes
    maps: bytes
    map_size: tuple[int, int]
    peaks: list[float]
    num_steps: int
    step_maps: bytes
    step_scales: bytes
    step_grid: tuple[int, int]

    def compared(self) -> dict[str, Any]:
        """The widget's ``other*`` traits that show this entry beside the current generation."""
        return {
            "other": {
                "prompt": self.prompt,
                "seed": self.seed,
                "words": self.words,
                "map_size": list(self.map_size),
                "peaks": self.peaks,
                "num_steps": self.num_steps,
                "step_grid": list(self.step_grid),
            },
            "other_image": self.image,
            "other_maps": self.maps,
            "other_step_maps": self.step_maps,
            "other_step_scales": self.step_scales,
        }


NOT_COMPARED: dict[str, Any] = {
    "other": {},
    "other_image": b"",
    "other_maps": b"",
    "other_step_maps": b"",
    "other_step_scales": b"",
}


class History:
    """The last ``limit`` generations, oldest first."""

    def __init__(self) -> None:
        self.entries: list[Entry] = []

    def __len__(self) -> int:
        return len(self.entries)

    def __getitem__(self, index: int) -> Entry:
        return self.entries[index]

    def add(self, entry: Entry, limit: int) -> None:
        self.entries = [*self.entries, entry][-limit:]

    def strip(self) -> dict[str, Any]:
        """The ``history`` and ``history_thumbnails`` traits: every entry's summary, thumbnails concatenated
        (each summary says where its PNG is: ``[offset, length]``)."""
        rows, at = [], 0
        for e in self.entries:
            rows.append(
                {"prompt": e.prompt, "seed": e.seed, "words": e.words, "thumbnail": [at, len(e.thumbnail)]}
            )
            at += len(e.thumbnail)
        return {"history": rows, "history_thumbnails": b"".join(e.thumbnail for e in self.entries)}
