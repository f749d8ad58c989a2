"""The paper's measures on masks and maps: pure numpy, independent of how the maps were made."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np


def threshold(soft_map: np.ndarray, tau: float = 0.4) -> np.ndarray:
    """Eq. 7: ``soft_map >= tau * max(soft_map)``, a bool mask of the same shape."""
    if not 0.0 <= tau <= 1.0:
        raise ValueError(f"tau must be in [0, 1], not {tau}")
    soft_map = np.asarray(soft_map)
    return soft_map >= tau * soft_map.max()


def iou(a: np.ndarray, b: np.ndarray) -> float:
    """Intersection over union of two bool masks; 0 when both are empty."""
    a, b = _masks(a, b)
    union = np.logical_or(a, b).sum()
    return float(np.logical_and(a, b).sum() / union) if union else 0.0


def intersection_over_area(a: np.ndarray, b: np.ndarray) -> float:
    """How much of ``a`` lies in ``b``: |a ∩ b| / |a|, the paper's unidirectional overlap.

    Bool masks use pixel counts. Float maps are first scaled to a maximum of 1 each and then use the soft
    intersection ``sum(min(a, b)) / sum(a)``.
    """
    a, b = np.asarray(a), np.asarray(b)
    if a.shape != b.shape:
        raise ValueError(f"shapes differ: {a.shape} and {b.shape}")
    if a.dtype == bool and b.dtype == bool:
        area = a.sum()
        return float(np.logical_and(a, b).sum() / area) if area else 0.0
    a, b = _unit_max(a), _unit_max(b)
    area = a.sum()
    return float(np.minimum(a, b).sum() / area) if area else 0.0


def mean_iou(pairs: Iterable[tuple[np.ndarray, np.ndarray]]) -> float:
    """Mean IoU over (predicted, true) mask pairs, as the paper's segmentation score."""
    scores = [iou(p, t) for p, t in pairs]
    if not scores:
        raise ValueError("mean_iou needs at least one pair")
    return float(np.mean(scores))


def _masks(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    a, b = np.asarray(a), np.asarray(b)
    if a.dtype != bool or b.dtype != bool:
        raise TypeError(f"IoU compares bool masks, got {a.dtype} and {b.dtype}; threshold soft maps first")
    if a.shape != b.shape:
        raise ValueError(f"shapes differ: {a.shape} and {b.shape}")
    return a, b


def _unit_max(m: np.ndarray) -> np.ndarray:
    m = np.asarray(m, dtype=np.float64)
    peak = m.max()
    return m / peak if peak > 0 else m
