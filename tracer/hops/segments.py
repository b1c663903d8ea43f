"""Reductions over items grouped by a dense key, done with one sort and ``reduceat`` (no Python per item)."""

from __future__ import annotations

import numpy as np


class Segments:
    """Items grouped by a dense key in ``0..size-1``, sorted once; each reduction is then one ``reduceat``."""

    def __init__(self, keys: np.ndarray, size: int, order: np.ndarray | None = None) -> None:
        self.size = size
        self.order = np.argsort(keys, kind="stable") if order is None else order
        k = keys[self.order]
        self.starts = np.flatnonzero(np.r_[True, k[1:] != k[:-1]]) if len(k) else np.empty(0, dtype=np.int64)
        self.present = k[self.starts]

    def reduce(self, ufunc: np.ufunc, values: np.ndarray, fill: int) -> np.ndarray:
        out = np.full(self.size, fill, dtype=np.int64)
        if len(self.order):
            out[self.present] = ufunc.reduceat(values[self.order].astype(np.int64), self.starts)
        return out


def first_in_group(keys: np.ndarray, *sort_keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(group keys, position of the first element of each group) ordering by ``sort_keys`` (most significant last)."""
    order = np.lexsort((*sort_keys, keys))
    k = keys[order]
    starts = np.flatnonzero(np.r_[True, k[1:] != k[:-1]])
    return k[starts], order[starts]
