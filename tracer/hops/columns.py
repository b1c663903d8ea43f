"""Per-row views of the hop analysis that store nothing per row: ``LabelColumn`` (text), ``ValueColumn``
(numbers, flags) and ``RowColumns``, the mapping ``HopAnalysis.columns`` is.

The rule: the analysis keeps per row only what cannot be derived (the packet id and the hop number, 5 bytes);
everything else a row shows — its capture point, role, node, pods, Service, flow, verdict, where its packet was
last seen — is a small per-packet, per-flow or per-point table looked up through those. A column is computed for
the rows asked for (the ~40 rows on screen, a chunk of ``tracer show``), so a million rows cost no million
Python strings. Text columns hand out integer codes into a short label table, so a filter evaluates its
predicate once per distinct label (``LabelColumn.mask``), never once per packet.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import numpy as np

Codes = Callable[[np.ndarray], np.ndarray]


def _rows(key: Any, n: int) -> tuple[np.ndarray, bool]:
    """(int64 row numbers, whether ``key`` was a scalar) for a ``[]`` key: int, slice, bool mask or int array."""
    if isinstance(key, (int, np.integer)):
        k = int(key)
        if not -n <= k < n:
            raise IndexError(f"row {k} out of range ({n} rows)")
        return np.array([k % n], dtype=np.int64), True
    if isinstance(key, slice):
        return np.arange(*key.indices(n), dtype=np.int64), False
    arr = np.asarray(key)
    if arr.dtype == bool:
        if len(arr) != n:
            raise IndexError(f"boolean mask of {len(arr)} rows for a column of {n}")
        return np.flatnonzero(arr), False
    arr = arr.astype(np.int64, copy=False)
    return np.where(arr < 0, arr + n, arr), False


class _Column:
    """What both kinds share: a length, ``[]`` by row, comparison and ``np.asarray`` by materialising."""

    dtype: np.dtype

    def __init__(self, length: int) -> None:
        self._n = length

    def __len__(self) -> int:
        return self._n

    @property
    def shape(self) -> tuple[int]:
        return (self._n,)

    def _values(self, rows: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def __getitem__(self, key: Any) -> Any:
        rows, scalar = _rows(key, self._n)
        values = self._values(rows)
        return values[0] if scalar else values

    def __iter__(self) -> Iterator[Any]:
        return iter(self[:].tolist())

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        whole = self[:]
        return whole if dtype is None else whole.astype(dtype)

    def tolist(self) -> list[Any]:
        return self[:].tolist()

    # Comparisons materialise the column (a whole-capture question such as ``flow_id == 7``).
    def __eq__(self, other: Any) -> np.ndarray:  # type: ignore[override]
        return np.asarray(self) == other

    def __ne__(self, other: Any) -> np.ndarray:  # type: ignore[override]
        return np.asarray(self) != other

    def __lt__(self, other: Any) -> np.ndarray:
        return np.asarray(self) < other

    def __le__(self, other: Any) -> np.ndarray:
        return np.asarray(self) <= other

    def __gt__(self, other: Any) -> np.ndarray:
        return np.asarray(self) > other

    def __ge__(self, other: Any) -> np.ndarray:
        return np.asarray(self) >= other

    __hash__ = None  # type: ignore[assignment]

    def any(self) -> bool:
        return bool(np.asarray(self).any())

    def all(self) -> bool:
        return bool(np.asarray(self).all())


class ValueColumn(_Column):
    """A numeric or boolean per-row column computed from per-packet/per-flow tables for the rows asked for."""

    def __init__(self, length: int, values: Codes, dtype: Any) -> None:
        super().__init__(length)
        self._fn = values
        self.dtype = np.dtype(dtype)

    def _values(self, rows: np.ndarray) -> np.ndarray:
        return np.asarray(self._fn(rows)).astype(self.dtype, copy=False)


class LabelColumn(_Column):
    """A text (or None) per-row column: integer codes into ``labels``; code -1 is None.

    ``col[rows]`` gives an object array of ``str``/``None`` like a plain object column; ``codes(rows)`` the
    integers; ``mask(pred)`` a boolean per row with ``pred`` called once per distinct label.
    """

    dtype = np.dtype(object)

    def __init__(self, length: int, codes: Codes, labels: Sequence[str | None]) -> None:
        super().__init__(length)
        self._codes = codes
        self.labels: tuple[str | None, ...] = tuple(labels)
        self._table = np.array(list(self.labels) + [None], dtype=object)   # [-1] → None

    def codes(self, key: Any = slice(None)) -> np.ndarray:
        rows, _ = _rows(key, self._n)
        codes = np.asarray(self._codes(rows), dtype=np.int64)
        return np.where((codes >= 0) & (codes < len(self.labels)), codes, -1)

    def _values(self, rows: np.ndarray) -> np.ndarray:
        return self._table[self.codes(rows)]

    def mask(self, pred: Callable[[str | None], bool], key: Any = slice(None)) -> np.ndarray:
        """Per row (of ``key``): ``pred(label)``, evaluated once per label (and once for None)."""
        hit = np.array([bool(pred(label)) for label in self._table], dtype=bool)
        return hit[self.codes(key)]


class RowColumns(Mapping):
    """``HopAnalysis.columns``: name → per-row column. Stored arrays are returned as they are; derived columns
    are built once as views (``LabelColumn``/``ValueColumn``) that compute only the rows asked for."""

    def __init__(self, stored: dict[str, np.ndarray], derived: dict[str, Callable[[], _Column]]) -> None:
        self._stored = stored
        self._derived = derived
        self._made: dict[str, _Column] = {}

    def __getitem__(self, name: str) -> Any:
        if name in self._stored:
            return self._stored[name]
        col = self._made.get(name)
        if col is None:
            if name not in self._derived:
                raise KeyError(name)
            col = self._made[name] = self._derived[name]()
        return col

    def __iter__(self) -> Iterator[str]:
        yield from self._stored
        yield from (k for k in self._derived if k not in self._stored)

    def __len__(self) -> int:
        return len(set(self._stored) | set(self._derived))

    def nbytes(self) -> int:
        """Bytes held per row by the stored columns (the derived ones hold none)."""
        return sum(a.nbytes for a in self._stored.values())
