"""Growable column storage behind ``PacketIndex``: append batches, read columns as read-only views.

Columns live in arrays with spare capacity (grown 1.5x), so reading a column while the index grows is a view,
never a copy; ``trim`` drops the spare capacity once the input is complete.
"""

from __future__ import annotations

import numpy as np


class ColumnStore:
    """Named numpy columns of equal length ``len(store)``."""

    def __init__(self, schema: dict[str, np.dtype] | None = None) -> None:
        self._cols: dict[str, np.ndarray] = {name: np.empty(0, dt) for name, dt in (schema or {}).items()}
        self._n = 0
        self._cap = 0
        self._lo = 0          # a slice's first row in the parent arrays
        self._hi: int | None = None

    def __len__(self) -> int:
        return (self._n if self._hi is None else self._hi) - self._lo

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(self._cols)

    def column(self, name: str) -> np.ndarray:
        try:
            arr = self._cols[name]
        except KeyError:
            raise KeyError(f"no index column {name!r}") from None
        view = arr[self._lo:self._lo + len(self)]
        view.flags.writeable = False
        return view

    def append(self, cols: dict[str, np.ndarray]) -> None:
        m = len(next(iter(cols.values())))
        if m == 0:
            return
        need = self._n + m
        if need > self._cap:
            cap = max(need, int(self._cap * 1.5), 4096)
            for name, values in cols.items():
                old = self._cols.get(name)
                new = np.empty(cap, dtype=values.dtype)
                if old is not None:
                    new[:self._n] = old[:self._n]
                self._cols[name] = new
            self._cap = cap
        for name, values in cols.items():
            self._cols[name][self._n:need] = values
        self._n = need

    def reorder(self, order: np.ndarray) -> None:
        """Permute every row (a final merge sort)."""
        for name, arr in self._cols.items():
            self._cols[name] = arr[:self._n][order]
        self._cap = self._n

    def trim(self) -> None:
        """Release spare capacity (copies each column once)."""
        if self._cap > self._n:
            for name, arr in self._cols.items():
                self._cols[name] = arr[:self._n].copy()
            self._cap = self._n

    def slice(self, start: int, stop: int | None) -> ColumnStore:
        view = ColumnStore.__new__(ColumnStore)
        view.__dict__.update(self.__dict__)
        n = len(self)
        lo = max(0, min(start, n))
        hi = n if stop is None else max(lo, min(stop, n))
        view._lo = self._lo + lo
        view._hi = self._lo + hi
        view._cols = self._cols
        return view

    def nbytes(self) -> int:
        return sum(arr[:self._n].nbytes for arr in self._cols.values())
