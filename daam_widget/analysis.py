"""The paper's analyses as functions over ``HeatMaps``.

- Segmentation (§4): each noun's Eq. 7 mask against a ground-truth mask, averaged as mIoU, across τ.
- Word pairs (§5.1): for head-dependent pairs of a syntactic relation, the IoU of their masks and how much of
  each lies in the other, summarised per relation.
- Entanglement (§5.2): the same measures on chosen pairs (cohyponyms, adjective-noun), and how far a
  word's mask spreads (its area).

Dependency parsing is optional: ``dependency_pairs`` takes a spaCy ``Language`` the caller loaded; nothing
here downloads a model.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ._heat_maps import HeatMaps, Key
from ._metrics import intersection_over_area, iou, threshold

TAUS = (0.2, 0.3, 0.4, 0.5, 0.6)


def segmentation_miou(samples: Iterable[tuple[HeatMaps, Key, np.ndarray]], tau: float = 0.4) -> float:
    """Mean IoU of words' Eq. 7 masks against ground-truth masks: ``(maps, word, true mask)`` samples."""
    return tau_sweep(samples, (tau,))[tau]


def tau_sweep(
    samples: Iterable[tuple[HeatMaps, Key, np.ndarray]], taus: Sequence[float] = TAUS
) -> dict[float, float]:
    """``segmentation_miou`` at each τ, computing each soft map once."""
    scores: dict[float, list[float]] = {t: [] for t in taus}
    for maps, key, truth in samples:
        soft = maps.soft(key)
        if soft.shape != truth.shape:
            raise ValueError(f"the true mask is {truth.shape}, the map {soft.shape}: they must match")
        for t in taus:
            scores[t].append(iou(threshold(soft, t), np.asarray(truth, bool)))
    if not scores[taus[0]]:
        raise ValueError("tau_sweep needs at least one (maps, word, mask) sample")
    return {t: float(np.mean(s)) for t, s in scores.items()}


def mask_area(maps: HeatMaps, key: Key, tau: float = 0.4) -> float:
    """The fraction of the image a word's Eq. 7 mask covers: how broadly the word attends."""
    return float(maps.mask(key, tau).mean())


@dataclass(frozen=True)
class PairMeasures:
    """Two words' maps compared: mask IoU, and how much of each mask lies in the other (§5.1)."""

    head: str
    dependent: str
    relation: str
    iou: float
    head_in_dependent: float
    dependent_in_head: float


def compare_pairs(
    maps: HeatMaps, pairs: Iterable[tuple[Key, Key, str]], tau: float = 0.4
) -> list[PairMeasures]:
    """Measures for ``(head, dependent, relation)`` word pairs of one image."""
    result = []
    for head, dependent, relation in pairs:
        a, b = maps.mask(head, tau), maps.mask(dependent, tau)
        result.append(
            PairMeasures(
                maps.span(head).text,
                maps.span(dependent).text,
                relation,
                iou(a, b),
                intersection_over_area(a, b),
                intersection_over_area(b, a),
            )
        )
    return result


def summarize_by_relation(measures: Iterable[PairMeasures]) -> dict[str, dict[str, float]]:
    """Mean of each measure per relation, with the number of pairs: the paper's Table 4 shape."""
    groups: dict[str, list[PairMeasures]] = defaultdict(list)
    for m in measures:
        groups[m.relation].append(m)
    return {
        relation: {
            "pairs": len(group),
            "iou": float(np.mean([m.iou for m in group])),
            "head_in_dependent": float(np.mean([m.head_in_dependent for m in group])),
            "dependent_in_head": float(np.mean([m.dependent_in_head for m in group])),
        }
        for relation, group in sorted(groups.items())
    }


def dependency_pairs(maps: HeatMaps, nlp: Any) -> list[tuple[int, int, str]]:
    """``(head word index, dependent word index, relation)`` from a spaCy parse of the prompt.

    ``nlp`` is a loaded spaCy pipeline (``spacy.load("en_core_web_sm")``). Parser tokens are matched to the
    prompt's words by character offsets; tokens that are not words (punctuation) are skipped.
    """
    words = maps.layout.word_spans
    index_at = {w.start: i for i, w in enumerate(words)}
    pairs = []
    for token in nlp(maps.prompt):
        head = token.head
        if head.i == token.i or token.idx not in index_at or head.idx not in index_at:
            continue
        pairs.append((index_at[head.idx], index_at[token.idx], token.dep_))
    return pairs
