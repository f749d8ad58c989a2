"""``HeatMaps``: the DAAM maps of one image, addressed by word."""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import replace
from typing import Any, Literal

import numpy as np
import torch

from . import _metrics
from ._grid_sums import GridSums
from ._words import STOP_WORDS, PromptLayout, Span, StreamKeys

Key = str | int | tuple[str, int]
"""A word, an index into ``HeatMaps.words`` (``2``), or a repeated word's occurrence (``("a", 1)``)."""

Normalize = Literal["none", "max", "sum"]


class HeatMaps:
    """The Eq. 6 soft maps of one image at the image's size, with the prompt's words.

    ``maps`` is ``(positions, H, W)`` float32: one map per used token position (``<start>``, the prompt's
    tokens, ``<end>``; padding is dropped). A word's map is the sum of its sub-word tokens' maps: the
    attention mass the word received. Values are the raw sums over layers, heads and steps unless a
    ``normalize`` choice says otherwise. ``grids``, where known (maps from a trace or a compact file), are
    the sums at each resolution's own grid the maps are made of: what ``save`` stores.
    """

    def __init__(
        self,
        maps: torch.Tensor,
        positions: Sequence[int],
        layout: PromptLayout,
        image: np.ndarray | None = None,
        settings: dict[str, Any] | None = None,
        grids: GridSums | None = None,
    ) -> None:
        if maps.ndim != 3 or maps.shape[0] != len(positions):
            raise ValueError(
                f"maps must be (positions, H, W) with {len(positions)} positions, not {tuple(maps.shape)}"
            )
        self.maps = maps.float()
        self.positions = tuple(int(p) for p in positions)
        self.layout = layout
        self.image = image
        self.settings = dict(settings or {})
        self.grids = grids

    @property
    def prompt(self) -> str:
        return self.layout.text

    @property
    def spans(self) -> tuple[Span, ...]:
        return self.layout.spans

    @property
    def words(self) -> tuple[str, ...]:
        return self.layout.words

    @property
    def shape(self) -> tuple[int, int]:
        return int(self.maps.shape[1]), int(self.maps.shape[2])

    def span(self, key: Key) -> Span:
        """The word a key names (see ``Key``), with a clear error for unknown, repeated or cut-off words."""
        if isinstance(key, bool) or not isinstance(key, (str, int, tuple)):
            raise TypeError(
                f"a word key is a str, an int word index or a (word, occurrence) pair, not {key!r}"
            )
        if isinstance(key, int):
            words = self.words
            if not -len(words) <= key < len(words):
                raise IndexError(f"word index {key} is out of range; the prompt has {len(words)} words")
            key %= len(words)
            text = words[key].casefold()
            return self.layout.find(words[key], [w.casefold() for w in words[:key]].count(text))
        if isinstance(key, tuple):
            return self.layout.find(*key)
        return self.layout.find(key)

    def tensor(self, key: Key) -> torch.Tensor:
        """A word's soft map as a torch tensor ``(H, W)``."""
        return self._span_map(self.span(key))

    def _span_map(self, span: Span) -> torch.Tensor:
        return self._rows_map([self.positions.index(p) for p in span.tokens])

    def _rows_map(self, rows: Sequence[int]) -> torch.Tensor:
        """The sum of the maps of ``rows`` (indices into ``positions``)."""
        return self.maps[list(rows)].sum(0)

    def soft(self, key: Key, normalize: Normalize = "none") -> np.ndarray:
        """A word's soft map ``(H, W)`` float32: raw (``"none"``), scaled to max 1, or to sum 1."""
        return _normalized(self.tensor(key), normalize)

    def __getitem__(self, key: Key) -> np.ndarray:
        return self.soft(key)

    def __contains__(self, key: object) -> bool:
        """Whether ``key`` names a word of the prompt that has a map (a repeated word counts once)."""
        if isinstance(key, str):
            return any(s.text.casefold() == key.casefold() and s.available for s in self.layout.word_spans)
        try:
            self.span(key)  # type: ignore[arg-type]
        except (KeyError, IndexError, TypeError):
            return False
        return True

    def __len__(self) -> int:
        """The number of words, repeats included."""
        return len(self.words)

    def __iter__(self) -> Iterator[str]:
        """The words in prompt order, repeats included (``maps.word(w, k)`` tells repeats apart)."""
        return iter(self.words)

    def word(self, text: str, occurrence: int = 0) -> np.ndarray:
        """The soft map of one occurrence of a word that may be repeated (``occurrence`` from 0)."""
        return self.soft((text, occurrence))

    def token(self, position: int, normalize: Normalize = "none") -> np.ndarray:
        """The soft map of a token position of the encoder window (``<start>`` is 0)."""
        if position not in self.positions:
            raise KeyError(
                f"token position {position} has no map; kept positions are "
                f"{self.positions[0]}..{self.positions[-1]} (padding is dropped)"
            )
        return _normalized(self._rows_map([self.positions.index(position)]), normalize)

    def mask(self, key: Key, tau: float = 0.4) -> np.ndarray:
        """Eq. 7: the word's map thresholded at ``tau`` times its maximum, bool ``(H, W)``. A map with no
        attention at all has an empty mask (with a warning: Eq. 7 would make it the whole image); one with
        a NaN is refused."""
        soft = self.soft(key)
        if not np.isfinite(soft).all():
            raise ValueError(f"the map of {self.span(key).text!r} holds NaN or infinite values: no mask")
        if not soft.any():
            warnings.warn(
                f"the map of {self.span(key).text!r} is zero everywhere (no attention recorded): "
                "its mask is empty",
                RuntimeWarning,
                stacklevel=2,
            )
            return np.zeros(soft.shape, dtype=bool)
        return _metrics.threshold(soft, tau)

    def iou(self, a: Key, b: Key, tau: float = 0.4) -> float:
        """IoU of two words' Eq. 7 masks."""
        return _metrics.iou(self.mask(a, tau), self.mask(b, tau))

    def intersection_over_area(self, a: Key, b: Key, tau: float | None = None) -> float:
        """How much of word ``a``'s map lies in word ``b``'s: soft maps, or masks when ``tau`` is given."""
        if tau is None:
            return _metrics.intersection_over_area(self.soft(a), self.soft(b))
        return _metrics.intersection_over_area(self.mask(a, tau), self.mask(b, tau))

    def renormalized(self, words: Sequence[Key] | None = None) -> HeatMaps:
        """These maps with each pixel's values over ``words`` summing to 1: how each pixel's attention is
        shared among those words alone (GoCA's renormalisation, applied to the Eq. 6 maps). Default: the
        content words, those the model saw that are not stop words (``STOP_WORDS``). The result holds the
        chosen words alone, in prompt order; ``settings["renormalized_over"]`` and ``settings["dropped"]``
        name them and the words left out. A pixel where the chosen words have no attention is 0."""
        spans = self.layout.word_spans
        if words is None:
            chosen = [k for k, s in enumerate(spans) if s.available and s.text.casefold() not in STOP_WORDS]
            if not chosen:
                raise ValueError(
                    "no content word to renormalise over (every word is a stop word or was cut off): "
                    "name the words, renormalized(['dog', 'hat'])"
                )
        else:
            if isinstance(words, str) or not list(words):
                raise ValueError(f"renormalise over at least one word, as a list of words, not {words!r}")
            chosen = []
            for key in words:
                span = self.span(key)
                index = next(k for k, s in enumerate(spans) if s is span)
                if index in chosen:
                    raise ValueError(f"{key!r} is named twice in the words to renormalise over")
                chosen.append(index)
            chosen.sort()
        kept = [spans[k] for k in chosen]
        shares = torch.stack([self._span_map(s) for s in kept])
        total = shares.sum(0)
        shares = torch.where(total > 0, shares / total.clamp(min=torch.finfo(total.dtype).tiny), 0.0)
        layout = PromptLayout(
            self.prompt,
            tuple(replace(s, tokens=(k,)) for k, s in enumerate(kept)),
            (StreamKeys("words", 0, len(kept), None),),
        )
        settings = {
            **self.settings,
            "renormalized_over": [s.text for s in kept],
            "dropped": [s.text for k, s in enumerate(spans) if k not in chosen],
        }
        return HeatMaps(shares, range(len(kept)), layout, image=self.image, settings=settings)

    def save(self, path: str | os.PathLike) -> None:
        """Write the maps, image, prompt, word alignment and settings to a safetensors file (no pickle)."""
        from ._files import save_heat_maps

        save_heat_maps(self, path)

    @classmethod
    def load(cls, path: str | os.PathLike) -> HeatMaps:
        """Read a file written by ``save``."""
        from ._files import load_heat_maps

        return load_heat_maps(path)

    def __repr__(self) -> str:
        h, w = self.shape
        return f"HeatMaps({self.prompt!r}, {h}x{w}, words={list(self.words)})"


def _normalized(m: torch.Tensor, normalize: Normalize) -> np.ndarray:
    if normalize == "max":
        peak = m.max()
        m = m / peak if peak > 0 else m
    elif normalize == "sum":
        total = m.sum()
        m = m / total if total > 0 else m
    elif normalize != "none":
        raise ValueError(f"normalize must be 'none', 'max' or 'sum', not {normalize!r}")
    return m.numpy().astype(np.float32, copy=False)
